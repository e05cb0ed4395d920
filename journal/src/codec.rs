//! Body encoding: the exact bincode 2 configuration, and the wire forms of the
//! two value types bincode does not define for us (`Decimal` and 32-byte hashes).
//!
//! Every event body is encoded with [`BODY_CONFIG`]:
//! `bincode::config::standard().with_little_endian().with_fixed_int_encoding()`.
//! Fixed-width little-endian integers were chosen over bincode's default varints
//! so that an auditor's verifier never has to implement a varint decoder and every
//! integer field sits at a width that can be read off `journal/FORMAT.md`.
//!
//! The same serde impls serve JSON export: when the serializer is human-readable
//! (serde_json) a `Decimal` becomes its exact decimal string and a hash becomes
//! 64 lowercase hex digits; when it is not (bincode) they are raw bytes.

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The one bincode configuration used for event bodies. Changing it changes every
/// stored byte, so it is frozen by the golden tests.
pub const BODY_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::NoLimit,
> = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding();

/// Decoding additionally refuses any length prefix that claims more bytes than a
/// record may hold, so a hostile (but correctly hashed) body cannot make us allocate
/// gigabytes.
pub const BODY_DECODE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<{ crate::format::PAYLOAD_BYTES_MAX as usize }>,
> = BODY_CONFIG.with_limit::<{ crate::format::PAYLOAD_BYTES_MAX as usize }>();

/// Why a 16-byte decimal was refused on read.
pub(crate) fn check_decimal_bytes(bytes: &[u8; 16]) -> Result<(), &'static str> {
    let flags = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if flags & 0x0000_FFFF != 0 || flags & 0x7F00_0000 != 0 {
        return Err("decimal flags have reserved bits set");
    }
    if (flags >> 16) & 0xFF > 28 {
        return Err("decimal scale above 28");
    }
    Ok(())
}

/// A negative zero (sign set, value zero) as plain zero, its scale kept: how
/// text renderings show it (FORMAT.md §5). Decoding keeps the sign, so an
/// event re-encodes to the bytes it was read from (a re-drive compares bytes).
pub fn positive_zero(value: Decimal) -> Decimal {
    let mut value = value;
    if value.is_zero() && value.is_sign_negative() {
        value.set_sign_positive(true);
    }
    value
}

/// Serde adapter for `Decimal`: 16 raw bytes (`Decimal::serialize`) in bincode,
/// the exact decimal string in human-readable formats, where a negative zero
/// is written as zero ([`positive_zero`]).
pub mod dec {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&positive_zero(*value))
        } else {
            serialize_fixed(&value.serialize(), serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse::<Decimal>()
                .map_err(|e| de::Error::custom(format!("bad decimal {text:?}: {e}")))
        } else {
            let bytes: [u8; 16] = deserialize_fixed(deserializer)?;
            check_decimal_bytes(&bytes).map_err(de::Error::custom)?;
            Ok(Decimal::deserialize(bytes))
        }
    }
}

/// Serde adapter for `Option<Decimal>`: bincode's option tag (one byte, 0 or 1)
/// followed by the 16-byte form.
pub mod opt_dec {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::dec")] Decimal);

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        value.map(Wrap).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// Writes `N` (16 or 32) raw bytes. They go out as little-endian `u128`s, which
/// bincode's fixed-int encoding writes as exactly those bytes in order: the
/// same wire form as a byte array, without per-byte serializer calls.
fn serialize_fixed<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut tuple = serializer.serialize_tuple(N / 16)?;
    for chunk in bytes.chunks_exact(16) {
        let mut word = [0u8; 16];
        word.copy_from_slice(chunk);
        tuple.serialize_element(&u128::from_le_bytes(word))?;
    }
    tuple.end()
}

fn deserialize_fixed<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    struct FixedVisitor<const N: usize>;
    impl<'de, const N: usize> Visitor<'de> for FixedVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, chunk) in out.chunks_exact_mut(16).enumerate() {
                let word: u128 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            Ok(out)
        }
    }
    deserializer.deserialize_tuple(N / 16, FixedVisitor::<N>)
}

/// Deserializes a `String` from borrowed input with one exact-size allocation
/// (bincode's owned path zero-fills a buffer first).
pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct StringVisitor;
    impl<'de> Visitor<'de> for StringVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(v)
        }
    }
    deserializer.deserialize_str(StringVisitor)
}

/// A 32-byte BLAKE3 hash as stored in the journal and in events that name one
/// (checkpoints, config hashes). Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(byte & 0xF), 16).unwrap_or('0'));
        }
        out
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Hash32> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Hash32(out))
    }
}

impl From<blake3::Hash> for Hash32 {
    fn from(hash: blake3::Hash) -> Self {
        Hash32(*hash.as_bytes())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            serialize_fixed(&self.0, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Hash32::from_hex(&text).ok_or_else(|| de::Error::custom("expected 64 hex digits"))
        } else {
            Ok(Hash32(deserialize_fixed(deserializer)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let hash = Hash32::from(blake3::hash(b"anx"));
        assert_eq!(Hash32::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(Hash32::from_hex("zz"), None);
        assert_eq!(Hash32::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn negative_zero_renders_as_zero_keeping_its_scale() {
        for scale in [0, 2] {
            let mut negative_zero = Decimal::new(0, scale);
            negative_zero.set_sign_negative(true);
            let bytes = negative_zero.serialize();
            assert_eq!(bytes[3], 0x80, "the sign bit is set in the stored form");
            let decoded = positive_zero(Decimal::deserialize(bytes));
            assert!(!decoded.is_sign_negative());
            assert_eq!(decoded.scale(), scale);
        }
        let minus_one = Decimal::NEGATIVE_ONE;
        assert_eq!(positive_zero(minus_one), minus_one);
    }

    #[test]
    fn decimal_bytes_are_validated() {
        let ok = Decimal::new(-12345, 3).serialize();
        assert!(check_decimal_bytes(&ok).is_ok());
        let mut bad_scale = ok;
        bad_scale[2] = 29;
        assert!(check_decimal_bytes(&bad_scale).is_err());
        let mut reserved = ok;
        reserved[0] = 1;
        assert!(check_decimal_bytes(&reserved).is_err());
    }
}
