//! Name resolution and a non-blocking TCP connect, both bounded by a deadline and cancellable.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
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
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    std::thread::Builder::new()
        .name("wshandle-resolve".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(|a| a.collect()));
        })
        .map_err(|e| {
            Error::new(
                WS_ERROR_NAME_NOT_RESOLVED,
                format!("cannot start the resolver thread: {e}"),
            )
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
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs;
                if addrs.is_empty() {
                    break;
                }
                return Ok(addrs);
            }
            Ok(Err(e)) => {
                return Err(Error::new(
                    WS_ERROR_NAME_NOT_RESOLVED,
                    format!("cannot resolve host {host}: {e}"),
                ))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Err(Error::new(
        WS_ERROR_NAME_NOT_RESOLVED,
        format!("host {host} has no addresses"),
    ))
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

fn connect_one(
    addr: SocketAddr,
    waker: &Waker,
    deadline: Option<Instant>,
    cancelled: &dyn Fn() -> bool,
) -> Result<TcpStream> {
    let cannot = |e: io::Error| {
        Error::new(
            WS_ERROR_CANNOT_CONNECT,
            format!("cannot connect to {addr}: {e}"),
        )
    };
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| Error::from_io(WS_ERROR_CANNOT_CONNECT, "cannot create a TCP socket", &e))?;
    sock.set_nonblocking(true).map_err(cannot)?;
    match sock.connect(&addr.into()) {
        Ok(()) => return Ok(sock.into()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(cannot(e)),
    }
    use std::os::fd::AsRawFd;
    loop {
        match wait_fd(sock.as_raw_fd(), false, true, waker, deadline).map_err(cannot)? {
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
    match sock.take_error().map_err(cannot)? {
        None => Ok(sock.into()),
        Some(e) => Err(cannot(e)),
    }
}
