//! Chunk digests: BLAKE3 of a chunk's uncompressed bytes, shown as 64 lower-case hex characters.

use std::fmt;
use std::str::FromStr;

/// BLAKE3 digest of a chunk's uncompressed bytes; names the chunk in the repository.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ChunkDigest(pub [u8; 32]);

impl ChunkDigest {
    /// Digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        ChunkDigest(*blake3::hash(data).as_bytes())
    }

    /// The digest as 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ChunkDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Error from parsing a [`ChunkDigest`] that is not 64 hex characters.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("invalid chunk digest {input:?}: expected 64 lower-case hex characters")]
pub struct ParseDigestError {
    /// The rejected text.
    pub input: String,
}

impl FromStr for ChunkDigest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Lower case only, so one digest has exactly one file name.
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut out = [0u8; 32];
        if !ok || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(ParseDigestError {
                input: s.to_string(),
            });
        }
        Ok(ChunkDigest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_lower_case_hex() {
        let d = ChunkDigest::of(b"hello");
        let s = d.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(s.parse::<ChunkDigest>(), Ok(d));
    }

    #[test]
    fn digest_parse_rejects_upper_case_short_and_non_hex() {
        let s = ChunkDigest::of(b"x").to_string();
        assert!(s.to_uppercase().parse::<ChunkDigest>().is_err());
        assert!(s[..63].parse::<ChunkDigest>().is_err());
        assert!(format!("{}g", &s[..63]).parse::<ChunkDigest>().is_err());
    }
}
