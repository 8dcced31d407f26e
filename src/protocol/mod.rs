//! The sans-IO protocol core: bytes in, events out.
//!
//! Nothing here touches a socket, a thread or the FFI. The connection layer feeds received bytes
//! to a [`Receiver`](recv::Receiver), hands outgoing payloads to a [`Framer`](send::Framer), and
//! keeps the close handshake in a [`CloseHandshake`](close::CloseHandshake). Unit tests drive
//! every piece byte by byte.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod keepalive;
mod mask;
pub mod recv;
pub mod send;
pub mod utf8;

pub use mask::{mask_key, mask_keys};

/// Which end of the connection this is: it decides who masks frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Masks every frame it sends; rejects masked frames from the server.
    Client,
    /// Sends unmasked frames; rejects unmasked frames from the client.
    Server,
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Opcode 0x1: UTF-8 text.
    Text,
    /// Opcode 0x2: binary data.
    Binary,
}

/// A protocol violation by the peer, with the close status to answer it with (1002, 1007 or
/// 1009) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The close status the violation is answered with.
    pub status: u16,
    /// What the peer did wrong.
    pub detail: &'static str,
}

impl Violation {
    /// A violation answered with 1002 (protocol error).
    pub const fn protocol(detail: &'static str) -> Self {
        Violation {
            status: close::PROTOCOL_ERROR,
            detail,
        }
    }
    /// A violation answered with 1007 (invalid payload data).
    pub const fn payload(detail: &'static str) -> Self {
        Violation {
            status: close::INVALID_PAYLOAD,
            detail,
        }
    }
}
