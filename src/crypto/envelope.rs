//! The AEAD envelope (AES-256-GCM via ring).
//!
//! Items: `format | alg | generation | write seq | salt | iv | ciphertext | tag`. The per-item
//! key is HKDF-SHA256(DEK_generation, salt) with a fresh 32-byte salt for every write, so no
//! GCM key ever sees more than one message and the per-key invocation limit never binds.
//! The AAD binds the sealed bytes to where they live (label, keyspace, index, storage key)
//! and to the header, so moving or editing a value is an integrity error.
//!
//! Records (catalog entries, wrapped child keys): `format | iv | ciphertext | tag` under a
//! long-lived key with a random 96-bit nonce; these are written rarely (far below 2^32 per key).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use zeroize::Zeroizing;

use super::secret::random_bytes;
use super::{CryptoError, Key32};

pub const ITEM_FORMAT_V1: u8 = 1;
/// HKDF-SHA256 per-item key + AES-256-GCM.
pub const ALG_HKDF_AES256GCM: u8 = 1;
pub const SALT_LEN: usize = 32;
pub const TAG_LEN: usize = 16;
/// format(1) alg(1) generation(4) write_seq(8) salt(32) iv(12)
pub const ITEM_HEADER_LEN: usize = 1 + 1 + 4 + 8 + SALT_LEN + NONCE_LEN;
const AUTHENTICATED_HEADER_LEN: usize = 1 + 1 + 4 + 8;
const HKDF_INFO_ITEM: &[u8] = b"sealdb/item-key/v1";

pub const RECORD_FORMAT_V1: u8 = 1;
const RECORD_HEADER_LEN: usize = 1 + NONCE_LEN;

/// Where sealed item bytes belong; every field goes into the AAD.
pub struct Binding<'a> {
    /// What kind of record this is (item, sort-index page, ...).
    pub label: &'static [u8],
    pub keyspace: &'a [u8],
    pub index: u8,
    pub storage_key: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemHeader {
    pub generation: u32,
    pub write_seq: u64,
}

fn item_aad(binding: &Binding<'_>, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        binding.label.len() + binding.keyspace.len() + binding.storage_key.len() + 32,
    );
    for part in [binding.label, binding.keyspace] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad.push(binding.index);
    aad.extend_from_slice(&(binding.storage_key.len() as u32).to_be_bytes());
    aad.extend_from_slice(binding.storage_key);
    aad.extend_from_slice(header);
    aad
}

fn item_key(dek: &Key32, salt: &[u8]) -> Result<LessSafeKey, CryptoError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(dek.expose());
    let okm = prk
        .expand(&[HKDF_INFO_ITEM], &AES_256_GCM)
        .map_err(|_| CryptoError::Integrity)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

pub fn seal_item(
    dek: &Key32,
    header: ItemHeader,
    binding: &Binding<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let salt: [u8; SALT_LEN] = random_bytes()?;
    let iv: [u8; NONCE_LEN] = random_bytes()?;
    let mut out = Vec::with_capacity(ITEM_HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(ITEM_FORMAT_V1);
    out.push(ALG_HKDF_AES256GCM);
    out.extend_from_slice(&header.generation.to_be_bytes());
    out.extend_from_slice(&header.write_seq.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&iv);
    let aad = item_aad(binding, &out[..AUTHENTICATED_HEADER_LEN]);
    let key = item_key(dek, &salt)?;
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(iv),
        Aad::from(aad.as_slice()),
        &mut body,
    )
    .map_err(|_| CryptoError::Integrity)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the clear header (to pick the data key generation) without trusting it: the header is
/// authenticated when the body is opened.
pub fn peek_item_header(sealed: &[u8]) -> Result<ItemHeader, CryptoError> {
    if sealed.len() < ITEM_HEADER_LEN + TAG_LEN
        || sealed[0] != ITEM_FORMAT_V1
        || sealed[1] != ALG_HKDF_AES256GCM
    {
        return Err(CryptoError::Integrity);
    }
    let mut g = [0u8; 4];
    g.copy_from_slice(&sealed[2..6]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&sealed[6..14]);
    Ok(ItemHeader {
        generation: u32::from_be_bytes(g),
        write_seq: u64::from_be_bytes(s),
    })
}

pub fn open_item(
    dek: &Key32,
    binding: &Binding<'_>,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    peek_item_header(sealed)?;
    let salt = &sealed[AUTHENTICATED_HEADER_LEN..AUTHENTICATED_HEADER_LEN + SALT_LEN];
    let mut iv = [0u8; NONCE_LEN];
    iv.copy_from_slice(&sealed[AUTHENTICATED_HEADER_LEN + SALT_LEN..ITEM_HEADER_LEN]);
    let aad = item_aad(binding, &sealed[..AUTHENTICATED_HEADER_LEN]);
    let key = item_key(dek, salt)?;
    let mut body = Zeroizing::new(sealed[ITEM_HEADER_LEN..].to_vec());
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad.as_slice()),
            &mut body,
        )
        .map_err(|_| CryptoError::Integrity)?
        .len();
    body.truncate(n);
    Ok(body)
}

/// Seals a small record (catalog entry, wrapped key) under a long-lived key.
pub fn seal_record(key: &Key32, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let iv: [u8; NONCE_LEN] = random_bytes()?;
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Integrity)?,
    );
    let mut body = plaintext.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut body)
        .map_err(|_| CryptoError::Integrity)?;
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + body.len());
    out.push(RECORD_FORMAT_V1);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn open_record(
    key: &Key32,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < RECORD_HEADER_LEN + TAG_LEN || sealed[0] != RECORD_FORMAT_V1 {
        return Err(CryptoError::Integrity);
    }
    let mut iv = [0u8; NONCE_LEN];
    iv.copy_from_slice(&sealed[1..RECORD_HEADER_LEN]);
    let k = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| CryptoError::Integrity)?,
    );
    let mut body = Zeroizing::new(sealed[RECORD_HEADER_LEN..].to_vec());
    let n = k
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut body)
        .map_err(|_| CryptoError::Integrity)?
        .len();
    body.truncate(n);
    Ok(body)
}

/// Wraps a child key (token key, data key) under a parent key.
pub fn wrap_key(parent: &Key32, aad: &[u8], child: &Key32) -> Result<Vec<u8>, CryptoError> {
    seal_record(parent, aad, child.expose())
}

pub fn unwrap_key(parent: &Key32, aad: &[u8], wrapped: &[u8]) -> Result<Key32, CryptoError> {
    let plain = open_record(parent, aad, wrapped)?;
    Key32::from_slice(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn binding<'a>(sk: &'a [u8]) -> Binding<'a> {
        Binding {
            label: b"item",
            keyspace: &[7u8; 16],
            index: 0,
            storage_key: sk,
        }
    }

    #[test]
    fn round_trip_and_header() {
        let dek = Key32::random().unwrap();
        let h = ItemHeader {
            generation: 3,
            write_seq: 99,
        };
        let sealed = seal_item(&dek, h, &binding(b"k1"), b"hello").unwrap();
        assert_eq!(peek_item_header(&sealed).unwrap(), h);
        assert_eq!(
            &open_item(&dek, &binding(b"k1"), &sealed).unwrap()[..],
            b"hello"
        );
        // The same plaintext seals differently every time (fresh salt and iv).
        assert_ne!(
            sealed,
            seal_item(&dek, h, &binding(b"k1"), b"hello").unwrap()
        );
    }

    #[test]
    fn moved_value_or_wrong_key_fails() {
        let dek = Key32::random().unwrap();
        let h = ItemHeader {
            generation: 1,
            write_seq: 1,
        };
        let sealed = seal_item(&dek, h, &binding(b"k1"), b"v").unwrap();
        assert!(open_item(&dek, &binding(b"k2"), &sealed).is_err());
        assert!(open_item(&Key32::random().unwrap(), &binding(b"k1"), &sealed).is_err());
        let mut other_space = binding(b"k1");
        other_space.keyspace = &[8u8; 16];
        assert!(open_item(&dek, &other_space, &sealed).is_err());
    }

    proptest! {
        #[test]
        fn any_single_byte_flip_is_detected(pt in proptest::collection::vec(any::<u8>(), 0..200), pos in any::<usize>(), bit in 0u8..8) {
            let dek = Key32::from_slice(&[5; 32]).unwrap();
            let sealed = seal_item(&dek, ItemHeader { generation: 1, write_seq: 2 }, &binding(b"key"), &pt).unwrap();
            let mut bad = sealed.clone();
            let i = pos % bad.len();
            bad[i] ^= 1 << bit;
            prop_assert!(open_item(&dek, &binding(b"key"), &bad).is_err());
            // Truncation too.
            prop_assert!(open_item(&dek, &binding(b"key"), &sealed[..i]).is_err());
        }

        #[test]
        fn records_round_trip_and_bind_aad(pt in proptest::collection::vec(any::<u8>(), 0..100)) {
            let k = Key32::from_slice(&[9; 32]).unwrap();
            let s = seal_record(&k, b"aad", &pt).unwrap();
            prop_assert_eq!(&open_record(&k, b"aad", &s).unwrap()[..], &pt[..]);
            prop_assert!(open_record(&k, b"aae", &s).is_err());
        }
    }

    #[test]
    fn wrapped_keys_round_trip() {
        let parent = Key32::random().unwrap();
        let child = Key32::random().unwrap();
        let w = wrap_key(&parent, b"tok", &child).unwrap();
        assert_eq!(
            unwrap_key(&parent, b"tok", &w).unwrap().expose(),
            child.expose()
        );
        assert!(unwrap_key(&parent, b"dek", &w).is_err());
    }
}
