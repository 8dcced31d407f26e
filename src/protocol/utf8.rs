//! Incremental UTF-8 validation: a message may be split anywhere, even inside a code point,
//! and invalid input is reported as soon as the first bad byte is seen (fail fast).

/// Validates a byte stream as UTF-8, piece by piece. Cheap to copy, so a sender can validate on
/// a copy and commit it only when the piece is really sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    pending: [u8; 4],
    len: u8,
}

/// The bytes seen so far cannot be the start of valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4, // 0xF0..=0xF4; std only leaves valid leads pending
    }
}

impl Utf8Validator {
    /// Feeds the next piece. Fails at the first byte that cannot be part of valid UTF-8.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.len > 0 {
            let have = self.len as usize;
            let need = sequence_len(self.pending[0]) - have;
            let take = need.min(data.len());
            self.pending[have..have + take].copy_from_slice(&data[..take]);
            let now = have + take;
            match std::str::from_utf8(&self.pending[..now]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.len = now as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            data = &data[take..];
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether the input so far ends on a code point boundary (a message may end here).
    pub fn is_complete(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(input: &[u8]) -> Vec<Result<bool, InvalidUtf8>> {
        let mut results = Vec::new();
        for cut in 0..=input.len() {
            let mut v = Utf8Validator::default();
            let r = v
                .feed(&input[..cut])
                .and_then(|_| v.feed(&input[cut..]))
                .map(|_| v.is_complete());
            results.push(r);
        }
        results
    }

    #[test]
    fn valid_text_split_anywhere() {
        let s = "aé€𝄞z κόσμε".as_bytes();
        assert!(split_everywhere(s).iter().all(|r| *r == Ok(true)));
        // byte by byte
        let mut v = Utf8Validator::default();
        for (i, b) in s.iter().enumerate() {
            v.feed(&[*b]).unwrap();
            let boundary = std::str::from_utf8(&s[..=i]).is_ok();
            assert_eq!(v.is_complete(), boundary);
        }
    }

    #[test]
    fn invalid_text_fails_wherever_split() {
        for bad in [
            &b"ok\xff"[..],
            b"\xed\xa0\x80",     // surrogate
            b"\xc0\xaf",         // overlong
            b"\xf4\x90\x80\x80", // above U+10FFFF
            b"\xe2\x82",         // truncated, then more ASCII
            b"\x80",             // lone continuation
        ] {
            let mut input = bad.to_vec();
            input.extend_from_slice(b"abc");
            for r in split_everywhere(&input) {
                assert_eq!(r, Err(InvalidUtf8), "{input:?}");
            }
        }
    }

    #[test]
    fn fails_fast_on_an_impossible_prefix() {
        let mut v = Utf8Validator::default();
        // 0xED 0xA0 can only start a surrogate: reject before the third byte.
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn incomplete_at_end() {
        let mut v = Utf8Validator::default();
        v.feed("€".as_bytes().get(..2).unwrap()).unwrap();
        assert!(!v.is_complete());
    }
}
