//! The primitives of schema version 2's compact bodies (`journal/FORMAT.md` §6a):
//! short strings with a one-byte length, decimals as a sign-and-scale byte
//! followed by the mantissa as an unsigned LEB128 varint, fixed-width
//! little-endian integers for the rest.
//!
//! Every primitive has exactly one encoding (a varint never has a redundant
//! high zero group, a string is valid UTF-8 within its limit), and the reader
//! refuses any other, so a decoded body re-encodes to the bytes it was read
//! from – the property the re-drive's byte comparison and the fuzz harness
//! rely on.

use crate::codec::{check_decimal_bytes, Hash32};
use rust_decimal::Decimal;

/// The longest string a one-byte length can announce.
pub const STR8_BYTES_MAX: usize = u8::MAX as usize;
/// A decimal's mantissa is at most 96 bits: at most 14 LEB128 groups.
const MANTISSA_GROUPS_MAX: usize = 14;
/// Bit 7 of a decimal's first byte: the sign. Bits 0..=4: the scale (0..=28).
const SIGN_BIT: u8 = 0x80;
const SCALE_MASK: u8 = 0x1F;

/// Appends the compact primitives to a byte vector.
pub struct Out<'a>(pub &'a mut Vec<u8>);

impl Out<'_> {
    pub fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub fn bool(&mut self, value: bool) {
        self.0.push(u8::from(value));
    }

    pub fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn hash(&mut self, value: &Hash32) {
        self.0.extend_from_slice(&value.0);
    }

    /// A count of the items that follow (at most 255).
    pub fn count(&mut self, count: usize) -> Result<(), String> {
        let count = u8::try_from(count).map_err(|_| format!("{count} items, more than 255"))?;
        self.0.push(count);
        Ok(())
    }

    /// `str8`: a one-byte length, then the UTF-8 bytes.
    pub fn str8(&mut self, text: &str) -> Result<(), String> {
        let len = u8::try_from(text.len())
            .map_err(|_| format!("a {}-byte string, longer than 255", text.len()))?;
        self.0.push(len);
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// `str16`: a two-byte length, then the UTF-8 bytes (a risk check's detail).
    pub fn str16(&mut self, text: &str) -> Result<(), String> {
        let len = u16::try_from(text.len())
            .map_err(|_| format!("a {}-byte string, longer than 65535", text.len()))?;
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// `dec`: sign and scale in one byte, then the mantissa as LEB128.
    pub fn dec(&mut self, value: Decimal) {
        let mut head = value.scale() as u8;
        if value.is_sign_negative() {
            head |= SIGN_BIT;
        }
        self.0.push(head);
        let mut mantissa = value.mantissa().unsigned_abs();
        loop {
            let group = (mantissa & 0x7F) as u8;
            mantissa >>= 7;
            if mantissa == 0 {
                self.0.push(group);
                return;
            }
            self.0.push(group | 0x80);
        }
    }

    /// `opt_dec`: 0, or 1 followed by a `dec`.
    pub fn opt_dec(&mut self, value: Option<Decimal>) {
        match value {
            None => self.0.push(0),
            Some(value) => {
                self.0.push(1);
                self.dec(value);
            }
        }
    }
}

/// Reads the compact primitives off a body, refusing anything but their one
/// encoding.
pub struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    pub fn new(bytes: &'a [u8]) -> In<'a> {
        In { bytes, at: 0 }
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), String> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            left => Err(format!("{left} trailing bytes after the body")),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "the body ends at byte {} where {n} more were expected at {}",
                self.bytes.len(),
                self.at
            )
        })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("a boolean byte {other}, not 0 or 1")),
        }
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn hash(&mut self) -> Result<Hash32, String> {
        Ok(Hash32(self.array()?))
    }

    pub fn str8(&mut self) -> Result<&'a str, String> {
        let len = usize::from(self.u8()?);
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|e| format!("a string that is not UTF-8: {e}"))
    }

    pub fn str16(&mut self) -> Result<&'a str, String> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|e| format!("a string that is not UTF-8: {e}"))
    }

    pub fn dec(&mut self) -> Result<Decimal, String> {
        let head = self.u8()?;
        let scale = u32::from(head & SCALE_MASK);
        if head & !(SIGN_BIT | SCALE_MASK) != 0 {
            return Err(format!(
                "decimal head byte {head:#04x} has reserved bits set"
            ));
        }
        let mantissa = self.mantissa()?;
        let mut raw = [0u8; 16];
        raw[0..4].copy_from_slice(&(scale << 16 | u32::from(head & SIGN_BIT) << 24).to_le_bytes());
        raw[4..16].copy_from_slice(&mantissa.to_le_bytes()[..12]);
        // The decimal's own checks (scale ≤ 28), as for a schema-1 decimal;
        // built from its 16-byte form, which keeps a negative zero's sign.
        check_decimal_bytes(&raw)?;
        Ok(Decimal::deserialize(raw))
    }

    /// A 96-bit mantissa in LEB128, minimal: no group after the first may be
    /// a redundant zero at the end.
    fn mantissa(&mut self) -> Result<u128, String> {
        let mut value: u128 = 0;
        for group_index in 0..MANTISSA_GROUPS_MAX {
            let group = self.u8()?;
            value |= u128::from(group & 0x7F) << (7 * group_index);
            if group & 0x80 == 0 {
                if group == 0 && group_index > 0 {
                    return Err("a decimal mantissa with a redundant zero group".into());
                }
                if value >> 96 != 0 {
                    return Err("a decimal mantissa above 96 bits".into());
                }
                return Ok(value);
            }
        }
        Err("a decimal mantissa longer than 14 groups".into())
    }

    pub fn opt_dec(&mut self) -> Result<Option<Decimal>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.dec()?)),
            other => Err(format!("an option tag {other}, not 0 or 1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Decimal) -> Vec<u8> {
        let mut bytes = Vec::new();
        Out(&mut bytes).dec(value);
        let mut input = In::new(&bytes);
        let back = input.dec().unwrap();
        input.finish().unwrap();
        assert_eq!(back.serialize(), value.serialize(), "{value}");
        bytes
    }

    #[test]
    fn decimals_keep_scale_sign_and_every_bit() {
        assert_eq!(
            round_trip(Decimal::new(6275744, 2)),
            [2, 0xA0, 0x85, 0xFF, 0x02]
        );
        assert_eq!(round_trip(Decimal::ZERO), [0, 0]);
        assert_eq!(round_trip(Decimal::new(-5, 1)), [0x81, 5]);
        let mut negative_zero = Decimal::new(0, 3);
        negative_zero.set_sign_negative(true);
        assert_eq!(round_trip(negative_zero), [0x83, 0]);
        assert_eq!(round_trip(Decimal::MAX).len(), 1 + 14);
        round_trip(Decimal::MIN);
        round_trip(Decimal::from_parts(1, 2, 3, true, 28));
    }

    #[test]
    fn only_the_one_encoding_is_read() {
        let refused = |bytes: &[u8]| In::new(bytes).dec().unwrap_err();
        assert!(refused(&[0, 0x80, 0]).contains("redundant"));
        assert!(refused(&[29, 1]).contains("scale"));
        assert!(refused(&[0x40, 1]).contains("reserved"));
        assert!(refused(&[0, 0x80]).contains("ends"));
        let mut too_big = vec![0u8];
        too_big.extend([0xFF; 13]);
        too_big.push(0x7F);
        assert!(refused(&too_big).contains("96 bits"));
        assert!(In::new(&[2]).bool().is_err());
        assert!(In::new(&[1, 0xFF]).str8().unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn strings_are_bounded() {
        let mut bytes = Vec::new();
        assert!(Out(&mut bytes).str8(&"x".repeat(256)).is_err());
        Out(&mut bytes).str8("BTC-USD").unwrap();
        assert_eq!(bytes, b"\x07BTC-USD");
        assert_eq!(In::new(&bytes).str8().unwrap(), "BTC-USD");
    }
}
