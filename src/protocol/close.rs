//! Close frames and the close-handshake state machine (WinHTTP's rules: the application, not
//! the library, decides when to answer the peer's close).

use super::frame::ControlPayload;
use super::utf8::Utf8Validator;
use super::Violation;

/// 1002: protocol error.
pub(crate) const PROTOCOL_ERROR: u16 = 1002;
/// 1005: no status in the close frame (never sent on the wire).
pub(crate) const EMPTY: u16 = 1005;
/// 1006: the connection ended without a close frame (never sent on the wire).
pub(crate) const ABORTED: u16 = 1006;
/// 1007: invalid payload data (e.g. text that is not UTF-8).
pub(crate) const INVALID_PAYLOAD: u16 = 1007;
/// 1009: message too big.
pub(crate) const MESSAGE_TOO_BIG: u16 = 1009;
/// The longest close reason: 125 bytes of control payload less the 2-byte status.
pub(crate) const MAX_REASON_LEN: usize = 123;

/// Whether `status` may appear in a close frame on the wire (RFC 6455 §7.4 and the IANA
/// registry): 1000–1003, 1007–1014 and 3000–4999.
pub fn is_wire_status(status: u16) -> bool {
    matches!(status, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn is_utf8(bytes: &[u8]) -> bool {
    let mut v = Utf8Validator::default();
    v.feed(bytes).is_ok() && v.is_complete()
}

/// Checks a status and reason the application wants to send, and returns the close payload.
/// `EMPTY` (1005) means a close frame with no payload, and then the reason must be empty.
pub fn outgoing_payload(status: u16, reason: &[u8]) -> Result<ControlPayload, &'static str> {
    if status == EMPTY {
        if !reason.is_empty() {
            return Err("a close with status 1005 (WS_CLOSE_STATUS_EMPTY) carries no payload, so the reason must be empty");
        }
        return Ok(ControlPayload::default());
    }
    if !is_wire_status(status) {
        return Err("the close status cannot be sent: use 1000-1003, 1007-1014 or 3000-4999 (or 1005 for no status)");
    }
    if reason.len() > MAX_REASON_LEN {
        return Err("the close reason is longer than 123 bytes (WS_MAX_CLOSE_REASON_LENGTH)");
    }
    if !is_utf8(reason) {
        return Err("the close reason is not valid UTF-8");
    }
    let mut p = [0u8; 125];
    p[..2].copy_from_slice(&status.to_be_bytes());
    p[2..2 + reason.len()].copy_from_slice(reason);
    Ok(ControlPayload::from_slice(&p[..2 + reason.len()]))
}

/// Parses the payload of a received close frame into its status (1005 when empty) and reason.
pub fn parse_payload(payload: &[u8]) -> Result<(u16, &[u8]), Violation> {
    match payload.len() {
        0 => Ok((EMPTY, &[])),
        1 => Err(Violation::protocol(
            "the peer sent a close frame with a 1-byte payload",
        )),
        _ => {
            let status = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_wire_status(status) {
                return Err(Violation::protocol(
                    "the peer sent a close status that is not allowed on the wire",
                ));
            }
            let reason = &payload[2..];
            if !is_utf8(reason) {
                return Err(Violation::payload(
                    "the peer's close reason is not valid UTF-8",
                ));
            }
            Ok((status, reason))
        }
    }
}

/// The payload that answers a protocol violation with `status` (always a wire status).
pub fn status_only(status: u16) -> ControlPayload {
    outgoing_payload(status, &[]).unwrap_or_default()
}

/// The states of a connection, numbered as .NET's `WebSocketState` and the C API's `WS_STATE_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// Opened, not connected.
    None = 0,
    /// `ws_connect` is running.
    Connecting = 1,
    /// Connected; no close frame either way.
    Open = 2,
    /// We sent a close frame; the peer's has not arrived.
    CloseSent = 3,
    /// The peer's close frame arrived; we have not answered.
    CloseReceived = 4,
    /// Both close frames have passed.
    Closed = 5,
    /// The connection failed or was dropped.
    Aborted = 6,
}

impl State {
    /// Data (and our close frame) may be sent: `OPEN` or `CLOSE_RECEIVED`.
    pub fn may_send(self) -> bool {
        matches!(self, State::Open | State::CloseReceived)
    }
    /// Frames may be received: `OPEN` or `CLOSE_SENT`.
    pub fn may_receive(self) -> bool {
        matches!(self, State::Open | State::CloseSent)
    }
    /// The state with this number (`as u8`); unknown numbers are `Aborted`.
    pub fn from_u8(n: u8) -> State {
        [
            State::None,
            State::Connecting,
            State::Open,
            State::CloseSent,
            State::CloseReceived,
            State::Closed,
        ]
        .get(n as usize)
        .copied()
        .unwrap_or(State::Aborted)
    }
}

/// The close handshake of an established connection: which close frames have passed, the peer's
/// status and reason, and whether the connection was aborted. The state is derived from these.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloseHandshake {
    sent: bool,
    received: Option<ControlPayload>,
    aborted: bool,
}

impl CloseHandshake {
    /// The current state.
    pub fn state(&self) -> State {
        match (self.aborted, self.sent, self.received.is_some()) {
            (true, _, _) => State::Aborted,
            (false, false, false) => State::Open,
            (false, true, false) => State::CloseSent,
            (false, false, true) => State::CloseReceived,
            (false, true, true) => State::Closed,
        }
    }
    /// Data (and our close frame) may be sent: `OPEN` or `CLOSE_RECEIVED`.
    pub fn may_send(&self) -> bool {
        self.state().may_send()
    }
    /// Frames may be received: `OPEN` or `CLOSE_SENT`.
    pub fn may_receive(&self) -> bool {
        self.state().may_receive()
    }
    /// Whether the peer's close frame has arrived.
    pub fn close_received(&self) -> bool {
        self.received.is_some()
    }
    /// Records that our close frame is committed to the wire.
    pub fn on_close_sent(&mut self) {
        self.sent = true;
    }
    /// Commits our close frame if one may still be sent (`OPEN` or `CLOSE_RECEIVED`);
    /// returns whether it did.
    pub fn commit_close(&mut self) -> bool {
        let ok = self.may_send();
        if ok {
            self.on_close_sent();
        }
        ok
    }
    /// Records the peer's close frame (its raw payload, already validated).
    pub fn on_close_received(&mut self, payload: ControlPayload) {
        self.received = Some(payload);
    }
    /// The connection failed; nothing more passes either way.
    pub fn abort(&mut self) {
        self.aborted = true;
    }
    /// The peer's status and reason once its close frame arrived; `(1006, "")` when the
    /// connection ended without one; `None` before either.
    pub fn peer_status(&self) -> Option<(u16, &[u8])> {
        match &self.received {
            Some(p) => Some(parse_payload(p.as_slice()).unwrap_or((EMPTY, &[]))),
            None if self.aborted => Some((ABORTED, &[])),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_statuses() {
        for s in [1000, 1001, 1002, 1003, 1007, 1010, 1014, 3000, 4999] {
            assert!(outgoing_payload(s, b"why").is_ok(), "{s}");
        }
        for s in [0, 999, 1004, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(outgoing_payload(s, b"").is_err(), "{s}");
        }
        assert_eq!(outgoing_payload(1005, b"").unwrap().as_slice(), b"");
        assert!(outgoing_payload(1005, b"x").is_err());
        assert!(outgoing_payload(1000, &[b'a'; 123]).is_ok());
        assert!(outgoing_payload(1000, &[b'a'; 124]).is_err());
        assert!(outgoing_payload(1000, b"\xff").is_err());
        assert_eq!(
            outgoing_payload(4001, b"hi").unwrap().as_slice(),
            b"\x0f\xa1hi"
        );
    }

    #[test]
    fn received_payloads() {
        assert_eq!(parse_payload(b""), Ok((1005, &b""[..])));
        assert_eq!(parse_payload(b"\x03\xe8"), Ok((1000, &b""[..])));
        assert_eq!(parse_payload(b"\x03\xe8ok"), Ok((1000, &b"ok"[..])));
        assert_eq!(parse_payload(b"\x03").unwrap_err().status, 1002);
        for bad in [999u16, 1004, 1005, 1006, 1015, 5000] {
            let p = bad.to_be_bytes();
            assert_eq!(parse_payload(&p).unwrap_err().status, 1002, "{bad}");
        }
        assert_eq!(parse_payload(b"\x03\xe8\xff").unwrap_err().status, 1007);
    }

    #[test]
    fn every_transition() {
        let mut h = CloseHandshake::default();
        assert_eq!(h.state(), State::Open);
        assert!(h.may_send() && h.may_receive());
        assert_eq!(h.peer_status(), None);

        let mut sent_first = h;
        sent_first.on_close_sent();
        assert_eq!(sent_first.state(), State::CloseSent);
        assert!(!sent_first.may_send() && sent_first.may_receive());
        sent_first.on_close_received(ControlPayload::from_slice(b"\x03\xe9bye"));
        assert_eq!(sent_first.state(), State::Closed);
        assert_eq!(sent_first.peer_status(), Some((1001, &b"bye"[..])));

        h.on_close_received(ControlPayload::from_slice(b""));
        assert_eq!(h.state(), State::CloseReceived);
        assert!(h.may_send() && !h.may_receive());
        assert_eq!(h.peer_status(), Some((1005, &b""[..])));
        assert!(h.commit_close());
        assert_eq!(h.state(), State::Closed);
        assert!(!h.commit_close(), "a second close frame is never committed");

        for n in 0..8u8 {
            let st = State::from_u8(n);
            assert!(st as u8 == n || (n == 7 && st == State::Aborted));
        }
        let mut a = CloseHandshake::default();
        a.abort();
        assert_eq!(a.state(), State::Aborted);
        assert!(!a.may_send() && !a.may_receive());
        assert_eq!(a.peer_status(), Some((1006, &b""[..])));
        // a close frame that arrived before the abort is still reported
        let mut b = CloseHandshake::default();
        b.on_close_received(ControlPayload::from_slice(b"\x0b\xb8x"));
        b.abort();
        assert_eq!(b.peer_status(), Some((3000, &b"x"[..])));
    }
}
