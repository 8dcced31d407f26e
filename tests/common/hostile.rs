//! What hostile-peer tests share (tests/hostile.rs, tests/async_hostile.rs): a raw peer's
//! script and the record of what it saw of the library.

use std::sync::mpsc;
use std::time::Duration;

use super::raw::{self, End, Frame, RawConn, RawServer};
use wshandle::ffi::ws_handle;

/// What the raw peer saw after its script: the frames the library sent, and how it ended.
#[derive(Debug)]
pub struct PeerView {
    pub frames: Vec<Frame>,
    pub end: End,
}

impl PeerView {
    /// The statuses of the close frames the peer received.
    pub fn closes(&self) -> Vec<u16> {
        self.frames.iter().filter_map(Frame::close_status).collect()
    }
}

/// Records frames from the library until the connection ends. The library's close frame is
/// answered (its status echoed) unless the peer already sent one; a peer playing the server
/// then closes TCP, as RFC 6455 §7.1.1 asks.
pub fn record(c: &mut RawConn, is_server: bool) -> PeerView {
    let mut frames = Vec::new();
    loop {
        match c.read_frame() {
            Ok(f) => {
                let status = f.close_status();
                frames.push(f);
                if let Some(status) = status {
                    if !c.closed {
                        let _ = c.send_frame(raw::OP_CLOSE, true, &status.to_be_bytes());
                    }
                    if is_server {
                        let _ = c.stream.shutdown(std::net::Shutdown::Write);
                    }
                }
            }
            Err(end) => return PeerView { frames, end },
        }
    }
}

/// What the peer does after the upgrade; it hands the connection back to go on recording,
/// or keeps it (None) when it has reset or left.
pub type Script = Box<dyn Fn(RawConn) -> Option<RawConn> + Send + Sync>;

/// Runs `script` on `c`, then records the rest (a peer that reset the connection saw nothing).
pub fn run_script(script: &Script, c: RawConn, is_server: bool) -> PeerView {
    match script(c) {
        Some(mut c) => record(&mut c, is_server),
        None => PeerView {
            frames: Vec::new(),
            end: End::Reset,
        },
    }
}

/// Bytes a peer in the other role would send: masked when the peer is a client.
pub type Wire = fn(key: Option<[u8; 4]>) -> Vec<u8>;

/// The masking key of the peers' frames.
pub const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// The two ends of one connection: the library's handle and the raw peer's view, which
/// arrives once the peer's connection has ended.
pub struct Pair {
    pub h: ws_handle,
    pub role: &'static str,
    pub view: mpsc::Receiver<PeerView>,
    pub _server: Option<RawServer>,
}

impl Pair {
    /// The peer's view (after the library closed TCP or `ws_close_handle`).
    pub fn peer(&self) -> PeerView {
        self.view
            .recv_timeout(Duration::from_secs(20))
            .expect("the raw peer never finished")
    }
}
