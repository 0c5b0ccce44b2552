//! Reading caller-sized option structs and writing caller-sized out-structs (`struct_size`
//! first), so that a library of a later minor version accepts structs from programs built
//! against an earlier header, and the reverse.
//!
//! Rule (see docs/c-abi.md, "Versioning"): fields are only ever appended. A caller's struct
//! may be smaller than this library's (built against an older header: the missing tail gets
//! its defaults) or larger (a newer header: the unknown tail is ignored), but never smaller
//! than the struct of the first ABI version that had it.

use crate::status::{mycelium_status::MYCELIUM_ERR_INVALID_ARGUMENT, FfiError, FfiResult};

/// An options struct whose first field is `uint32_t struct_size`.
///
/// # Safety
/// Implementors must be `#[repr(C)]` with a `u32` `struct_size` as their first field, and
/// every bit pattern the C side may write into the fields up to `MIN_SIZE` must be valid.
pub(crate) unsafe trait SizedOptions: Copy + Default {
    /// The struct's size in the first ABI version that had it.
    const MIN_SIZE: usize;
    /// The C type's name and its init function, for error messages.
    const NAME: &'static str;
    const INIT: &'static str;
}

/// Copies `*p` into a default-initialised struct, only as many bytes as both sides know of.
/// `Ok(None)` for NULL.
///
/// # Safety
/// A non-NULL `p` must point to at least `(*p).struct_size` readable bytes.
pub(crate) unsafe fn read_options<T: SizedOptions>(p: *const T) -> FfiResult<Option<T>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: `struct_size` is the first field (trait contract) and a non-NULL `p` points to at
    // least that many bytes (caller's contract); read unaligned in case C packed it oddly.
    let declared = unsafe { p.cast::<u32>().read_unaligned() } as usize;
    if declared < T::MIN_SIZE {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "options.struct_size is {declared} but {} is at least {} bytes; initialise the struct with {}",
                T::NAME,
                T::MIN_SIZE,
                T::INIT
            ),
        ));
    }
    let mut out = T::default();
    let len = declared.min(std::mem::size_of::<T>());
    // SAFETY: the source has `declared >= len` readable bytes (caller's contract); the
    // destination is a local `T` of at least `len` bytes; they cannot overlap. Every copied
    // field comes from a C struct of the same layout prefix (trait contract).
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut out as *mut T).cast::<u8>(), len);
    }
    Ok(Some(out))
}

/// Fills a caller's struct of `size` bytes (`sizeof` as the caller was compiled with) with the
/// defaults, and `struct_size` with the bytes written. Never writes past `size`: a program built
/// against an older header has a smaller struct than this library's. A size below the first
/// ABI version's is refused.
///
/// # Safety
/// `p` must be non-NULL and point to at least `size` writable bytes.
pub(crate) unsafe fn init_sized<T: SizedOptions>(p: *mut T, size: usize) -> FfiResult {
    if size < T::MIN_SIZE {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "size {size} is smaller than {} ({} bytes since its first ABI version)",
                T::NAME,
                T::MIN_SIZE
            ),
        ));
    }
    let len = size.min(std::mem::size_of::<T>());
    let value = T::default();
    // SAFETY: the destination has `size >= len` writable bytes (caller's contract), the source
    // is a local `T` of at least `len` bytes, they cannot overlap, and `struct_size` is the
    // first field (trait contract).
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), p.cast::<u8>(), len);
        p.cast::<u32>().write_unaligned(len as u32);
    }
    Ok(())
}

/// Writes `value` into a caller's out-struct of `(*p).struct_size` bytes: only as many bytes as
/// both sides know of (a newer caller's extra tail is left untouched), and `struct_size` set to
/// the bytes written so the caller knows which fields are filled. A struct smaller than the
/// first ABI version's (`MIN_SIZE`) is refused: it cannot come from any header.
///
/// # Safety
/// `p` must be non-NULL and point to at least `(*p).struct_size` writable bytes.
pub(crate) unsafe fn write_out<T: SizedOptions>(p: *mut T, value: T) -> FfiResult {
    // SAFETY: `struct_size` is the first field (trait contract); `p` points to at least that
    // field (caller's contract).
    let declared = unsafe { p.cast::<u32>().read_unaligned() } as usize;
    if declared < T::MIN_SIZE {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "out->struct_size is {declared} but {} is at least {} bytes; set it to sizeof({})",
                T::NAME,
                T::MIN_SIZE,
                T::NAME
            ),
        ));
    }
    let len = declared.min(std::mem::size_of::<T>());
    // SAFETY: the destination has `declared >= len` writable bytes (caller's contract), the
    // source is a local `T` of at least `len` bytes, and they cannot overlap.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), p.cast::<u8>(), len);
        p.cast::<u32>().write_unaligned(len as u32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::mycelium_subscribe_options;

    /// A caller's struct as raw bytes: `struct_size` first, then `fill` up to `len` bytes.
    fn caller_struct(struct_size: u32, len: usize, fill: u8) -> Vec<u64> {
        let mut words = vec![u64::from_ne_bytes([fill; 8]); len.div_ceil(8)];
        // SAFETY: the buffer has at least 4 bytes and is 8-aligned.
        unsafe { words.as_mut_ptr().cast::<u32>().write(struct_size) };
        words
    }

    fn read(buf: &[u64]) -> FfiResult<Option<mycelium_subscribe_options>> {
        // SAFETY: the buffer holds at least `struct_size` bytes (built by `caller_struct`).
        unsafe { read_options(buf.as_ptr().cast::<mycelium_subscribe_options>()) }
    }

    #[test]
    fn null_means_defaults() {
        // SAFETY: NULL is allowed.
        let got = unsafe { read_options::<mycelium_subscribe_options>(std::ptr::null()) };
        assert!(matches!(got, Ok(None)));
    }

    #[test]
    fn a_struct_from_an_older_header_gets_defaults_for_the_new_fields() {
        let min = mycelium_subscribe_options::MIN_SIZE;
        assert_eq!(min, 24, "the ABI 1.0 layout is fixed");
        // Exactly the 1.0 bytes: a buffer of that length, the tail must not be read (ASan and
        // valgrind runs of this test would report it) and must come out as the default.
        let buf = caller_struct(min as u32, min, 0);
        let o = read(&buf).unwrap().unwrap();
        assert_eq!(o.struct_size as usize, min);
        assert_eq!(o.spin_us, 0);
    }

    #[test]
    fn a_struct_from_a_newer_header_has_its_unknown_tail_ignored() {
        let size = std::mem::size_of::<mycelium_subscribe_options>();
        let mut buf = caller_struct((size + 16) as u32, size + 16, 0);
        // SAFETY: `spin_us` lies within the buffer.
        unsafe {
            let o = buf.as_mut_ptr().cast::<mycelium_subscribe_options>();
            (*o).spin_us = 40;
            (*o).label = std::ptr::null();
        }
        let o = read(&buf).unwrap().unwrap();
        assert_eq!(o.spin_us, 40);
    }

    #[test]
    fn a_struct_smaller_than_the_first_version_is_refused_by_name() {
        let buf = caller_struct(8, 8, 0);
        let e = read(&buf).unwrap_err();
        assert_eq!(e.status, MYCELIUM_ERR_INVALID_ARGUMENT);
        assert!(
            e.message.contains("mycelium_subscribe_options_init") && e.message.contains("is 8"),
            "{}",
            e.message
        );
    }
}
