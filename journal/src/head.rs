//! A published journal head, `SEQ:HASH`: what an auditor stores elsewhere to
//! prove later that the journal still extends it.

use crate::codec::Hash32;
use crate::event::Seq;
use std::fmt;
use std::str::FromStr;

/// The last record of a journal: its seq and chain hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: Seq,
    pub hash: Hash32,
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl FromStr for Head {
    type Err = String;

    fn from_str(text: &str) -> Result<Head, String> {
        let (seq, hash) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("expected SEQ:HASH, got {text:?}"))?;
        let seq = seq
            .parse::<Seq>()
            .map_err(|_| format!("bad seq {seq:?} in head {text:?}"))?;
        let hash = Hash32::from_hex(hash)
            .ok_or_else(|| format!("bad hash in head {text:?}: expected 64 hex digits"))?;
        Ok(Head { seq, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        let head = Head {
            seq: 42,
            hash: Hash32([0xab; 32]),
        };
        assert_eq!(head.to_string().parse::<Head>(), Ok(head));
        assert!("42".parse::<Head>().is_err());
        assert!("x:ab".parse::<Head>().is_err());
        assert!(format!("1:{}", "a".repeat(63)).parse::<Head>().is_err());
    }
}
