//! A wake-up descriptor: another thread signals it to interrupt a poll.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Signalled by `ws_close` and `ws_close_handle` to interrupt a blocked call; an eventfd on
/// Linux, a pipe elsewhere.
#[derive(Debug)]
pub struct Waker {
    read: OwnedFd,
    #[cfg(not(target_os = "linux"))]
    write: OwnedFd,
}

impl Waker {
    /// A new, unsignalled waker.
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no pointer arguments; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Waker {
            read: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// A new, unsignalled waker.
    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<Self> {
        let (r, w) = std::os::unix::net::UnixStream::pair()?;
        r.set_nonblocking(true)?;
        w.set_nonblocking(true)?;
        Ok(Waker {
            read: r.into(),
            write: w.into(),
        })
    }

    #[cfg(target_os = "linux")]
    fn write_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    #[cfg(not(target_os = "linux"))]
    fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// Signals the waker; it stays readable until [`Waker::drain`].
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor this waker owns. A full
        // counter or pipe already means "signalled", so the result can be ignored.
        unsafe {
            libc::write(
                self.write_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Clears the signal.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a live local buffer of the given size from a non-blocking fd.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
        }
    }
}

impl AsRawFd for Waker {
    fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}
