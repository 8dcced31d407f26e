//! Name resolution and a non-blocking TCP connect, both bounded by a deadline and cancellable;
//! listening sockets.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::{wait_fd, Wait, Waker};
use crate::error::{
    Error, Result, WS_ERROR_CANNOT_CONNECT, WS_ERROR_NAME_NOT_RESOLVED, WS_ERROR_TIMEOUT,
};

/// How often a wait for the resolver thread checks for cancellation.
const RESOLVE_SLICE: Duration = Duration::from_millis(20);

/// Resolves `host:port`. IP literals need no lookup; names are resolved on a helper thread so
/// that the deadline and cancellation apply (getaddrinfo itself cannot be interrupted).
pub fn resolve(
    host: &str,
    port: u16,
    deadline: Option<Instant>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<SocketAddr>> {
    if let Some(addrs) = literal(host, port) {
        return Ok(addrs);
    }
    let (tx, rx) = mpsc::channel();
    lookup_on_thread(host, port, move |r| {
        let _ = tx.send(r);
    })?;
    loop {
        if cancelled() {
            return Err(Error::cancelled("ws_close_handle cancelled the connect"));
        }
        let slice = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(
                        WS_ERROR_TIMEOUT,
                        format!("resolving {host} took longer than WS_OPTION_CONNECT_TIMEOUT"),
                    ));
                }
                left.min(RESOLVE_SLICE)
            }
            None => RESOLVE_SLICE,
        };
        match rx.recv_timeout(slice) {
            Ok(answer) => return answer,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(no_addresses(host)),
        }
    }
}

fn no_addresses(host: &str) -> Error {
    Error::new(
        WS_ERROR_NAME_NOT_RESOLVED,
        format!("host {host} has no addresses"),
    )
}

/// The address of an IP literal (`127.0.0.1`, `[::1]`), which needs no lookup.
pub fn literal(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let ip = literal.parse::<IpAddr>().ok()?;
    Some(vec![SocketAddr::new(ip, port)])
}

/// Looks `host:port` up on a short-lived helper thread (getaddrinfo blocks and cannot be
/// interrupted) and hands the answer to `answer` there. Fails only when no thread can start.
pub fn lookup_on_thread(
    host: &str,
    port: u16,
    answer: impl FnOnce(Result<Vec<SocketAddr>>) + Send + 'static,
) -> Result<()> {
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("wshandle-resolve".into())
        .spawn(move || {
            let r = match (name.as_str(), port).to_socket_addrs() {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if addrs.is_empty() {
                        Err(no_addresses(&name))
                    } else {
                        Ok(addrs)
                    }
                }
                Err(e) => Err(Error::new(
                    WS_ERROR_NAME_NOT_RESOLVED,
                    format!("cannot resolve host {name}: {e}"),
                )),
            };
            answer(r);
        })
        .map(|_| ())
        .map_err(|e| {
            Error::new(
                WS_ERROR_NAME_NOT_RESOLVED,
                format!("cannot start the resolver thread: {e}"),
            )
        })
}

/// Connects to the first address that accepts, trying each in turn before the deadline.
pub fn connect(
    addrs: &[SocketAddr],
    waker: &Waker,
    deadline: Option<Instant>,
    cancelled: &dyn Fn() -> bool,
) -> Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match connect_one(*addr, waker, deadline, cancelled) {
            Ok(s) => return Ok(s),
            Err(e) if e.code == WS_ERROR_CANNOT_CONNECT => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(WS_ERROR_CANNOT_CONNECT, "no address to connect to")))
}

fn cannot(addr: SocketAddr, e: io::Error) -> Error {
    Error::new(
        WS_ERROR_CANNOT_CONNECT,
        format!("cannot connect to {addr}: {e}"),
    )
}

/// Starts a non-blocking TCP connect to `addr`. The socket is connected once it is writable
/// and [`connect_finish`] says so.
pub fn connect_start(addr: SocketAddr) -> Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| Error::from_io(WS_ERROR_CANNOT_CONNECT, "cannot create a TCP socket", &e))?;
    sock.set_nonblocking(true).map_err(|e| cannot(addr, e))?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(cannot(addr, e)),
    }
    Ok(sock.into())
}

/// How a connect started by [`connect_start`] ended, once the socket is writable.
pub fn connect_finish(sock: &TcpStream, addr: SocketAddr) -> Result<()> {
    match sock.take_error().map_err(|e| cannot(addr, e))? {
        None => Ok(()),
        Some(e) => Err(cannot(addr, e)),
    }
}

fn connect_one(
    addr: SocketAddr,
    waker: &Waker,
    deadline: Option<Instant>,
    cancelled: &dyn Fn() -> bool,
) -> Result<TcpStream> {
    let sock = connect_start(addr)?;
    use std::os::fd::AsRawFd;
    loop {
        match wait_fd(sock.as_raw_fd(), false, true, waker, deadline)
            .map_err(|e| cannot(addr, e))?
        {
            Wait::Ready => break,
            Wait::Woken if cancelled() => {
                return Err(Error::cancelled("ws_close_handle cancelled the connect"));
            }
            Wait::Woken => continue,
            Wait::TimedOut => {
                return Err(Error::new(
                    WS_ERROR_TIMEOUT,
                    format!("TCP connect to {addr} took longer than WS_OPTION_CONNECT_TIMEOUT"),
                ))
            }
        }
    }
    connect_finish(&sock, addr)?;
    Ok(sock)
}

/// How many connections the kernel queues for a listener before it is accepted from (capped
/// by `net.core.somaxconn`): a burst of clients waits there instead of having its SYNs dropped
/// and retried a second later (std's listeners queue 128).
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listening socket on the first of `addrs` that binds (`SO_REUSEADDR` set,
/// as std does).
pub fn listen(addrs: &[SocketAddr]) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in addrs {
        let bound = (|| {
            let s = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM,
                Some(Protocol::TCP),
            )?;
            s.set_reuse_address(true)?;
            s.bind(&(*addr).into())?;
            s.listen(LISTEN_BACKLOG)?;
            s.set_nonblocking(true)?;
            Ok(TcpListener::from(s))
        })();
        match bound {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on")))
}
