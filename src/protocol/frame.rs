//! Frame headers (parsed and formatted by tungstenite's codec) and masking.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

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

    fn to_tungstenite(self) -> OpCode {
        match self {
            Opcode::Continue => OpCode::Data(Data::Continue),
            Opcode::Text => OpCode::Data(Data::Text),
            Opcode::Binary => OpCode::Data(Data::Binary),
            Opcode::Close => OpCode::Control(Control::Close),
            Opcode::Ping => OpCode::Control(Control::Ping),
            Opcode::Pong => OpCode::Control(Control::Pong),
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
pub fn parse_header(input: &[u8]) -> Result<Option<Header>, Violation> {
    let mut cursor = Cursor::new(input);
    let (hdr, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(Violation::protocol("the peer used a reserved opcode")),
    };
    if hdr.rsv2 || hdr.rsv3 {
        return Err(Violation::protocol(
            "the peer set a reserved bit (RSV2 or RSV3) that no extension defines",
        ));
    }
    if len > i64::MAX as u64 {
        return Err(Violation::protocol(
            "the peer sent a 64-bit frame length with the most significant bit set",
        ));
    }
    let opcode = match hdr.opcode {
        OpCode::Data(Data::Continue) => Opcode::Continue,
        OpCode::Data(Data::Text) => Opcode::Text,
        OpCode::Data(Data::Binary) => Opcode::Binary,
        OpCode::Control(Control::Close) => Opcode::Close,
        OpCode::Control(Control::Ping) => Opcode::Ping,
        OpCode::Control(Control::Pong) => Opcode::Pong,
        _ => return Err(Violation::protocol("the peer used a reserved opcode")),
    };
    Ok(Some(Header {
        fin: hdr.is_final,
        rsv1: hdr.rsv1,
        opcode,
        mask: hdr.mask,
        len,
        header_len: cursor.position() as usize,
    }))
}

/// Appends a frame header to `out`.
pub fn write_header(out: &mut Vec<u8>, opcode: Opcode, fin: bool, len: u64, mask: Option<[u8; 4]>) {
    write_header_rsv1(out, opcode, fin, false, len, mask)
}

/// Appends a frame header to `out`, with RSV1 (a compressed message's first frame) as given.
pub fn write_header_rsv1(
    out: &mut Vec<u8>,
    opcode: Opcode,
    fin: bool,
    rsv1: bool,
    len: u64,
    mask: Option<[u8; 4]>,
) {
    let hdr = FrameHeader {
        is_final: fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode: opcode.to_tungstenite(),
        mask,
    };
    hdr.format(len, out)
        .expect("writing a frame header to a Vec cannot fail");
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
    let phase = (offset % 4) as usize;
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(phase + i) % 4];
    }
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
