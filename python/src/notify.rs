//! A non-blocking pipe that lets a delivery thread wake an asyncio event loop without the GIL:
//! the loop watches the read end with `loop.add_reader`, the delivery thread writes a byte when a
//! pull queue goes from empty to non-empty (or finishes).
//!
//! A pipe rather than eventfd keeps this portable to macOS; both ends are non-blocking so a
//! full pipe (the loop is already going to wake up) never stalls the delivery thread.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) struct Notifier {
    read: OwnedFd,
    write: OwnedFd,
}

fn set_flags(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this module just created; no pointers involved.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd_flags = libc::fcntl(fd, libc::F_GETFD);
        if fd_flags < 0 || libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Notifier {
    pub(crate) fn new() -> io::Result<Notifier> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe() succeeded, so both are fresh descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        set_flags(read.as_raw_fd())?;
        set_flags(write.as_raw_fd())?;
        Ok(Notifier { read, write })
    }

    /// The descriptor to watch for readability.
    pub(crate) fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Wakes the reader. Never blocks; a full pipe already means a wake-up is pending.
    pub(crate) fn ping(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a live local to a descriptor this struct owns.
        let _ = unsafe { libc::write(self.write.as_raw_fd(), (&byte as *const u8).cast(), 1) };
    }

    /// Empties the pipe so the reader is not woken again for pings already seen.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reads into a local buffer of the stated size from a descriptor this struct owns.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < buf.len() as isize {
                break;
            }
        }
    }
}
