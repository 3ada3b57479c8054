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
    let (generation, dek) = keys.active().ok_or(ItemsError::NoActiveKey)?;
    let mut plain = Zeroizing::new(Vec::with_capacity(256));
    encode_item(item, &mut plain);
    let binding = Binding {
        label: ITEM_LABEL,
        keyspace: &keys.keyspace,
        index,
        storage_key,
    };
    Ok(envelope::seal_item(
        dek,
        ItemHeader {
            generation,
            write_seq: next_write_seq(),
        },
        &binding,
        &plain,
    )?)
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

/// Approximate plaintext length of a sealed value (startup statistics).
pub fn approx_plain_len(sealed: &[u8]) -> usize {
    sealed.len().saturating_sub(ITEM_HEADER_LEN + TAG_LEN)
}
