//! Appending wire values to a buffer. Generated `encode_payload` bodies are a straight
//! sequence of `put_*` calls, so every method is `#[inline]` and does no work besides the
//! append (and, for length prefixes, the u32 range check).

use crate::message::EncodeError;

/// Appends little-endian wire values to a `Vec<u8>`.
///
/// ```
/// use mycelium_protocol::codec::Writer;
/// let mut buf = Vec::new();
/// let mut w = Writer::new(&mut buf);
/// w.put_u16(0x0102);
/// w.put_str("hi").unwrap();
/// assert_eq!(buf, [0x02, 0x01, 2, 0, 0, 0, b'h', b'i']);
/// ```
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! put_le {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        #[inline]
        pub fn $name(&mut self, value: $ty) {
            self.out.extend_from_slice(&value.to_le_bytes());
        }
    )*};
}

impl<'a> Writer<'a> {
    /// Writes after whatever `out` already holds.
    #[inline]
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// The underlying buffer, e.g. to hand to a nested message's `encode_payload`.
    #[inline]
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// Bytes in the underlying buffer (including any written before this writer existed).
    #[inline]
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether the underlying buffer is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    put_le! {
        /// One byte.
        put_u8: u8;
        /// Two bytes, little-endian.
        put_u16: u16;
        /// Four bytes, little-endian.
        put_u32: u32;
        /// Eight bytes, little-endian.
        put_u64: u64;
        /// One byte, two's complement.
        put_i8: i8;
        /// Two bytes, two's complement, little-endian.
        put_i16: i16;
        /// Four bytes, two's complement, little-endian.
        put_i32: i32;
        /// Eight bytes, two's complement, little-endian.
        put_i64: i64;
    }

    /// The IEEE-754 bits as given (NaN payloads and the sign of zero are kept).
    #[inline]
    pub fn put_f32(&mut self, value: f32) {
        self.put_u32(value.to_bits());
    }

    /// The IEEE-754 bits as given (NaN payloads and the sign of zero are kept).
    #[inline]
    pub fn put_f64(&mut self, value: f64) {
        self.put_u64(value.to_bits());
    }

    /// One byte, 0 or 1.
    #[inline]
    pub fn put_bool(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// A u32 byte length, then the UTF-8 bytes.
    #[inline]
    pub fn put_str(&mut self, value: &str) -> Result<(), EncodeError> {
        self.put_bytes(value.as_bytes())
    }

    /// A u32 byte length, then the bytes.
    #[inline]
    pub fn put_bytes(&mut self, value: &[u8]) -> Result<(), EncodeError> {
        self.put_count(value.len())?;
        self.out.extend_from_slice(value);
        Ok(())
    }

    /// The raw bytes of a `bytes[N]` field, without a prefix. The caller passes exactly N
    /// bytes (generated code passes a `[u8; N]`).
    #[inline]
    pub fn put_array(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
    }

    /// A u32 list element count (or length prefix); fails if `count` exceeds `u32::MAX`.
    #[inline]
    pub fn put_count(&mut self, count: usize) -> Result<(), EncodeError> {
        match u32::try_from(count) {
            Ok(count) => {
                self.put_u32(count);
                Ok(())
            }
            Err(_) => Err(length_overflow(count)),
        }
    }
}

#[cold]
#[inline(never)]
fn length_overflow(len: usize) -> EncodeError {
    EncodeError::LengthOverflow { len }
}
