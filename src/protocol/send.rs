//! The sending half: fragment bookkeeping and UTF-8 checks for outgoing messages.

use super::frame::Opcode;
use super::utf8::Utf8Validator;
use super::MessageKind;

/// The buffer types of `ws_send`, as WinHTTP's `WINHTTP_WEB_SOCKET_BUFFER_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendKind {
    /// The last (or only) piece of a binary message.
    BinaryMessage,
    /// A piece of a binary message; more follow.
    BinaryFragment,
    /// The last (or only) piece of a text message.
    TextMessage,
    /// A piece of a text message; more follow.
    TextFragment,
}

impl SendKind {
    fn kind(self) -> MessageKind {
        match self {
            SendKind::BinaryMessage | SendKind::BinaryFragment => MessageKind::Binary,
            SendKind::TextMessage | SendKind::TextFragment => MessageKind::Text,
        }
    }
    fn is_final(self) -> bool {
        matches!(self, SendKind::BinaryMessage | SendKind::TextMessage)
    }
}

/// A checked frame, ready to go on the wire. Committing it updates the framer.
#[derive(Clone, Copy, Debug)]
pub struct Planned {
    /// The frame's opcode.
    pub opcode: Opcode,
    /// The frame's FIN bit.
    pub fin: bool,
    after: Option<(MessageKind, Utf8Validator)>,
}

/// Keeps track of a message being sent in fragments.
#[derive(Clone, Debug, Default)]
pub struct Framer {
    /// The message in progress and its UTF-8 state.
    message: Option<(MessageKind, Utf8Validator)>,
}

impl Framer {
    /// Checks a piece without changing anything: a rejected piece leaves the message in
    /// progress exactly as it was.
    pub fn plan(&self, what: SendKind, payload: &[u8]) -> Result<Planned, &'static str> {
        let kind = what.kind();
        let (opcode, mut utf8) = match self.message {
            None => (
                if kind == MessageKind::Text {
                    Opcode::Text
                } else {
                    Opcode::Binary
                },
                Utf8Validator::default(),
            ),
            Some((k, _)) if k != kind => {
                return Err(if k == MessageKind::Text {
                    "a text message is being sent in fragments: continue it with WS_BUFFER_UTF8_FRAGMENT or end it with WS_BUFFER_UTF8_MESSAGE"
                } else {
                    "a binary message is being sent in fragments: continue it with WS_BUFFER_BINARY_FRAGMENT or end it with WS_BUFFER_BINARY_MESSAGE"
                });
            }
            Some((_, v)) => (Opcode::Continue, v),
        };
        if kind == MessageKind::Text {
            if utf8.feed(payload).is_err() {
                return Err("the text is not valid UTF-8");
            }
            if what.is_final() && !utf8.is_complete() {
                return Err("the text message ends inside a UTF-8 sequence");
            }
        }
        let fin = what.is_final();
        Ok(Planned {
            opcode,
            fin,
            after: if fin { None } else { Some((kind, utf8)) },
        })
    }

    /// Checks a batch of pieces, each continuing what the previous ones leave open, without
    /// changing anything: all are accepted, or the index of the first refused one is returned
    /// with the reason (and the message in progress stays exactly as it was).
    pub fn plan_batch<'a>(
        &self,
        pieces: impl IntoIterator<Item = (SendKind, &'a [u8])>,
    ) -> Result<Vec<Planned>, (usize, &'static str)> {
        let pieces = pieces.into_iter();
        let mut after = self.clone();
        let mut plans = Vec::with_capacity(pieces.size_hint().0);
        for (i, (what, payload)) in pieces.enumerate() {
            let p = after.plan(what, payload).map_err(|e| (i, e))?;
            after.commit(p);
            plans.push(p);
        }
        Ok(plans)
    }

    /// Records that a planned piece went on the wire.
    pub fn commit(&mut self, planned: Planned) {
        self.message = planned.after;
    }

    /// Whether a message is partly sent.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_and_rollback() {
        let mut f = Framer::default();
        let p = f.plan(SendKind::TextFragment, b"\xe2\x82").unwrap(); // inside a code point
        assert_eq!((p.opcode, p.fin), (Opcode::Text, false));
        f.commit(p);
        // wrong type and invalid continuation are rejected and change nothing
        assert!(f.plan(SendKind::BinaryMessage, b"x").is_err());
        assert!(f.plan(SendKind::TextMessage, b"\x28").is_err());
        assert!(f.plan(SendKind::TextMessage, b"").is_err()); // would end mid code point
        let p = f.plan(SendKind::TextMessage, b"\xac!").unwrap();
        assert_eq!((p.opcode, p.fin), (Opcode::Continue, true));
        f.commit(p);
        assert!(!f.in_message());
        let p = f.plan(SendKind::BinaryMessage, b"").unwrap();
        assert_eq!((p.opcode, p.fin), (Opcode::Binary, true));
        assert!(f.plan(SendKind::TextMessage, b"\xff").is_err());
    }

    #[test]
    fn a_batch_is_checked_as_a_whole_and_continues_the_open_message() {
        let mut f = Framer::default();
        f.commit(f.plan(SendKind::TextFragment, b"\xe2").unwrap());
        let ok: [(SendKind, &[u8]); 4] = [
            (SendKind::TextFragment, b"\x82"),
            (SendKind::TextMessage, b"\xac"),
            (SendKind::BinaryFragment, b"a"),
            (SendKind::BinaryMessage, b""),
        ];
        let plans = f.plan_batch(ok).unwrap();
        let shape: Vec<_> = plans.iter().map(|p| (p.opcode, p.fin)).collect();
        assert_eq!(
            shape,
            [
                (Opcode::Continue, false),
                (Opcode::Continue, true),
                (Opcode::Binary, false),
                (Opcode::Continue, true)
            ]
        );
        // refused third element: the index, and the framer is untouched
        let bad: [(SendKind, &[u8]); 3] = [
            (SendKind::TextFragment, b"\x82"),
            (SendKind::TextFragment, b"\xac"),
            (SendKind::BinaryMessage, b"x"), // a binary piece inside the open text message
        ];
        let bad_utf8: [(SendKind, &[u8]); 2] = [
            (SendKind::TextMessage, b"\x82\xac"),
            (SendKind::TextMessage, b"\xff"),
        ];
        assert_eq!(f.plan_batch(bad).unwrap_err().0, 2);
        assert_eq!(f.plan_batch(bad_utf8).unwrap_err().0, 1);
        assert!(f.in_message());
        assert_eq!(
            f.plan(SendKind::TextMessage, b"\x82\xac").unwrap().opcode,
            Opcode::Continue
        );
    }
}
