//! The only place where an item becomes sealed bytes and back.
//!
//! Storage key (items space): `keyspace(16) | index(1) | T(pk)(16) | T(pk, sk)(16)`: the
//! partition token first so one partition's rows are contiguous, the item token last.
//! Value: the AEAD envelope of the binary item encoding under the active data key.
//! Opening re-derives the tokens from the decrypted key attributes and compares them with
//! the storage key in constant time, so a value copied under another key never opens.

use std::sync::atomic::{AtomicU64, Ordering};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::catalog::tables::TableDef;
use crate::crypto::envelope::{self, Binding, ItemHeader, ITEM_HEADER_LEN, TAG_LEN};
use crate::crypto::keyring::{Keyspace, TableKeys, KEYSPACE_LEN};
use crate::crypto::tokens::{item_token, partition_token, TOKEN_LEN};
use crate::crypto::CryptoError;
use crate::protocol::attr::{decode_item, encode_item, key_token_input, AttributeValue, Item};
use crate::storage::sort_index::{PageCrypto, SortIndexError};

/// Index id of the base table; secondary indexes get their own ids.
pub const BASE_INDEX: u8 = 0;
const ITEM_LABEL: &[u8] = b"sealdb/item/v1";
pub const STORAGE_KEY_LEN: usize = KEYSPACE_LEN + 1 + 2 * TOKEN_LEN;

#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    /// Tag failure, unknown generation, malformed plaintext or a key/token mismatch.
    #[error("integrity check failed")]
    Integrity,
    #[error("table key has no active data key generation")]
    NoActiveKey,
    #[error("{0}")]
    Crypto(CryptoError),
}

impl From<CryptoError> for ItemsError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity | CryptoError::UnknownGeneration(_) => ItemsError::Integrity,
            other => ItemsError::Crypto(other),
        }
    }
}

/// The primary key of an item (values already validated against the schema).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemKey {
    pub pk: AttributeValue,
    pub sk: Option<AttributeValue>,
}

impl ItemKey {
    /// The key attributes as an item (for LastEvaluatedKey and ALL_OLD on missing items).
    pub fn to_item(&self, def: &TableDef) -> Item {
        let mut m = Item::new();
        m.insert(def.key_schema.hash.name.clone(), self.pk.clone());
        if let (Some(r), Some(sk)) = (&def.key_schema.range, &self.sk) {
            m.insert(r.name.clone(), sk.clone());
        }
        m
    }
}

pub fn table_prefix(keyspace: &Keyspace) -> Vec<u8> {
    keyspace.to_vec()
}

/// Prefix of one partition's rows: `keyspace | index | T(pk)`.
pub fn partition_prefix(
    keys: &TableKeys,
    index: u8,
    pk: &AttributeValue,
) -> Result<Vec<u8>, ItemsError> {
    let mut pk_bytes = Vec::new();
    key_token_input(pk, &mut pk_bytes).map_err(|_| ItemsError::Integrity)?;
    let mut out = Vec::with_capacity(STORAGE_KEY_LEN);
    out.extend_from_slice(&keys.keyspace);
    out.push(index);
    out.extend_from_slice(&partition_token(&keys.token, &pk_bytes));
    Ok(out)
}

pub fn storage_key(keys: &TableKeys, index: u8, key: &ItemKey) -> Result<Vec<u8>, ItemsError> {
    let mut pk_bytes = Vec::new();
    key_token_input(&key.pk, &mut pk_bytes).map_err(|_| ItemsError::Integrity)?;
    let mut sk_bytes = Vec::new();
    if let Some(sk) = &key.sk {
        key_token_input(sk, &mut sk_bytes).map_err(|_| ItemsError::Integrity)?;
    }
    let mut out = Vec::with_capacity(STORAGE_KEY_LEN);
    out.extend_from_slice(&keys.keyspace);
    out.push(index);
    out.extend_from_slice(&partition_token(&keys.token, &pk_bytes));
    out.extend_from_slice(&item_token(
        &keys.token,
        &pk_bytes,
        key.sk.as_ref().map(|_| sk_bytes.as_slice()),
    ));
    Ok(out)
}

/// The key attributes of a decrypted item, if it has them with the schema's types.
fn key_of(def: &TableDef, item: &Item) -> Option<ItemKey> {
    let pk = item.get(&def.key_schema.hash.name)?.clone();
    let sk = match &def.key_schema.range {
        Some(r) => Some(item.get(&r.name)?.clone()),
        None => None,
    };
    Some(ItemKey { pk, sk })
}

static LAST_WRITE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Monotonic across restarts (seeded from the clock in nanoseconds).
pub fn next_write_seq() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut prev = LAST_WRITE_SEQ.load(Ordering::Relaxed);
    loop {
        let next = prev.saturating_add(1).max(now);
        match LAST_WRITE_SEQ.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

pub fn seal(
    keys: &TableKeys,
    index: u8,
    storage_key: &[u8],
    item: &Item,
) -> Result<Vec<u8>, ItemsError> {
    seal_versioned(keys, index, storage_key, item).map(|(sealed, _)| sealed)
}

pub fn open(
    keys: &TableKeys,
    def: &TableDef,
    index: u8,
    at: &[u8],
    sealed: &[u8],
) -> Result<Item, ItemsError> {
    let header = envelope::peek_item_header(sealed)?;
    let dek = keys.dek(header.generation).ok_or(ItemsError::Integrity)?;
    let binding = Binding {
        label: ITEM_LABEL,
        keyspace: &keys.keyspace,
        index,
        storage_key: at,
    };
    let plain = envelope::open_item(dek, &binding, sealed)?;
    let item = decode_item(&plain).map_err(|_| ItemsError::Integrity)?;
    let key = key_of(def, &item).ok_or(ItemsError::Integrity)?;
    let expected = storage_key(keys, index, &key)?;
    if expected.ct_eq(at).into() {
        Ok(item)
    } else {
        Err(ItemsError::Integrity)
    }
}

/// [`seal`], also returning the write sequence sealed into the header (the sort-index entry
/// of a new item records it).
pub fn seal_versioned(
    keys: &TableKeys,
    index: u8,
    storage_key: &[u8],
    item: &Item,
) -> Result<(Vec<u8>, u64), ItemsError> {
    let (generation, dek) = keys.active().ok_or(ItemsError::NoActiveKey)?;
    let mut plain = Zeroizing::new(Vec::with_capacity(256));
    encode_item(item, &mut plain);
    let binding = Binding {
        label: ITEM_LABEL,
        keyspace: &keys.keyspace,
        index,
        storage_key,
    };
    let write_seq = next_write_seq();
    let sealed = envelope::seal_item(
        dek,
        ItemHeader {
            generation,
            write_seq,
        },
        &binding,
        &plain,
    )?;
    Ok((sealed, write_seq))
}

/// `T(pk, sk)`: the last [`TOKEN_LEN`] bytes of an item storage key.
pub fn item_token_of(storage_key: &[u8]) -> Option<[u8; TOKEN_LEN]> {
    let start = storage_key.len().checked_sub(TOKEN_LEN)?;
    storage_key.get(start..)?.try_into().ok()
}

/// Length of `keyspace | index | T(pk)`: the prefix shared by a partition's item keys and its
/// sort-index pages.
pub const PARTITION_PREFIX_LEN: usize = KEYSPACE_LEN + 1 + TOKEN_LEN;

const PAGE_LABEL: &[u8] = b"sealdb/sortidx/v1";

/// Sort-index pages sealed like items: the table's active data key, a fresh HKDF salt per page
/// write, and an AAD binding label, keyspace, index and the page's storage key (partition
/// prefix | page id), so a page moved to another position, partition or table never opens.
pub struct IndexPages<'a> {
    pub keys: &'a TableKeys,
    pub index: u8,
}

impl PageCrypto for IndexPages<'_> {
    fn seal(&self, storage_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SortIndexError> {
        let (generation, dek) = self.keys.active().ok_or(SortIndexError::Seal)?;
        let binding = Binding {
            label: PAGE_LABEL,
            keyspace: &self.keys.keyspace,
            index: self.index,
            storage_key,
        };
        envelope::seal_item(
            dek,
            ItemHeader {
                generation,
                write_seq: next_write_seq(),
            },
            &binding,
            plaintext,
        )
        .map_err(|_| SortIndexError::Seal)
    }

    fn open(
        &self,
        storage_key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SortIndexError> {
        let header = envelope::peek_item_header(sealed).map_err(|_| SortIndexError::Integrity)?;
        let dek = self
            .keys
            .dek(header.generation)
            .ok_or(SortIndexError::Integrity)?;
        let binding = Binding {
            label: PAGE_LABEL,
            keyspace: &self.keys.keyspace,
            index: self.index,
            storage_key,
        };
        envelope::open_item(dek, &binding, sealed).map_err(|_| SortIndexError::Integrity)
    }
}

/// Approximate plaintext length of a sealed value (startup statistics).
pub fn approx_plain_len(sealed: &[u8]) -> usize {
    sealed.len().saturating_sub(ITEM_HEADER_LEN + TAG_LEN)
}
