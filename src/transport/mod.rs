//! The byte stream under a connection: a non-blocking TCP socket polled together with a
//! wake-up descriptor, so that every wait has a deadline and can be cancelled from another
//! thread.

pub mod buffers;
mod connect;
pub mod tls;
mod waker;

pub use connect::{
    connect, connect_finish, connect_start, listen, literal, lookup_on_thread, resolve,
};
pub use waker::Waker;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

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

/// A connected, non-blocking byte stream: plain TCP, or TLS over TCP. Reads and writes may run
/// on two threads at once; a TLS session is locked only around its in-memory work and
/// non-blocking socket calls, never across a poll.
pub struct Transport {
    sock: TcpStream,
    /// Boxed: a plain connection does not carry a TLS session's kilobyte.
    tls: Option<Box<Mutex<rustls::Connection>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("sock", &self.sock)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Writes to a socket with `MSG_NOSIGNAL`: a peer that closed the connection makes the write
/// fail with `EPIPE` instead of raising `SIGPIPE`, which would kill a host process that keeps
/// the default disposition. Every byte the library writes goes through this (plain writes,
/// gathered writes, and rustls' records), so no process-wide signal setting is ever needed.
struct NoSignal<'a>(&'a TcpStream);

impl Write for NoSignal<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket2::SockRef::from(self.0).send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(self.0).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::other(format!("TLS error: {e}"))
}

impl Transport {
    /// Wraps a connected stream, switching it to non-blocking mode.
    pub fn new(sock: TcpStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        sock.set_nodelay(true)?;
        Ok(Transport { sock, tls: None })
    }

    /// Wraps a stream in TLS (the handshake runs on first use, or in [`Transport::handshake`]).
    pub fn with_tls(sock: TcpStream, session: rustls::Connection) -> io::Result<Self> {
        let mut t = Transport::new(sock)?;
        t.tls = Some(Box::new(Mutex::new(session)));
        Ok(t)
    }

    /// Writes buffered TLS records without blocking; `Ok(true)` when none are left.
    fn flush_tls(&self, c: &mut rustls::Connection) -> io::Result<bool> {
        while c.wants_write() {
            match c.write_tls(&mut NoSignal(&self.sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// One non-blocking read: `Ok(0)` at the end of the stream (for TLS, also when the peer
    /// closed TCP without close_notify: tolerated, as most stacks do).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return (&self.sock).read(buf);
        };
        let mut c = tls.lock();
        loop {
            match c.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match c.read_tls(&mut &self.sock) {
                Ok(0) => {
                    // EOF: deliver what is buffered, then end
                    let _ = c.process_new_packets();
                    return match c.reader().read(buf) {
                        Ok(n) => Ok(n),
                        Err(_) => Ok(0),
                    };
                }
                Ok(_) => {
                    let processed = c.process_new_packets();
                    let _ = self.flush_tls(&mut c); // handshake messages, alerts
                    processed.map_err(tls_io_error)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One non-blocking write; returns how many bytes were taken. For TLS the bytes may sit in
    /// the session until [`Transport::flush`] reports them sent.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return NoSignal(&self.sock).write(buf);
        };
        let mut c = tls.lock();
        if !self.flush_tls(&mut c)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = c.writer().write(buf)?;
        self.flush_tls(&mut c)?;
        Ok(n)
    }

    /// One non-blocking gathering write of `a` then `b` (plain TCP: one system call, no copy;
    /// TLS: the session copies anyway).
    pub fn write2(&self, a: &[u8], b: &[u8]) -> io::Result<usize> {
        if self.tls.is_some() || a.is_empty() || b.is_empty() {
            return if a.is_empty() {
                self.write(b)
            } else {
                self.write(a)
            };
        }
        NoSignal(&self.sock).write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)])
    }

    /// Sends what a TLS session still buffers, without blocking: `Ok(true)` when nothing is
    /// left. Always `Ok(true)` for plain TCP.
    pub fn flush(&self) -> io::Result<bool> {
        match &self.tls {
            Some(tls) => self.flush_tls(&mut tls.lock()),
            None => Ok(true),
        }
    }

    /// Whether this is a TLS stream.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether a TLS session holds records not yet written.
    pub fn has_pending_output(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.lock().wants_write())
    }

    /// Moves a TLS handshake forward without blocking: `Ok(None)` once it is complete and
    /// its last records are written, otherwise `Ok(Some(wants_write))`: wait for readability
    /// (and writability when set), then call again. Plain TCP is always complete.
    pub fn handshake_step(&self, host: &str) -> crate::error::Result<Option<bool>> {
        use crate::error::{Error, WS_ERROR_SECURE_FAILURE};
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let io_err =
            |e: io::Error| Error::connection(format!("TLS handshake with {host} failed: {e}"));
        let mut c = tls.lock();
        loop {
            self.flush_tls(&mut c).map_err(io_err)?;
            if !c.is_handshaking() && !c.wants_write() {
                return Ok(None);
            }
            match c.read_tls(&mut &self.sock) {
                Ok(0) => {
                    return Err(Error::connection(format!(
                        "{host} closed the connection during the TLS handshake"
                    )))
                }
                Ok(_) => {
                    if let Err(e) = c.process_new_packets() {
                        let _ = self.flush_tls(&mut c); // our alert
                        return Err(Error::new(WS_ERROR_SECURE_FAILURE, tls::describe(&e, host)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Some(c.wants_write()))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(e)),
            }
        }
    }

    /// Runs a client's TLS handshake to completion before the deadline.
    pub fn handshake(
        &self,
        host: &str,
        waker: &Waker,
        deadline: Option<Instant>,
        cancelled: &dyn Fn() -> bool,
    ) -> crate::error::Result<()> {
        use crate::error::{Error, WS_ERROR_TIMEOUT};
        let io_err =
            |e: io::Error| Error::connection(format!("TLS handshake with {host} failed: {e}"));
        while let Some(want_write) = self.handshake_step(host)? {
            match self
                .wait(true, want_write, waker, deadline)
                .map_err(io_err)?
            {
                Wait::Ready => {}
                Wait::Woken if cancelled() => {
                    return Err(Error::cancelled("ws_close_handle cancelled the connect"))
                }
                Wait::Woken => {}
                Wait::TimedOut => {
                    return Err(Error::new(
                        WS_ERROR_TIMEOUT,
                        format!(
                        "the TLS handshake with {host} took longer than WS_OPTION_CONNECT_TIMEOUT"
                    ),
                    ))
                }
            }
        }
        Ok(())
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

    /// Ends the stream: a TLS session sends close_notify (best effort, without blocking), then
    /// both directions are shut down. The peer sees FIN, blocked polls on this socket wake up,
    /// and the descriptor itself stays valid until the transport is dropped (so no other
    /// thread can ever poll a reused descriptor number).
    pub fn shutdown(&self) {
        if let Some(tls) = &self.tls {
            let mut c = tls.lock();
            c.send_close_notify();
            let _ = self.flush_tls(&mut c);
        }
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// The local port.
    pub fn local_port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Gives the TCP stream back (plain transports only: a proxy tunnel before TLS).
    pub fn into_stream(self) -> TcpStream {
        self.sock
    }

    /// The socket's descriptor, for polling several transports at once.
    pub fn raw_fd(&self) -> libc::c_int {
        self.sock.as_raw_fd()
    }
}
