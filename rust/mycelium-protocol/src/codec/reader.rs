//! Reading wire values from a payload. Every read is bounds-checked and returns a
//! [`DecodeError`] naming the offset and what was being read; nothing here panics or
//! allocates on the success path, and error construction is kept out of line.

use crate::message::DecodeError;

/// A cursor over a payload. Offsets in errors count from the start of the slice given to
/// [`Reader::new`] (for a frame's payload: from the first byte after the 6-byte header).
///
/// The `what` argument of each method names the value for error messages, e.g.
/// `"TradeTick.price"`; it is only read when an error is built.
///
/// ```
/// use mycelium_protocol::codec::Reader;
/// let mut r = Reader::new(&[0x02, 0x01, 2, 0, 0, 0, b'h', b'i']);
/// assert_eq!(r.get_u16("id").unwrap(), 0x0102);
/// assert_eq!(r.get_str("name").unwrap(), "hi");
/// r.finish().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

macro_rules! get_le {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        #[inline]
        pub fn $name(&mut self, what: &str) -> Result<$ty, DecodeError> {
            Ok(<$ty>::from_le_bytes(self.get_array(what)?))
        }
    )*};
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `len` bytes, consumed.
    #[inline]
    pub fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let rest = &self.buf[self.pos..];
        if len <= rest.len() {
            self.pos += len;
            Ok(&rest[..len])
        } else {
            Err(truncated(self.pos, len - rest.len(), what))
        }
    }

    /// The next `N` bytes as a reference into the payload (for `bytes[N]` without a copy).
    #[inline]
    pub fn get_array_ref<const N: usize>(
        &mut self,
        what: &str,
    ) -> Result<&'a [u8; N], DecodeError> {
        let rest = &self.buf[self.pos..];
        match rest.first_chunk::<N>() {
            Some(chunk) => {
                self.pos += N;
                Ok(chunk)
            }
            None => Err(truncated(self.pos, N - rest.len(), what)),
        }
    }

    /// The next `N` bytes, copied (a `bytes[N]` field).
    #[inline]
    pub fn get_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        self.get_array_ref::<N>(what).copied()
    }

    get_le! {
        /// One byte.
        get_u8: u8;
        /// Two bytes, little-endian.
        get_u16: u16;
        /// Four bytes, little-endian.
        get_u32: u32;
        /// Eight bytes, little-endian.
        get_u64: u64;
        /// One byte, two's complement.
        get_i8: i8;
        /// Two bytes, two's complement, little-endian.
        get_i16: i16;
        /// Four bytes, two's complement, little-endian.
        get_i32: i32;
        /// Eight bytes, two's complement, little-endian.
        get_i64: i64;
    }

    /// IEEE-754 bits as stored (NaN payloads are kept).
    #[inline]
    pub fn get_f32(&mut self, what: &str) -> Result<f32, DecodeError> {
        self.get_u32(what).map(f32::from_bits)
    }

    /// IEEE-754 bits as stored (NaN payloads are kept).
    #[inline]
    pub fn get_f64(&mut self, what: &str) -> Result<f64, DecodeError> {
        self.get_u64(what).map(f64::from_bits)
    }

    /// One byte that must be 0 or 1.
    #[inline]
    pub fn get_bool(&mut self, what: &str) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.get_u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(invalid_bool(offset, value, what)),
        }
    }

    /// A u32 byte length and that many raw bytes, borrowed from the payload.
    #[inline]
    pub fn get_bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let len = self.get_u32(what)?;
        // A u32 always fits usize on the 32- and 64-bit targets Rust supports for this crate;
        // saturating keeps a 16-bit target correct (it then reports truncation).
        self.take(usize::try_from(len).unwrap_or(usize::MAX), what)
    }

    /// A u32 byte length and that many bytes of UTF-8, borrowed from the payload.
    #[inline]
    pub fn get_str(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let bytes = self.get_bytes(what)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text),
            Err(e) => Err(invalid_utf8(self.pos - bytes.len() + e.valid_up_to(), what)),
        }
    }

    /// A u32 element count, checked before the caller allocates: `count * min_elem_size`
    /// must not exceed the bytes left, else [`DecodeError::CountTooLarge`]. Pass the
    /// smallest encoding of one element (`Schema::min_encoded_size`); 0 is treated as 1 so
    /// the count stays bounded by the input.
    #[inline]
    pub fn get_count(&mut self, min_elem_size: usize, what: &str) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let count = self.get_u32(what)?;
        let available = self.remaining();
        let needed = u64::from(count).saturating_mul(min_elem_size.max(1) as u64);
        if needed <= available as u64 {
            // needed <= available, so count <= available and fits usize.
            Ok(count as usize)
        } else {
            Err(count_too_large(offset, count, available, what))
        }
    }

    /// Succeeds only if every byte was consumed.
    #[inline]
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }
}

#[cold]
#[inline(never)]
pub(crate) fn truncated(offset: usize, needed: usize, what: &str) -> DecodeError {
    DecodeError::Truncated {
        offset,
        needed,
        what: what.to_owned(),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn invalid_bool(offset: usize, value: u8, what: &str) -> DecodeError {
    DecodeError::InvalidBool {
        offset,
        value,
        what: what.to_owned(),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn invalid_utf8(offset: usize, what: &str) -> DecodeError {
    DecodeError::InvalidUtf8 {
        offset,
        what: what.to_owned(),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn count_too_large(
    offset: usize,
    claimed: u32,
    available: usize,
    what: &str,
) -> DecodeError {
    DecodeError::CountTooLarge {
        offset,
        claimed: u64::from(claimed),
        available,
        what: what.to_owned(),
    }
}
