//! permessage-deflate in the blocking driver: the handshake's result switched on for a link,
//! and compressed sends. The protocol core does the work (`protocol::deflate`); this only
//! frames its output and writes it.

use super::io::{Limit, Signals};
use super::link::{Link, TxSide};
use crate::error::{Error, Result, WS_ERROR_INTERNAL};
use crate::protocol::deflate::{codec::OUT_CHUNK, Agreed, Compressor};
use crate::protocol::frame::{self, Opcode};
use crate::protocol::send::Planned;

impl Link {
    /// Switches compression on as the handshake agreed.
    pub fn with_deflate(self, agreed: Option<Agreed>) -> Link {
        if let Some(a) = agreed {
            self.rx.lock().receiver.enable_deflate(&a);
            self.tx.lock().deflate = Some(Compressor::new(a));
        }
        self
    }

    /// Whether this piece of a message goes out compressed: the message started compressed,
    /// or it starts now and is long enough (or fragmented).
    pub(super) fn compresses(tx: &TxSide, planned: &Planned, len: usize) -> bool {
        tx.deflate.as_ref().is_some_and(|c| {
            c.in_message() || (planned.opcode != Opcode::Continue && c.wants(len, planned.fin))
        })
    }

    /// Sends one `ws_send` piece compressed, as one or more frames of at most `OUT_CHUNK`
    /// bytes: the message's first frame has RSV1, the last piece's last frame FIN.
    pub(super) fn send_compressed(
        &self,
        tx: &mut TxSide,
        sig: &Signals,
        planned: Planned,
        payload: &[u8],
        limit: Limit,
    ) -> Result<()> {
        let mut buf = [0u8; OUT_CHUNK];
        let mut rest = payload;
        let mut opcode = planned.opcode;
        loop {
            let c = tx.deflate.as_mut().expect("compression agreed");
            let first = !c.in_message();
            let piece = c
                .compress(rest, planned.fin, &mut buf)
                .map_err(|e| Error::new(WS_ERROR_INTERNAL, e))?;
            rest = &rest[piece.consumed..];
            let data = &buf[..piece.written];
            let fin = piece.done && planned.fin;
            let mask = self.mask();
            self.take_control(&mut tx.out);
            frame::write_header_rsv1(&mut tx.out, opcode, fin, first, data.len() as u64, mask);
            frame::append_masked(&mut tx.out, data, mask, 0);
            self.write_out(tx, sig, limit, "the message")?;
            opcode = Opcode::Continue;
            if piece.done {
                return Ok(());
            }
        }
    }
}
