//! Serde adapters the generated Rust types use when their crate enables a `serde` feature
//! (see `mycelium_codegen::build_rs_generate`).
//!
//! Serde implements `Serialize`/`Deserialize` for arrays of at most 32 elements, while a schema's
//! `bytes[N]` may be up to 65535 bytes long. Generated fields of type `[u8; N]` (and lists of
//! them) therefore go through these modules with `#[serde(with = ...)]`. They write the bytes
//! with `serialize_bytes` (a byte string in binary formats, an array of numbers in JSON) and read
//! back either form, refusing a length other than `N` with a message naming both lengths.

use std::fmt;

use serde::de::{Error, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// `#[serde(with = "::mycelium_protocol::serde_support::byte_array")]` for a `[u8; N]` field.
pub mod byte_array {
    use super::*;

    /// Writes the array as a byte string.
    pub fn serialize<S: Serializer, const N: usize>(
        value: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(value)
    }

    /// Reads exactly `N` bytes, from a byte string or a sequence of numbers.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        deserializer.deserialize_bytes(ArrayVisitor::<N>)
    }
}

/// `#[serde(with = "::mycelium_protocol::serde_support::byte_array_list")]` for a
/// `Vec<[u8; N]>` field (a schema `list<bytes[N]>`).
pub mod byte_array_list {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Writes the list as a sequence of byte strings.
    pub fn serialize<S: Serializer, const N: usize>(
        value: &[[u8; N]],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        struct Bytes<'a>(&'a [u8]);
        impl serde::Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let mut seq = serializer.serialize_seq(Some(value.len()))?;
        for item in value {
            seq.serialize_element(&Bytes(item))?;
        }
        seq.end()
    }

    /// Reads a sequence whose elements are exactly `N` bytes each.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<Vec<[u8; N]>, D::Error> {
        struct Element<const N: usize>([u8; N]);
        impl<'de, const N: usize> serde::Deserialize<'de> for Element<N> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_bytes(ArrayVisitor::<N>).map(Element)
            }
        }
        struct ListVisitor<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for ListVisitor<N> {
            type Value = Vec<[u8; N]>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of byte strings of {N} bytes each")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The hint comes from the input: cap it rather than trust it with an allocation.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(Element(item)) = seq.next_element::<Element<N>>()? {
                    out.push(item);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(ListVisitor::<N>)
    }
}

struct ArrayVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exactly {N} bytes")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<[u8; N], E> {
        v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| A::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(A::Error::invalid_length(N + 1, &self));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(with = "super::byte_array")]
        big: [u8; 40],
        #[serde(with = "super::byte_array_list")]
        many: Vec<[u8; 33]>,
    }

    #[test]
    fn long_arrays_round_trip_through_json_and_wrong_lengths_are_refused() {
        let h = Holder {
            big: [7; 40],
            many: vec![[1; 33], [2; 33]],
        };
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), h);
        let short = text.replacen("[7,", "[", 1);
        let err = serde_json::from_str::<Holder>(&short)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly 40 bytes"), "{err}");
        let long = text.replacen("[7,", "[7,7,", 1);
        assert!(serde_json::from_str::<Holder>(&long).is_err());
    }
}
