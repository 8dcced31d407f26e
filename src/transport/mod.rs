//! The byte stream under a connection: a non-blocking TCP socket polled together with a
//! wake-up descriptor, so that every wait has a deadline and can be cancelled from another
//! thread.

mod connect;
mod waker;

pub use connect::{connect, resolve};
pub use waker::Waker;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The socket is ready for what was asked (or has an error or hang-up to report).
    Ready,
    /// The wake-up descriptor was signalled: check the cancellation flags.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Polls `fds` until one is ready or `deadline` passes; returns `false` on timeout.
/// Interrupted polls are retried with the remaining time.
pub fn poll(fds: &mut [libc::pollfd], deadline: Option<Instant>) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    0
                } else {
                    // round up so we never wake just before the deadline and spin
                    (left + Duration::from_nanos(999_999))
                        .as_millis()
                        .min(i32::MAX as u128) as i32
                }
            }
        };
        // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd structs.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if r > 0 {
            return Ok(true);
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if deadline.is_none_or(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

/// A `pollfd` asking for readability and/or writability.
pub fn pollfd(fd: libc::c_int, readable: bool, writable: bool) -> libc::pollfd {
    let mut events = 0;
    if readable {
        events |= libc::POLLIN;
    }
    if writable {
        events |= libc::POLLOUT;
    }
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until `fd` is readable and/or writable, `waker` is signalled, or `deadline` passes.
pub fn wait_fd(
    fd: libc::c_int,
    readable: bool,
    writable: bool,
    waker: &Waker,
    deadline: Option<Instant>,
) -> io::Result<Wait> {
    let mut fds = [
        pollfd(fd, readable, writable),
        pollfd(waker.as_raw_fd(), true, false),
    ];
    if !poll(&mut fds, deadline)? {
        return Ok(Wait::TimedOut);
    }
    if fds[1].revents != 0 {
        return Ok(Wait::Woken);
    }
    Ok(Wait::Ready)
}

/// A connected, non-blocking TCP stream. Reads and writes may run on two threads at once.
#[derive(Debug)]
pub struct Transport {
    sock: TcpStream,
}

impl Transport {
    /// Wraps a connected stream, switching it to non-blocking mode.
    pub fn new(sock: TcpStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        sock.set_nodelay(true)?;
        Ok(Transport { sock })
    }

    /// One non-blocking read.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.sock).read(buf)
    }

    /// One non-blocking write.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.sock).write(buf)
    }

    /// Waits for readiness, the waker or the deadline.
    pub fn wait(
        &self,
        readable: bool,
        writable: bool,
        waker: &Waker,
        deadline: Option<Instant>,
    ) -> io::Result<Wait> {
        wait_fd(self.sock.as_raw_fd(), readable, writable, waker, deadline)
    }

    /// Shuts down both directions: the peer sees FIN, blocked polls on this socket wake up,
    /// and the descriptor itself stays valid until the transport is dropped (so no other
    /// thread can ever poll a reused descriptor number).
    pub fn shutdown(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// The local port.
    pub fn local_port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}
