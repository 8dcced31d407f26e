//! permessage-deflate in the blocking driver: the handshake's result switched on for a link,
//! and compressed sends. The protocol core does the work (`protocol::deflate`); this only
//! frames its output and writes it.

use super::io::{Limit, Signals};
use super::link::{Link, TxSide};
use crate::error::{Error, Result, WS_ERROR_INTERNAL};
use crate::protocol::deflate::{self, Agreed, Compressor};
use crate::protocol::frame::Opcode;
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

    /// Whether this piece of a message goes out compressed.
    pub(super) fn compresses(tx: &TxSide, planned: &Planned, len: usize) -> bool {
        tx.deflate
            .as_ref()
            .is_some_and(|c| c.applies(planned.opcode == Opcode::Continue, len, planned.fin))
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
        let mut rest = payload;
        let mut opcode = planned.opcode;
        loop {
            let mask = self.mask();
            self.take_control(&mut tx.out);
            let c = tx.deflate.as_mut().expect("compression agreed");
            let (consumed, done) =
                deflate::append_frame(c, rest, opcode, planned.fin, mask, &mut tx.out)
                    .map_err(|e| Error::new(WS_ERROR_INTERNAL, e))?;
            rest = &rest[consumed..];
            self.write_out(tx, sig, limit, "the message")?;
            opcode = Opcode::Continue;
            if done {
                return Ok(());
            }
        }
    }
}
