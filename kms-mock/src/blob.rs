//! Self-describing ciphertext blobs and the canonical encryption-context encoding.
//!
//! Layout (version 1):
//! `version (1) | key id (16, binary UUID) | material version (4, BE) | iv (12) | ciphertext | tag (16)`.
//! AAD = `DOMAIN | version | key id | material version | canonical(context)`, so neither the
//! header nor the context can be changed without the tag failing.

use crate::error::KmsError;
use crate::material::{IV_LEN, TAG_LEN};
use crate::types::EncryptionContext;

pub const BLOB_VERSION: u8 = 1;
/// Domain separation for blob AADs (distinct from the state file's AAD).
const DOMAIN: &[u8] = b"kms-mock/ciphertext-blob/v1\0";
pub const HEADER_LEN: usize = 1 + 16 + 4;
/// Smallest well-formed blob: header, IV, tag (and at least one plaintext byte in practice).
pub const MIN_BLOB_LEN: usize = HEADER_LEN + IV_LEN + TAG_LEN;

/// The parsed, not yet authenticated, header of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    pub key_id: [u8; 16],
    pub material_version: u32,
}

impl BlobHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = BLOB_VERSION;
        out[1..17].copy_from_slice(&self.key_id);
        out[17..21].copy_from_slice(&self.material_version.to_be_bytes());
        out
    }
}

/// Splits a blob into its header and the sealed part (`iv | ciphertext | tag`).
pub fn parse(blob: &[u8]) -> Result<(BlobHeader, &[u8]), KmsError> {
    if blob.len() < MIN_BLOB_LEN {
        return Err(invalid());
    }
    let (header, sealed) = blob.split_at(HEADER_LEN);
    if header.first() != Some(&BLOB_VERSION) {
        return Err(invalid());
    }
    let mut key_id = [0u8; 16];
    key_id.copy_from_slice(header.get(1..17).ok_or_else(invalid)?);
    let mut v = [0u8; 4];
    v.copy_from_slice(header.get(17..21).ok_or_else(invalid)?);
    Ok((
        BlobHeader {
            key_id,
            material_version: u32::from_be_bytes(v),
        },
        sealed,
    ))
}

/// AWS returns InvalidCiphertextException with no detail; a fixed message says no more.
pub fn invalid() -> KmsError {
    KmsError::InvalidCiphertext(
        "The ciphertext is invalid, was not produced by this key store, or the encryption context does not match."
            .into(),
    )
}

/// `count | (len(k) | k | len(v) | v)*` with u32 big-endian lengths, pairs in byte order of
/// the keys (BTreeMap<String, _> iterates in that order). Injective: no two contexts share
/// an encoding, unlike naive concatenation.
pub fn canonical_context(ctx: &EncryptionContext) -> Result<Vec<u8>, KmsError> {
    let too_big = || KmsError::Validation("Encryption context is too large".into());
    let mut out = Vec::new();
    out.extend_from_slice(
        &u32::try_from(ctx.len())
            .map_err(|_| too_big())?
            .to_be_bytes(),
    );
    for (k, v) in ctx {
        for part in [k, v] {
            let len = u32::try_from(part.len()).map_err(|_| too_big())?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    Ok(out)
}

pub fn aad(header: &BlobHeader, ctx: &EncryptionContext) -> Result<Vec<u8>, KmsError> {
    let mut out = DOMAIN.to_vec();
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&canonical_context(ctx)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        // Naive concatenation would make these equal.
        let a = canonical_context(&ctx(&[("ab", "c")])).unwrap();
        let b = canonical_context(&ctx(&[("a", "bc")])).unwrap();
        assert_ne!(a, b);
        let c = canonical_context(&ctx(&[("a", ""), ("b", "")])).unwrap();
        let d = canonical_context(&ctx(&[("a", "\0\0\0\x01b\0\0\0\0")])).unwrap();
        assert_ne!(c, d);
        assert_eq!(canonical_context(&ctx(&[])).unwrap(), vec![0, 0, 0, 0]);
    }

    #[test]
    fn header_round_trip() {
        let h = BlobHeader {
            key_id: [7; 16],
            material_version: 513,
        };
        let mut blob = h.encode().to_vec();
        blob.extend_from_slice(&[0u8; IV_LEN + TAG_LEN + 3]);
        let (parsed, sealed) = parse(&blob).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(sealed.len(), IV_LEN + TAG_LEN + 3);
        blob[0] = 2;
        assert_eq!(
            parse(&blob).unwrap_err().aws_type(),
            "InvalidCiphertextException"
        );
        assert!(parse(&[1u8; MIN_BLOB_LEN - 1]).is_err());
    }

    proptest! {
        #[test]
        fn canonical_context_is_injective(
            a in proptest::collection::btree_map(".{0,6}", ".{0,6}", 0..4),
            b in proptest::collection::btree_map(".{0,6}", ".{0,6}", 0..4),
        ) {
            let ea = canonical_context(&a).unwrap();
            let eb = canonical_context(&b).unwrap();
            prop_assert_eq!(ea == eb, a == b);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&bytes);
        }
    }
}
