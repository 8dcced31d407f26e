//! Frame headers (parsed and formatted here, checked against tungstenite's codec in tests) and
//! masking.

use super::Violation;

/// The longest frame header: 2 bytes, an 8-byte length and a 4-byte mask.
pub(crate) const MAX_HEADER_LEN: usize = 14;
/// The longest payload of a control frame (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// A control frame's payload (at most 125 bytes), kept inline so that control frames never
/// allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlPayload {
    bytes: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl Default for ControlPayload {
    fn default() -> Self {
        ControlPayload {
            bytes: [0; MAX_CONTROL_PAYLOAD],
            len: 0,
        }
    }
}

impl ControlPayload {
    /// Copies up to 125 bytes of `data`.
    pub fn from_slice(data: &[u8]) -> Self {
        let mut p = ControlPayload::default();
        let n = data.len().min(MAX_CONTROL_PAYLOAD);
        p.bytes[..n].copy_from_slice(&data[..n]);
        p.len = n as u8;
        p
    }
    /// The payload bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// What a frame carries, reduced to what the receiver acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: continues a fragmented message.
    Continue,
    /// 0x1: starts a text message.
    Text,
    /// 0x2: starts a binary message.
    Binary,
    /// 0x8
    Close,
    /// 0x9
    Ping,
    /// 0xA
    Pong,
}

impl Opcode {
    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }

    /// The opcode's 4-bit value on the wire.
    fn code(self) -> u8 {
        match self {
            Opcode::Continue => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN bit.
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate); the receiver judges it.
    pub rsv1: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// How many bytes the header took.
    pub header_len: usize,
}

/// Parses a frame header from the start of `input`. `Ok(None)` means more bytes are needed.
/// Written by hand (RFC 6455 §5.2): it runs once per frame on the receive path.
#[inline]
pub fn parse_header(input: &[u8]) -> Result<Option<Header>, Violation> {
    let [b0, b1, ..] = *input else {
        return Ok(None);
    };
    // the whole header first, then its verdict (as tungstenite's codec did): a violation is
    // reported once the header is complete, however the input was split
    let masked = b1 & 0x80 != 0;
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let n = 2 + ext + if masked { 4 } else { 0 };
    if input.len() < n {
        return Ok(None);
    }
    if b0 & 0x30 != 0 {
        return Err(Violation::protocol(
            "the peer set a reserved bit (RSV2 or RSV3) that no extension defines",
        ));
    }
    let opcode = match b0 & 0x0F {
        0x0 => Opcode::Continue,
        0x1 => Opcode::Text,
        0x2 => Opcode::Binary,
        0x8 => Opcode::Close,
        0x9 => Opcode::Ping,
        0xA => Opcode::Pong,
        _ => return Err(Violation::protocol("the peer used a reserved opcode")),
    };
    let len = match ext {
        2 => u64::from(u16::from_be_bytes([input[2], input[3]])),
        8 => u64::from_be_bytes(input[2..10].try_into().expect("8 bytes")),
        _ => u64::from(b1 & 0x7F),
    };
    if len > i64::MAX as u64 {
        return Err(Violation::protocol(
            "the peer sent a 64-bit frame length with the most significant bit set",
        ));
    }
    let mask = masked.then(|| {
        let k = &input[2 + ext..n];
        [k[0], k[1], k[2], k[3]]
    });
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        opcode,
        mask,
        len,
        header_len: n,
    }))
}

/// Appends a frame header to `out`.
#[inline]
pub fn write_header(out: &mut Vec<u8>, opcode: Opcode, fin: bool, len: u64, mask: Option<[u8; 4]>) {
    write_header_rsv1(out, opcode, fin, false, len, mask)
}

/// Appends a frame header to `out`, with RSV1 (a compressed message's first frame) as given.
#[inline]
pub fn write_header_rsv1(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    rsv1: bool,
    len: u64,
    mask: Option<[u8; 4]>,
) {
    // written by hand (RFC 6455 §5.2): this runs once per frame on the send path
    let mut h = [0u8; MAX_HEADER_LEN];
    h[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.code();
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut n = 2;
    if len < 126 {
        h[1] = masked | len as u8;
    } else if len <= u64::from(u16::MAX) {
        h[1] = masked | 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        n = 4;
    } else {
        h[1] = masked | 127;
        h[2..10].copy_from_slice(&len.to_be_bytes());
        n = 10;
    }
    if let Some(key) = mask {
        h[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    // a fixed-size copy (two moves) rather than a call to memmove for `n` bytes
    let start = out.len();
    out.reserve(MAX_HEADER_LEN);
    for (d, b) in out.spare_capacity_mut()[..MAX_HEADER_LEN].iter_mut().zip(h) {
        d.write(b);
    }
    // SAFETY: `reserve` made room for MAX_HEADER_LEN bytes and the loop initialised them.
    unsafe { out.set_len(start + n) };
}

/// Appends a whole frame (header and payload, masked when `mask` is set) to `out`.
pub fn write_frame(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    write_header(out, opcode, fin, payload.len() as u64, mask);
    append_masked(out, payload, mask, 0);
}

/// Appends `payload` to `out`, masked with `mask` from payload position `offset`, in one
/// pass over the bytes (masking while copying).
#[inline]
pub fn append_masked(out: &mut Vec<u8>, payload: &[u8], mask: Option<[u8; 4]>, offset: u64) {
    let Some(mask) = mask else {
        out.extend_from_slice(payload);
        return;
    };
    let (key, word) = mask_key(mask, offset);
    let start = out.len();
    out.reserve(payload.len());
    let spare = &mut out.spare_capacity_mut()[..payload.len()];
    let mut dst = spare.chunks_exact_mut(8);
    let mut src = payload.chunks_exact(8);
    for (d, s) in (&mut dst).zip(&mut src) {
        let v = (u64::from_ne_bytes(s.try_into().expect("8-byte chunk")) ^ word).to_ne_bytes();
        for (d, v) in d.iter_mut().zip(v) {
            d.write(v);
        }
    }
    // a whole number of 8-byte words keeps the phase, so the tail starts at key[0]
    for ((d, s), k) in dst
        .into_remainder()
        .iter_mut()
        .zip(src.remainder())
        .zip(key)
    {
        d.write(s ^ k);
    }
    // SAFETY: the loops above initialised all `payload.len()` bytes after `start`, and
    // `reserve` made room for them.
    unsafe { out.set_len(start + payload.len()) };
}

/// The masking key rotated to payload position `offset`, as 8 bytes and as a word.
fn mask_key(mask: [u8; 4], offset: u64) -> ([u8; 8], u64) {
    // the key as a word, rotated by whole bytes (no per-byte loop)
    let k = u32::from_le_bytes(mask).rotate_right(8 * (offset % 4) as u32);
    let key = (u64::from(k) | (u64::from(k) << 32)).to_le_bytes();
    (key, u64::from_ne_bytes(key))
}

/// XORs `buf` with the masking key, as bytes at payload position `offset` onwards.
/// Masking and unmasking are the same operation.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: u64) {
    let (key, word) = mask_key(mask, offset);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8-byte chunk")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // A whole number of 8-byte words keeps the phase, so the tail starts at key[0].
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_the_definition_at_every_offset() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..=255u8).cycle().take(301).collect();
        for offset in 0..8u64 {
            for len in [0usize, 1, 3, 7, 8, 9, 17, 301] {
                let mut got = data[..len].to_vec();
                apply_mask(&mut got, mask, offset);
                let want: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(i + offset as usize) % 4])
                    .collect();
                assert_eq!(got, want, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn masking_while_copying_matches_masking_in_place() {
        let mask = [9, 8, 7, 6];
        let data: Vec<u8> = (0..=255u8).cycle().take(77).collect();
        for offset in 0..5u64 {
            for len in [0usize, 1, 7, 8, 9, 77] {
                let mut out = b"head".to_vec();
                append_masked(&mut out, &data[..len], Some(mask), offset);
                let mut want = data[..len].to_vec();
                apply_mask(&mut want, mask, offset);
                assert_eq!(&out[4..], &want[..], "offset {offset} len {len}");
                assert_eq!(&out[..4], b"head");
            }
        }
    }

    #[test]
    fn header_round_trips_for_every_length_format() {
        for len in [0u64, 125, 126, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = Vec::new();
                write_header(&mut out, Opcode::Binary, true, len, mask);
                let h = parse_header(&out).unwrap().unwrap();
                assert_eq!((h.len, h.mask, h.header_len), (len, mask, out.len()));
                assert_eq!(h.opcode, Opcode::Binary);
                // every proper prefix asks for more bytes
                for cut in 0..out.len() {
                    assert_eq!(parse_header(&out[..cut]).unwrap(), None);
                }
            }
        }
    }

    #[test]
    fn headers_match_tungstenites_codec() {
        use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
        use tungstenite::protocol::frame::FrameHeader;
        let ops = [
            (Opcode::Continue, OpCode::Data(Data::Continue)),
            (Opcode::Text, OpCode::Data(Data::Text)),
            (Opcode::Binary, OpCode::Data(Data::Binary)),
            (Opcode::Close, OpCode::Control(Control::Close)),
            (Opcode::Ping, OpCode::Control(Control::Ping)),
            (Opcode::Pong, OpCode::Control(Control::Pong)),
        ];
        for (ours, theirs) in ops {
            for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 33] {
                for mask in [None, Some([9, 8, 7, 6])] {
                    for (fin, rsv1) in [(false, false), (true, false), (true, true)] {
                        let mut a = Vec::new();
                        write_header_rsv1(&mut a, ours, fin, rsv1, len, mask);
                        let mut b = Vec::new();
                        let h = FrameHeader {
                            is_final: fin,
                            rsv1,
                            rsv2: false,
                            rsv3: false,
                            opcode: theirs,
                            mask,
                        };
                        h.format(len, &mut b).unwrap();
                        assert_eq!(a, b, "{ours:?} {len} {mask:?} {fin} {rsv1}");
                        let (parsed, plen) = FrameHeader::parse(&mut std::io::Cursor::new(&b[..]))
                            .unwrap()
                            .unwrap();
                        let p = parse_header(&b).unwrap().unwrap();
                        assert_eq!(
                            (p.fin, p.rsv1, p.mask, p.len),
                            (parsed.is_final, parsed.rsv1, parsed.mask, plen)
                        );
                        assert_eq!((p.opcode, p.header_len), (ours, b.len()));
                    }
                }
            }
        }
    }

    #[test]
    fn header_violations() {
        assert_eq!(parse_header(&[0x83, 0]).unwrap_err().status, 1002); // opcode 3
        assert_eq!(parse_header(&[0x8B, 0]).unwrap_err().status, 1002); // opcode 0xB
        assert!(parse_header(&[0xC2, 0]).unwrap().unwrap().rsv1); // RSV1: the receiver judges
        assert_eq!(parse_header(&[0xA2, 0]).unwrap_err().status, 1002); // RSV2
        assert_eq!(parse_header(&[0x92, 0]).unwrap_err().status, 1002); // RSV3
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(parse_header(&huge).unwrap_err().status, 1002);
    }
}
