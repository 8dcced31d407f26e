//! permessage-deflate (RFC 7692): negotiation as pure functions over header values, and the
//! per-message compressor and decompressor that stream through fixed buffers.
//!
//! Memory is the design input. zlib's compressor costs about 250-400 KiB (zlib-rs keeps a
//! 128 KiB hash table whatever the window), so no connection keeps one between messages: a
//! compressor is taken from a small shared pool when a message starts and returned when it
//! ends. Our own context takeover is kept as the last `2^bits` bytes we compressed, given to
//! the next message's compressor as its dictionary (the peer's decompressor holds the very
//! same bytes in its window). The peer's context takeover needs its decompressor's window,
//! so that decompressor stays with the connection (`2^bits` + about 7 KiB); without it,
//! decompressors come from the pool too.

pub mod codec;
pub mod negotiate;

pub use codec::{Compressor, Decompressor};

use crate::protocol::frame::{self, Opcode};
pub use negotiate::{accept_response, answer_offers, client_offer, Agreed};

/// The smallest window zlib can compress with (raw deflate); RFC 7692 allows 8.
pub(crate) const MIN_WINDOW_BITS: u8 = 9;
/// The largest window (32 KiB).
pub(crate) const MAX_WINDOW_BITS: u8 = 15;

/// This endpoint's compression settings (its options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The largest window, as a base-2 logarithm (9-15), that we compress with and that we
    /// ask the peer to compress with: it sets the memory a kept decompressor needs.
    pub window_bits: u8,
    /// Whether either side may keep its compression context from one message to the next
    /// (better ratios for small, similar messages; costs memory between messages).
    pub context_takeover: bool,
    /// The zlib compression level, 0-9.
    pub level: u8,
    /// Messages sent whole and shorter than this many bytes go uncompressed.
    pub threshold: u32,
}

impl Default for Settings {
    /// 12-bit windows (4 KiB, as Python `websockets`), context takeover, level 3, and no
    /// compression under 64 bytes: see the header's `WS_OPTION_DEFLATE_*` for the reasons.
    fn default() -> Self {
        Settings {
            window_bits: 12,
            context_takeover: true,
            level: 3,
            threshold: 64,
        }
    }
}

/// Compresses the next part of one `ws_send` piece and appends it to `out` as one frame of at
/// most [`codec::OUT_CHUNK`] payload bytes: RSV1 on the message's first frame, FIN on the
/// piece's last frame when the piece ends the message (`fin`). Returns the input bytes
/// consumed and whether the piece is done; call again with the rest until it is. Both drivers
/// frame compressed messages with this.
pub fn append_frame(
    c: &mut Compressor,
    rest: &[u8],
    opcode: Opcode,
    fin: bool,
    mask: Option<[u8; 4]>,
    out: &mut Vec<u8>,
) -> Result<(usize, bool), &'static str> {
    let mut buf = [0u8; codec::OUT_CHUNK];
    let first = !c.in_message();
    let piece = c.compress(rest, fin, &mut buf)?;
    let data = &buf[..piece.written];
    frame::write_header_rsv1(
        out,
        opcode,
        piece.done && fin,
        first,
        data.len() as u64,
        mask,
    );
    frame::append_masked(out, data, mask, 0);
    Ok((piece.consumed, piece.done))
}
