//! The per-message compressor and decompressor (RFC 7692 §7.2), streaming through fixed
//! buffers: a message of any size passes through [`OUT_CHUNK`] bytes of compressed output on
//! the sending side and through the caller's buffer on the receiving side.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use parking_lot::Mutex;

use super::negotiate::Agreed;
use super::MAX_WINDOW_BITS;
use crate::protocol::Violation;

/// Compressed output is framed in pieces of at most this many bytes.
pub(crate) const OUT_CHUNK: usize = 16 * 1024;
/// The end of a sync flush, which the sender removes and the receiver puts back (§7.2.1).
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Idle compressors and decompressors kept for the next message, process-wide.
const POOL_MAX: usize = 4;

/// A compressor, as the pool keeps it.
struct Deflater {
    z: Compress,
    bits: u8,
    level: u8,
}

static DEFLATERS: Mutex<Vec<Deflater>> = Mutex::new(Vec::new());
static INFLATERS: Mutex<Vec<Decompress>> = Mutex::new(Vec::new());

fn take_deflater(bits: u8, level: u8) -> Deflater {
    let mut pool = DEFLATERS.lock();
    if let Some(i) = pool.iter().position(|d| d.bits == bits && d.level == level) {
        return pool.swap_remove(i);
    }
    drop(pool);
    Deflater {
        z: Compress::new_with_window_bits(Compression::new(u32::from(level)), false, bits),
        bits,
        level,
    }
}

fn give_back<T>(pool: &Mutex<Vec<T>>, item: T) {
    let mut pool = pool.lock();
    if pool.len() == POOL_MAX {
        pool.remove(0);
    }
    pool.push(item);
}

/// What one [`Compressor::compress`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// How many input bytes were taken.
    pub consumed: usize,
    /// Compressed bytes written to the start of the output: one frame's payload.
    pub written: usize,
    /// The input piece is fully compressed and flushed; with `fin`, the message is complete.
    pub done: bool,
}

/// The sending direction's compression state.
pub struct Compressor {
    agreed: Agreed,
    /// Our context: the last `2^send_bits` bytes compressed, when context takeover is agreed.
    history: Vec<u8>,
    active: Option<Deflater>,
    /// Bytes of output held back: they may be the flush's tail, which is not sent.
    held: [u8; 4],
    held_len: usize,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("agreed", &self.agreed)
            .field("history", &self.history.len())
            .field("active", &self.active.is_some())
            .finish()
    }
}

impl Compressor {
    /// The compressor for what the handshake agreed.
    pub fn new(agreed: Agreed) -> Self {
        Compressor {
            agreed,
            history: Vec::new(),
            active: None,
            held: [0; 4],
            held_len: 0,
        }
    }

    /// Whether a message that starts with a piece of `len` bytes goes compressed: one sent
    /// whole under the threshold does not; one sent in fragments always does (its size is
    /// unknown when its first frame goes out).
    pub fn wants(&self, len: usize, whole: bool) -> bool {
        !whole || len as u64 >= u64::from(self.agreed.threshold)
    }

    /// Whether a `ws_send` piece of `len` bytes goes out compressed: its message started
    /// compressed, or it starts one now (it is no `continuation`) that [`Compressor::wants`].
    pub fn applies(&self, continuation: bool, len: usize, fin: bool) -> bool {
        self.in_message() || (!continuation && self.wants(len, fin))
    }

    /// Whether a compressed message is in progress.
    pub fn in_message(&self) -> bool {
        self.active.is_some()
    }

    /// Compresses more of the current message (starting one if none is in progress) from
    /// `input` into `out` (at least 64 bytes). Call again with the rest of the input until
    /// `done`; `fin` marks the message's last piece. Each call's output is one frame's
    /// payload (the message's first frame carries RSV1).
    pub fn compress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<Piece, &'static str> {
        debug_assert!(out.len() >= 64);
        if self.active.is_none() {
            let mut d = take_deflater(self.agreed.send_bits, self.agreed.level);
            d.z.reset();
            if self.agreed.send_takeover && !self.history.is_empty() {
                d.z.set_dictionary(&self.history)
                    .map_err(|_| "zlib refused the compression dictionary")?;
            }
            self.active = Some(d);
            self.held_len = 0;
        }
        let d = self.active.as_mut().expect("a message is in progress");
        out[..self.held_len].copy_from_slice(&self.held[..self.held_len]);
        let mut written = self.held_len;
        let mut consumed = 0;
        let mut done = false;
        while written < out.len() {
            let flush = if consumed < input.len() {
                FlushCompress::None
            } else {
                FlushCompress::Sync
            };
            let (in0, out0) = (d.z.total_in(), d.z.total_out());
            let status =
                d.z.compress(&input[consumed..], &mut out[written..], flush)
                    .map_err(|_| "zlib failed to compress")?;
            consumed += (d.z.total_in() - in0) as usize;
            written += (d.z.total_out() - out0) as usize;
            // A flush is complete once it leaves room in the output; a repeated flush with no
            // new input is refused with BufError and writes nothing.
            if flush == FlushCompress::Sync && (written < out.len() || status == Status::BufError) {
                done = true;
                break;
            }
        }
        if self.agreed.send_takeover {
            remember(
                &mut self.history,
                &input[..consumed],
                1 << self.agreed.send_bits,
            );
        }
        self.held_len = 0;
        if !done {
            // keep the last 4 bytes back: if nothing follows them, they are the tail
            let keep = written.min(4);
            self.held[..keep].copy_from_slice(&out[written - keep..written]);
            self.held_len = keep;
            written -= keep;
        } else if fin {
            if out[..written].ends_with(&TAIL) {
                written -= 4;
            }
            if written == 0 {
                // The data already ends at a byte boundary (an empty message, or a previous
                // piece's flush): send an empty stored block's header byte, which the
                // receiver's appended tail completes.
                out[0] = 0;
                written = 1;
            }
            give_back(
                &DEFLATERS,
                self.active.take().expect("a message is in progress"),
            );
        }
        Ok(Piece {
            consumed,
            written,
            done,
        })
    }
}

/// The receiving direction's decompression state.
pub struct Decompressor {
    bits: u8,
    takeover: bool,
    /// Kept between messages with the peer's context takeover; otherwise only during one.
    z: Option<Decompress>,
    /// The peer ended its deflate stream (BFINAL) in this message.
    ended: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("bits", &self.bits)
            .field("takeover", &self.takeover)
            .field("held", &self.z.is_some())
            .finish()
    }
}

impl Decompressor {
    /// The decompressor for what the handshake agreed.
    pub fn new(agreed: &Agreed) -> Self {
        Decompressor {
            bits: agreed.recv_bits,
            takeover: agreed.recv_takeover,
            z: None,
            ended: false,
        }
    }

    /// Inflates from `input` into `out` (not empty). Returns the input bytes taken and the
    /// output bytes written; once the peer's deflate stream has ended (a BFINAL block), the
    /// rest of the message is taken and ignored.
    pub fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Violation> {
        if self.ended {
            return Ok((input.len(), 0));
        }
        let z = self.z.get_or_insert_with(|| {
            if self.takeover {
                // kept for the connection's life: the smallest window that decodes the peer's
                Decompress::new_with_window_bits(false, self.bits)
            } else {
                INFLATERS
                    .lock()
                    .pop()
                    .unwrap_or_else(|| Decompress::new_with_window_bits(false, MAX_WINDOW_BITS))
            }
        });
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = z
            .decompress(input, out, FlushDecompress::Sync)
            .map_err(|_| {
                Violation::payload("the peer's compressed data is not valid deflate data")
            })?;
        let used = (z.total_in() - in0) as usize;
        let written = (z.total_out() - out0) as usize;
        if status == Status::StreamEnd {
            self.ended = true;
            return Ok((input.len(), written));
        }
        Ok((used, written))
    }

    /// The message is complete: without the peer's context takeover (or after a stream the
    /// peer ended) the state goes back to the pool.
    pub fn end_message(&mut self) {
        if self.ended {
            // A BFINAL block ends the stream and its window with it: start afresh.
            self.ended = false;
            if let Some(z) = self.z.as_mut() {
                z.reset(false);
            }
        }
        if !self.takeover {
            if let Some(mut z) = self.z.take() {
                z.reset(false);
                give_back(&INFLATERS, z);
            }
        }
    }
}

/// Appends `data` to `history`, keeping only the last `window` bytes.
fn remember(history: &mut Vec<u8>, data: &[u8], window: usize) {
    if data.len() >= window {
        history.clear();
        history.extend_from_slice(&data[data.len() - window..]);
        return;
    }
    let total = history.len() + data.len();
    if total > window {
        history.drain(..total - window);
    }
    history.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::deflate::{answer_offers, client_offer, Settings};

    fn agreed(takeover: bool, threshold: u32) -> Agreed {
        let s = Settings {
            context_takeover: takeover,
            threshold,
            ..Settings::default()
        };
        answer_offers(&s, &client_offer(&s)).unwrap().1
    }

    /// Compresses `pieces` of one message with an output buffer of `out_len` bytes; returns
    /// each frame's payload.
    fn compress(c: &mut Compressor, pieces: &[&[u8]], out_len: usize) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut out = vec![0u8; out_len];
        for (i, piece) in pieces.iter().enumerate() {
            let fin = i + 1 == pieces.len();
            let mut rest = *piece;
            loop {
                let p = c.compress(rest, fin, &mut out).unwrap();
                rest = &rest[p.consumed..];
                frames.push(out[..p.written].to_vec());
                if p.done {
                    assert!(rest.is_empty());
                    break;
                }
            }
        }
        assert!(!c.in_message());
        frames
    }

    /// Inflates one message's frames as a receiver does (tail appended) into `out_len`-byte
    /// pieces.
    fn inflate(d: &mut Decompressor, frames: &[Vec<u8>], out_len: usize) -> Vec<u8> {
        let mut data: Vec<u8> = frames.concat();
        data.extend_from_slice(&TAIL);
        let mut got = Vec::new();
        let mut out = vec![0u8; out_len];
        let mut pos = 0;
        loop {
            let (used, n) = d.inflate(&data[pos..], &mut out).unwrap();
            pos += used;
            got.extend_from_slice(&out[..n]);
            if pos == data.len() && n < out.len() {
                break;
            }
        }
        d.end_message();
        got
    }

    #[test]
    fn messages_round_trip_in_every_shape() {
        let json: Vec<u8> = (0..3000)
            .flat_map(|i| format!("{{\"id\":{i},\"price\":{}.25}},", i * 7 % 1000).into_bytes())
            .collect();
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for takeover in [false, true] {
            let a = agreed(takeover, 0);
            let mut c = Compressor::new(a);
            let mut d = Decompressor::new(&a);
            for out_len in [64, 1000, OUT_CHUNK] {
                let cases: Vec<Vec<&[u8]>> = vec![
                    vec![b""],
                    vec![b"x"],
                    vec![&json],
                    vec![&noise],
                    vec![&json[..100], &json[100..]],
                    vec![b"abc", b""],
                    vec![b"", b"", b"abc"],
                    vec![&json[..5000], &noise, &json],
                ];
                for pieces in cases {
                    let whole: Vec<u8> = pieces.concat();
                    for inflate_out in [1, 7, 4096] {
                        if inflate_out < 4096 && whole.len() > 10_000 {
                            continue;
                        }
                        let frames = compress(&mut c, &pieces, out_len);
                        assert_eq!(inflate(&mut d, &frames, inflate_out), whole);
                    }
                }
            }
        }
    }

    #[test]
    fn context_takeover_shrinks_repeated_messages() {
        let msg = br#"{"type":"trade","symbol":"BTC-USD","price":"43210.50","size":"0.012"}"#;
        let size = |takeover: bool| {
            let a = agreed(takeover, 0);
            let mut c = Compressor::new(a);
            let mut d = Decompressor::new(&a);
            let mut last = 0;
            for _ in 0..3 {
                let frames = compress(&mut c, &[msg], 1024);
                assert_eq!(inflate(&mut d, &frames, 64), msg);
                last = frames.concat().len();
            }
            last
        };
        let (with, without) = (size(true), size(false));
        assert!(with < without / 2, "with {with} without {without}");
    }

    #[test]
    fn threshold_and_history_window() {
        let c = Compressor::new(agreed(true, 64));
        assert!(!c.wants(63, true));
        assert!(c.wants(64, true));
        assert!(c.wants(0, false));
        let mut h = Vec::new();
        remember(&mut h, b"abcdef", 4);
        assert_eq!(h, b"cdef");
        remember(&mut h, b"gh", 4);
        assert_eq!(h, b"efgh");
        remember(&mut h, b"", 4);
        assert_eq!(h, b"efgh");
    }

    #[test]
    fn bad_data_and_stream_end() {
        let a = agreed(false, 0);
        let mut d = Decompressor::new(&a);
        let mut out = [0u8; 64];
        // BTYPE 11 is reserved
        assert_eq!(d.inflate(&[0xff, 0xff], &mut out).unwrap_err().status, 1007);
        let mut d = Decompressor::new(&a);
        // a final stored block "hi", then bytes that are ignored
        let data = [0x01, 0x02, 0x00, 0xfd, 0xff, b'h', b'i', 0x55, 0x66];
        let (used, n) = d.inflate(&data, &mut out).unwrap();
        assert_eq!((used, &out[..n]), (data.len(), &b"hi"[..]));
        assert_eq!(d.inflate(&TAIL, &mut out).unwrap(), (4, 0));
        d.end_message();
        assert_eq!(inflate(&mut d, &[vec![0x4a, 0x4c, 0x02, 0x00]], 64), b"ab");
    }
}
