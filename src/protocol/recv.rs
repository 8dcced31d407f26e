//! The receiving half: frame parsing, message assembly into caller buffers, UTF-8 checks.
//!
//! The receiver never buffers payload: data bytes go straight from the input into the caller's
//! buffer, so memory does not grow with message size. Only a control frame's payload (at most
//! 125 bytes) is kept inline.

use super::close;
use super::deflate::{codec::TAIL, Agreed, Decompressor};
use super::frame::{self, apply_mask, ControlPayload, Opcode, MAX_CONTROL_PAYLOAD};
use super::utf8::Utf8Validator;
use super::{MessageKind, Role, Violation};

/// What the receiver found in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `n` bytes of a data message were written to the start of the output buffer. `end` is
    /// set on the message's last piece (which may be 0 bytes long).
    Data {
        /// Bytes written.
        n: usize,
        /// The message's kind.
        kind: MessageKind,
        /// Whether the message is complete.
        end: bool,
    },
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(ControlPayload),
    /// A pong (absorbed).
    Pong,
    /// The peer's close frame, its payload already validated.
    Close(ControlPayload),
}

#[derive(Clone, Copy, Debug)]
struct FrameState {
    opcode: Opcode,
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    offset: u64,
}

/// Parses frames from the peer and assembles messages.
#[derive(Debug)]
pub struct Receiver {
    role: Role,
    max_message: u64,
    frame: Option<FrameState>,
    message: Option<MessageKind>,
    message_len: u64,
    utf8: Utf8Validator,
    control: ControlPayload,
    control_buf: [u8; MAX_CONTROL_PAYLOAD],
    /// permessage-deflate, when the handshake agreed it.
    inflate: Option<Decompressor>,
    /// The current message is compressed (its first frame had RSV1).
    compressed: bool,
    /// How much of the deflate tail (`00 00 ff ff`) the decompressor has taken at the end of
    /// a compressed message.
    tail_fed: usize,
    /// The decompressor's last call filled the output: it may hold more.
    inflate_full: bool,
}

impl Receiver {
    /// A receiver for `role`; `max_message` of 0 means no limit on a message's size.
    pub fn new(role: Role, max_message: u64) -> Self {
        Receiver {
            role,
            max_message,
            frame: None,
            message: None,
            message_len: 0,
            utf8: Utf8Validator::default(),
            control: ControlPayload::default(),
            control_buf: [0; MAX_CONTROL_PAYLOAD],
            inflate: None,
            compressed: false,
            tail_fed: 0,
            inflate_full: false,
        }
    }

    /// Accepts compressed messages (RSV1) as the handshake agreed.
    pub fn enable_deflate(&mut self, agreed: &Agreed) {
        self.inflate = Some(Decompressor::new(agreed));
    }

    /// Whether a data message is partly received.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Consumes bytes from `input`, writing data payload to the start of `out`, and stops at
    /// the first event. Returns how many input bytes were consumed and the event, if any;
    /// `(n, None)` means every byte was consumed and more input is needed.
    ///
    /// `out` must not be empty. After an error, or after a `Close` event, the receiver must
    /// not be fed again.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, Option<Event>), Violation> {
        debug_assert!(!out.is_empty());
        let mut pos = 0;
        loop {
            let Some(f) = self.frame else {
                let Some(h) = frame::parse_header(&input[pos..])? else {
                    return Ok((pos, None));
                };
                self.start_frame(h)?;
                pos += h.header_len;
                continue;
            };
            let avail = (input.len() - pos) as u64;
            if f.opcode.is_control() {
                let take = f.remaining.min(avail) as usize;
                let have = (f.offset) as usize;
                self.control_buf[have..have + take].copy_from_slice(&input[pos..pos + take]);
                pos += take;
                let f = self.frame.as_mut().expect("in a frame");
                f.offset += take as u64;
                f.remaining -= take as u64;
                if f.remaining > 0 {
                    return Ok((pos, None));
                }
                let ev = self.finish_control()?;
                return Ok((pos, Some(ev)));
            }
            if self.compressed {
                let (used, ev) = self.inflate_frame(&input[pos..], out)?;
                pos += used;
                match ev {
                    Some(ev) => return Ok((pos, Some(ev))),
                    None if self.frame.is_some() => return Ok((pos, None)),
                    None => continue,
                }
            }
            let n = f.remaining.min(avail).min(out.len() as u64) as usize;
            if n == 0 && f.remaining > 0 {
                return Ok((pos, None));
            }
            out[..n].copy_from_slice(&input[pos..pos + n]);
            pos += n;
            if let Some(ev) = self.deliver(&mut out[..n])? {
                return Ok((pos, Some(ev)));
            }
        }
    }

    /// Whether a compressed frame's payload has all arrived but the message's output has not:
    /// then [`Receiver::feed`] makes progress even with no input (the deflate tail, or what
    /// the decompressor still holds after filling the last output buffer).
    pub fn has_pending_output(&self) -> bool {
        self.compressed && self.frame.is_some_and(|f| f.remaining == 0)
    }

    /// How many payload bytes of the current data frame are still to come (0 when not inside a
    /// data frame). Up to this many may be read straight into the caller's buffer and passed to
    /// [`Receiver::accept_direct`], saving a copy for large messages.
    pub fn direct_len(&self) -> u64 {
        match self.frame {
            Some(f) if !f.opcode.is_control() && !self.compressed => f.remaining,
            _ => 0,
        }
    }

    /// Accepts payload bytes that were read straight into `data` (at most
    /// [`Receiver::direct_len`] of them, at least one).
    pub fn accept_direct(&mut self, data: &mut [u8]) -> Result<Event, Violation> {
        debug_assert!(!data.is_empty() && data.len() as u64 <= self.direct_len());
        Ok(self
            .deliver(data)?
            .expect("a non-empty piece is always an event"))
    }

    fn start_frame(&mut self, h: frame::Header) -> Result<(), Violation> {
        match (self.role, h.mask.is_some()) {
            (Role::Client, true) => {
                return Err(Violation::protocol("the server sent a masked frame"));
            }
            (Role::Server, false) => {
                return Err(Violation::protocol("the client sent an unmasked frame"));
            }
            _ => {}
        }
        if h.rsv1 {
            if self.inflate.is_none() {
                return Err(Violation::protocol(
                    "the peer set RSV1 but permessage-deflate was not negotiated",
                ));
            }
            if h.opcode.is_control() {
                return Err(Violation::protocol("the peer set RSV1 on a control frame"));
            }
            if h.opcode == Opcode::Continue {
                return Err(Violation::protocol(
                    "the peer set RSV1 on a continuation frame (only a message's first frame may carry it)",
                ));
            }
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(Violation::protocol(
                    "the peer sent a fragmented control frame",
                ));
            }
            if h.len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Violation::protocol(
                    "the peer sent a control frame longer than 125 bytes",
                ));
            }
        } else {
            match (h.opcode, self.message) {
                (Opcode::Continue, None) => {
                    return Err(Violation::protocol(
                        "the peer sent a continuation frame with no message to continue",
                    ));
                }
                (Opcode::Text | Opcode::Binary, Some(_)) => {
                    return Err(Violation::protocol(
                        "the peer started a new message inside a fragmented one",
                    ));
                }
                (Opcode::Text, None) | (Opcode::Binary, None) => {
                    self.message = Some(if h.opcode == Opcode::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    });
                    self.message_len = 0;
                    self.utf8 = Utf8Validator::default();
                    self.compressed = h.rsv1;
                    self.tail_fed = 0;
                    self.inflate_full = false;
                }
                _ => {}
            }
            if !self.compressed {
                // a compressed message is counted as it inflates
                self.count(h.len)?;
            }
        }
        self.frame = Some(FrameState {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            remaining: h.len,
            offset: 0,
        });
        Ok(())
    }

    /// Adds `n` bytes to the message's size and checks `WS_OPTION_MAX_MESSAGE_SIZE`.
    fn count(&mut self, n: u64) -> Result<(), Violation> {
        self.message_len = self.message_len.saturating_add(n);
        if self.max_message != 0 && self.message_len > self.max_message {
            return Err(Violation {
                status: close::MESSAGE_TOO_BIG,
                detail: "the peer's message is longer than WS_OPTION_MAX_MESSAGE_SIZE",
            });
        }
        Ok(())
    }

    /// Inflates the current frame of a compressed message into `out`: the frame's payload,
    /// then (after the message's last frame) the deflate tail, then whatever the
    /// decompressor still holds. Returns the input taken and a data event, if any output was
    /// produced or the message ended; `self.frame` is `None` once the frame is done.
    fn inflate_frame(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, Option<Event>), Violation> {
        let kind = self.message.expect("a data frame belongs to a message");
        let mut scratch = [0u8; 512]; // masked input is unmasked here on its way in
        let (mut pos, mut written) = (0usize, 0usize);
        while written < out.len() {
            let f = self.frame.expect("in a data frame");
            let (src, from_input): (&[u8], bool) = if f.remaining > 0 {
                let take = f.remaining.min((input.len() - pos) as u64) as usize;
                if take == 0 {
                    break; // more input needed
                }
                match f.mask {
                    Some(mask) => {
                        let take = take.min(scratch.len());
                        scratch[..take].copy_from_slice(&input[pos..pos + take]);
                        apply_mask(&mut scratch[..take], mask, f.offset);
                        (&scratch[..take], true)
                    }
                    None => (&input[pos..pos + take], true),
                }
            } else if f.fin && self.tail_fed < TAIL.len() {
                (&TAIL[self.tail_fed..], false)
            } else if self.inflate_full {
                (&[][..], false) // drain what the decompressor still holds
            } else {
                // the frame is done
                self.frame = None;
                if !f.fin {
                    break;
                }
                if kind == MessageKind::Text && !self.utf8.is_complete() {
                    return Err(Violation::payload(
                        "the peer's text message ends inside a UTF-8 sequence",
                    ));
                }
                self.message = None;
                self.compressed = false;
                self.inflate.as_mut().expect("deflate agreed").end_message();
                return Ok((
                    pos,
                    Some(Event::Data {
                        n: written,
                        kind,
                        end: true,
                    }),
                ));
            };
            // room for at most one byte past the size limit: a bomb stops right there
            let mut room = &mut out[written..];
            if self.max_message != 0 {
                let left = (self.max_message - self.message_len).saturating_add(1);
                let n = room.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                room = &mut room[..n];
            }
            let room_len = room.len();
            let (used, n) = self
                .inflate
                .as_mut()
                .expect("deflate agreed")
                .inflate(src, room)?;
            if used == 0 && n == 0 && !src.is_empty() {
                return Err(Violation::payload(
                    "the peer's compressed data makes no progress",
                ));
            }
            self.inflate_full = n == room_len;
            if from_input {
                pos += used;
                let f = self.frame.as_mut().expect("in a data frame");
                f.offset += used as u64;
                f.remaining -= used as u64;
            } else {
                self.tail_fed += used;
            }
            self.count(n as u64)?;
            let produced = &out[written..written + n];
            if kind == MessageKind::Text && self.utf8.feed(produced).is_err() {
                return Err(Violation::payload(
                    "the peer sent a text message that is not valid UTF-8",
                ));
            }
            written += n;
        }
        let ev = (written > 0).then_some(Event::Data {
            n: written,
            kind,
            end: false,
        });
        Ok((pos, ev))
    }

    fn finish_control(&mut self) -> Result<Event, Violation> {
        let f = self.frame.take().expect("in a control frame");
        let payload = &mut self.control_buf[..f.offset as usize];
        if let Some(mask) = f.mask {
            apply_mask(payload, mask, 0);
        }
        self.control = ControlPayload::from_slice(payload);
        Ok(match f.opcode {
            Opcode::Ping => Event::Ping(self.control),
            Opcode::Pong => Event::Pong,
            _ => {
                close::parse_payload(self.control.as_slice())?;
                Event::Close(self.control)
            }
        })
    }

    /// Unmasks and checks a piece of data payload already in the caller's buffer.
    fn deliver(&mut self, data: &mut [u8]) -> Result<Option<Event>, Violation> {
        let f = self.frame.as_mut().expect("in a data frame");
        let n = data.len();
        if let Some(mask) = f.mask {
            apply_mask(data, mask, f.offset);
        }
        f.offset += n as u64;
        f.remaining -= n as u64;
        let kind = self.message.expect("a data frame belongs to a message");
        if kind == MessageKind::Text && self.utf8.feed(data).is_err() {
            return Err(Violation::payload(
                "the peer sent a text message that is not valid UTF-8",
            ));
        }
        let end = f.remaining == 0 && f.fin;
        if f.remaining == 0 {
            self.frame = None;
        }
        if end {
            if !self.utf8.is_complete() {
                return Err(Violation::payload(
                    "the peer's text message ends inside a UTF-8 sequence",
                ));
            }
            self.message = None;
        }
        if n == 0 && !end {
            return Ok(None);
        }
        Ok(Some(Event::Data { n, kind, end }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::write_frame;

    const MASK: Option<[u8; 4]> = Some([0xA1, 0xB2, 0xC3, 0xD4]);

    /// A frame as the given role's peer would send it.
    fn frame(to: Role, opcode: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mask = if to == Role::Server { MASK } else { None };
        write_frame(&mut out, opcode, fin, payload, mask);
        out
    }

    /// What the application sees: data pieces merged per message, and control events.
    #[derive(Debug, PartialEq, Eq)]
    pub(super) enum Seen {
        Message(MessageKind, Vec<u8>),
        Ping(Vec<u8>),
        Pong,
        Close(Vec<u8>),
    }

    /// Feeds `input` in pieces of `step` bytes with an output buffer of `out_len` bytes.
    fn run(role: Role, input: &[u8], step: usize, out_len: usize) -> Result<Vec<Seen>, Violation> {
        let mut rx = Receiver::new(role, 0);
        run_with(&mut rx, input, step, out_len)
    }

    pub(super) fn run_with(
        rx: &mut Receiver,
        input: &[u8],
        step: usize,
        out_len: usize,
    ) -> Result<Vec<Seen>, Violation> {
        let mut seen = Vec::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut out = vec![0u8; out_len];
        let mut buffered: Vec<u8> = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buffered.extend_from_slice(piece);
            loop {
                let (used, ev) = rx.feed(&buffered, &mut out)?;
                buffered.drain(..used);
                match ev {
                    None => break,
                    Some(Event::Data { n, kind, end }) => {
                        partial.extend_from_slice(&out[..n]);
                        if end {
                            seen.push(Seen::Message(kind, std::mem::take(&mut partial)));
                        }
                    }
                    Some(Event::Ping(p)) => seen.push(Seen::Ping(p.as_slice().to_vec())),
                    Some(Event::Pong) => seen.push(Seen::Pong),
                    Some(Event::Close(p)) => {
                        seen.push(Seen::Close(p.as_slice().to_vec()));
                        return Ok(seen);
                    }
                }
            }
        }
        Ok(seen)
    }

    /// Runs every split and buffer size and checks they all agree.
    fn all_ways(role: Role, input: &[u8]) -> Result<Vec<Seen>, Violation> {
        let whole = run(role, input, input.len(), 1 << 16);
        for step in [1, 2, 3, 7] {
            for out_len in [1, 2, 5, 64] {
                assert_eq!(
                    run(role, input, step, out_len),
                    whole,
                    "step {step} out {out_len}"
                );
            }
        }
        whole
    }

    #[test]
    fn messages_in_both_roles_split_anywhere() {
        for role in [Role::Client, Role::Server] {
            let mut input = frame(role, Opcode::Text, true, "héllo €".as_bytes());
            input.extend(frame(role, Opcode::Binary, true, &[0, 1, 2, 255]));
            input.extend(frame(role, Opcode::Binary, true, b""));
            input.extend(frame(role, Opcode::Text, true, b""));
            assert_eq!(
                all_ways(role, &input).unwrap(),
                vec![
                    Seen::Message(MessageKind::Text, "héllo €".as_bytes().to_vec()),
                    Seen::Message(MessageKind::Binary, vec![0, 1, 2, 255]),
                    Seen::Message(MessageKind::Binary, vec![]),
                    Seen::Message(MessageKind::Text, vec![]),
                ]
            );
        }
    }

    #[test]
    fn control_frames_between_fragments() {
        let role = Role::Client;
        let text = "κόσμε".as_bytes();
        let mut input = frame(role, Opcode::Text, false, &text[..3]); // splits a code point
        input.extend(frame(role, Opcode::Ping, true, b"p1"));
        input.extend(frame(role, Opcode::Continue, false, b""));
        input.extend(frame(role, Opcode::Pong, true, b"ignored"));
        input.extend(frame(role, Opcode::Continue, true, &text[3..]));
        input.extend(frame(role, Opcode::Close, true, b"\x03\xe8done"));
        input.extend(b"bytes after the close frame are never read");
        assert_eq!(
            all_ways(role, &input).unwrap(),
            vec![
                Seen::Ping(b"p1".to_vec()),
                Seen::Pong,
                Seen::Message(MessageKind::Text, text.to_vec()),
                Seen::Close(b"\x03\xe8done".to_vec()),
            ]
        );
    }

    #[test]
    fn data_pieces_report_fragment_and_end() {
        let mut rx = Receiver::new(Role::Client, 0);
        let input = frame(Role::Client, Opcode::Binary, true, &[7; 10]);
        let mut out = [0u8; 4];
        let (used, ev) = rx.feed(&input, &mut out).unwrap();
        assert_eq!(
            ev,
            Some(Event::Data {
                n: 4,
                kind: MessageKind::Binary,
                end: false
            })
        );
        assert!(rx.in_message());
        let (used2, ev) = rx.feed(&input[used..], &mut out).unwrap();
        assert_eq!(
            ev,
            Some(Event::Data {
                n: 4,
                kind: MessageKind::Binary,
                end: false
            })
        );
        assert_eq!(rx.direct_len(), 2);
        let mut direct = input[used + used2..].to_vec();
        assert_eq!(
            rx.accept_direct(&mut direct).unwrap(),
            Event::Data {
                n: 2,
                kind: MessageKind::Binary,
                end: true
            }
        );
        assert!(!rx.in_message());
    }

    #[test]
    fn direct_reads_unmask_at_the_right_offset() {
        let payload: Vec<u8> = (0..100u8).collect();
        let input = frame(Role::Server, Opcode::Binary, true, &payload);
        let mut rx = Receiver::new(Role::Server, 0);
        let mut out = [0u8; 33];
        let (used, ev) = rx.feed(&input, &mut out).unwrap();
        assert_eq!(
            ev,
            Some(Event::Data {
                n: 33,
                kind: MessageKind::Binary,
                end: false
            })
        );
        let mut rest = input[used..].to_vec();
        rx.accept_direct(&mut rest).unwrap();
        assert_eq!(&out[..], &payload[..33]);
        assert_eq!(rest, payload[33..]);
    }

    fn violation(role: Role, input: &[u8]) -> u16 {
        let whole = run(role, input, input.len(), 1 << 16).unwrap_err();
        assert_eq!(run(role, input, 1, 1).unwrap_err(), whole);
        whole.status
    }

    #[test]
    fn every_violation_a_peer_can_commit() {
        let c = Role::Client;
        // a server must not mask; a client must
        assert_eq!(
            violation(c, &frame(Role::Server, Opcode::Text, true, b"x")),
            1002
        );
        assert_eq!(
            violation(Role::Server, &frame(c, Opcode::Text, true, b"x")),
            1002
        );
        // control frames: too long, fragmented
        assert_eq!(violation(c, &frame(c, Opcode::Ping, true, &[0; 126])), 1002);
        assert_eq!(violation(c, &frame(c, Opcode::Ping, false, b"")), 1002);
        assert_eq!(violation(c, &frame(c, Opcode::Close, false, b"")), 1002);
        // continuation with nothing to continue; a new message inside a fragmented one
        assert_eq!(violation(c, &frame(c, Opcode::Continue, true, b"x")), 1002);
        let mut nested = frame(c, Opcode::Text, false, b"a");
        nested.extend(frame(c, Opcode::Binary, true, b"b"));
        assert_eq!(violation(c, &nested), 1002);
        // reserved opcodes and bits, huge length
        assert_eq!(violation(c, &[0x83, 0x00]), 1002);
        assert_eq!(violation(c, &[0x8F, 0x00]), 1002);
        assert_eq!(violation(c, &[0xC1, 0x00]), 1002);
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(violation(c, &huge), 1002);
        // close payloads
        assert_eq!(violation(c, &frame(c, Opcode::Close, true, b"\x03")), 1002);
        for status in [999u16, 1004, 1005, 1006, 1015, 5000] {
            assert_eq!(
                violation(c, &frame(c, Opcode::Close, true, &status.to_be_bytes())),
                1002
            );
        }
        assert_eq!(
            violation(c, &frame(c, Opcode::Close, true, b"\x03\xe8\xc3")),
            1007
        );
        // invalid UTF-8: in one frame, across frames, and cut short at the end
        assert_eq!(violation(c, &frame(c, Opcode::Text, true, b"ok\xff")), 1007);
        let mut split = frame(c, Opcode::Text, false, b"\xe2\x82");
        split.extend(frame(c, Opcode::Continue, true, b"\x28"));
        assert_eq!(violation(c, &split), 1007);
        assert_eq!(
            violation(c, &frame(c, Opcode::Text, true, b"\xe2\x82")),
            1007
        );
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_ends() {
        // Only the header and the first bad bytes have arrived: fail fast.
        let input = frame(
            Role::Client,
            Opcode::Text,
            true,
            b"\xce\xba\xff and much more",
        );
        let mut rx = Receiver::new(Role::Client, 0);
        let mut out = [0u8; 64];
        assert_eq!(rx.feed(&input[..5], &mut out).unwrap_err().status, 1007);
    }

    #[test]
    fn message_size_limit_counts_every_fragment() {
        let mut input = frame(Role::Client, Opcode::Binary, false, &[0; 6]);
        input.extend(frame(Role::Client, Opcode::Continue, true, &[0; 5]));
        let mut rx = Receiver::new(Role::Client, 10);
        assert_eq!(run_with(&mut rx, &input, 1, 4).unwrap_err().status, 1009);
        let mut rx = Receiver::new(Role::Client, 11);
        assert_eq!(run_with(&mut rx, &input, 1, 4).unwrap().len(), 1);
    }
}

#[cfg(test)]
mod deflate_tests {
    use super::*;
    use crate::protocol::deflate::{answer_offers, client_offer, Compressor, Settings};
    use crate::protocol::frame::{append_masked, write_header_rsv1};

    const MASK: Option<[u8; 4]> = Some([0xA1, 0xB2, 0xC3, 0xD4]);

    fn agreed(takeover: bool) -> crate::protocol::deflate::Agreed {
        let s = Settings {
            context_takeover: takeover,
            threshold: 0,
            ..Settings::default()
        };
        answer_offers(&s, &client_offer(&s)).unwrap().1
    }

    /// One message, compressed and framed as `to`'s peer sends it, in frames of the given
    /// input piece sizes.
    fn message(c: &mut Compressor, to: Role, kind: Opcode, pieces: &[&[u8]]) -> Vec<u8> {
        let mask = if to == Role::Server { MASK } else { None };
        let mut wire = Vec::new();
        let mut out = [0u8; 100];
        let mut opcode = kind;
        for (i, p) in pieces.iter().enumerate() {
            let fin = i + 1 == pieces.len();
            let mut rest = *p;
            loop {
                let first = !c.in_message();
                let piece = c.compress(rest, fin, &mut out).unwrap();
                rest = &rest[piece.consumed..];
                let data = &out[..piece.written];
                write_header_rsv1(
                    &mut wire,
                    opcode,
                    piece.done && fin,
                    first,
                    data.len() as u64,
                    mask,
                );
                append_masked(&mut wire, data, mask, 0);
                opcode = Opcode::Continue;
                if piece.done {
                    break;
                }
            }
        }
        wire
    }

    /// The messages' bytes, fed in pieces of `step` bytes through `out_len` bytes of output.
    fn receive(
        rx: &mut Receiver,
        input: &[u8],
        step: usize,
        out_len: usize,
    ) -> Result<Vec<Vec<u8>>, Violation> {
        Ok(super::tests::run_with(rx, input, step, out_len)?
            .into_iter()
            .filter_map(|s| match s {
                super::tests::Seen::Message(_, bytes) => Some(bytes),
                _ => None,
            })
            .collect())
    }

    #[test]
    fn compressed_messages_in_both_roles_split_anywhere() {
        let text = "{\"héllo\":\"wörld\",\"n\":[1,2,3,4,5,6,7,8,9,10]}".repeat(20);
        for takeover in [false, true] {
            for role in [Role::Client, Role::Server] {
                for (step, out_len) in [(1, 1), (3, 7), (1000, 5), (100_000, 100_000)] {
                    let a = agreed(takeover);
                    let mut c = Compressor::new(a);
                    let mut wire = message(&mut c, role, Opcode::Text, &[text.as_bytes()]);
                    wire.extend(message(&mut c, role, Opcode::Binary, &[b"", b"abc", b""]));
                    wire.extend(message(&mut c, role, Opcode::Text, &[text.as_bytes()]));
                    wire.extend(frame_plain(role, b"plain"));
                    let mut rx = Receiver::new(role, 0);
                    rx.enable_deflate(&a);
                    assert_eq!(
                        receive(&mut rx, &wire, step, out_len).unwrap(),
                        vec![
                            text.as_bytes().to_vec(),
                            b"abc".to_vec(),
                            text.as_bytes().to_vec(),
                            b"plain".to_vec()
                        ],
                        "takeover {takeover} {role:?} step {step} out {out_len}"
                    );
                }
            }
        }
    }

    #[test]
    fn output_that_fills_the_buffer_exactly_finishes_without_more_input() {
        let a = agreed(true);
        let mut c = Compressor::new(a);
        let wire = message(&mut c, Role::Client, Opcode::Binary, &[&[7u8; 10]]);
        let mut rx = Receiver::new(Role::Client, 0);
        rx.enable_deflate(&a);
        let mut out = [0u8; 10];
        let (used, ev) = rx.feed(&wire, &mut out).unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(
            ev,
            Some(Event::Data {
                n: 10,
                kind: MessageKind::Binary,
                end: false
            })
        );
        assert!(rx.has_pending_output());
        let (used, ev) = rx.feed(&[], &mut out).unwrap();
        assert_eq!(
            (used, ev),
            (
                0,
                Some(Event::Data {
                    n: 0,
                    kind: MessageKind::Binary,
                    end: true
                })
            )
        );
        assert!(!rx.has_pending_output() && !rx.in_message());
    }

    #[test]
    fn rsv1_rules_and_limits_on_inflated_size() {
        let a = agreed(false);
        let fail = |rx: &mut Receiver, wire: &[u8]| {
            let mut out = [0u8; 64];
            let mut pos = 0;
            loop {
                match rx.feed(&wire[pos..], &mut out) {
                    Err(v) => return v.status,
                    Ok((used, None)) if pos + used == wire.len() => return 0,
                    Ok((used, _)) => pos += used,
                }
            }
        };
        let with = |max: u64| {
            let mut rx = Receiver::new(Role::Client, max);
            rx.enable_deflate(&a);
            rx
        };
        // RSV1 without negotiation, on a control frame, on a continuation
        assert_eq!(
            fail(&mut Receiver::new(Role::Client, 0), &[0xC2, 0x01, 0x00]),
            1002
        );
        assert_eq!(fail(&mut with(0), &[0xC9, 0x00]), 1002);
        assert_eq!(
            fail(&mut with(0), &[0x42, 0x01, 0x00, 0xC0, 0x01, 0x00]),
            1002
        );
        // corrupt deflate data (reserved block type)
        assert_eq!(fail(&mut with(0), &[0xC2, 0x02, 0xff, 0xff]), 1007);
        // a bomb: 1 MiB of zeros against a 64 KiB limit is stopped at the limit
        let mut c = Compressor::new(a);
        let bomb = message(&mut c, Role::Client, Opcode::Binary, &[&vec![0u8; 1 << 20]]);
        assert!(bomb.len() < 16 * 1024);
        assert_eq!(fail(&mut with(64 * 1024), &bomb), 1009);
        let mut c = Compressor::new(a);
        let fits = message(
            &mut c,
            Role::Client,
            Opcode::Binary,
            &[&vec![0u8; 64 * 1024]],
        );
        assert_eq!(fail(&mut with(64 * 1024), &fits), 0);
        // compressed text is checked for UTF-8 after inflating
        let mut c = Compressor::new(a);
        let bad = message(&mut c, Role::Client, Opcode::Text, &[b"ok \xff"]);
        assert_eq!(fail(&mut with(0), &bad), 1007);
    }

    fn frame_plain(to: Role, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mask = if to == Role::Server { MASK } else { None };
        crate::protocol::frame::write_frame(&mut out, Opcode::Binary, true, payload, mask);
        out
    }
}
