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
    let item = decrypt(keys, index, at, sealed)?;
    let key = key_of(def, &item).ok_or(ItemsError::Integrity)?;
    let expected = storage_key(keys, index, &key)?;
    if expected.ct_eq(at).into() {
        Ok(item)
    } else {
        Err(ItemsError::Integrity)
    }
}

/// A storage key computed from a known primary key: what a reader that asks for one item
/// (GetItem, a single-item write) looks up.
pub struct KeyedAt<'k> {
    key: &'k ItemKey,
    index: u8,
    at: Vec<u8>,
}

impl<'k> KeyedAt<'k> {
    pub fn new(keys: &TableKeys, index: u8, key: &'k ItemKey) -> Result<Self, ItemsError> {
        Ok(KeyedAt {
            key,
            index,
            at: storage_key(keys, index, key)?,
        })
    }

    pub fn storage_key(&self) -> &[u8] {
        &self.at
    }

    /// [`open`] of the bytes found at this storage key. The decrypted key attributes must equal
    /// the requested ones: tokens are a function of the key attributes, so this is the same
    /// check as re-tokenizing them (and stricter, should two keys' truncated tokens ever
    /// collide), without its two HMACs.
    pub fn open(
        &self,
        keys: &TableKeys,
        def: &TableDef,
        sealed: &[u8],
    ) -> Result<Item, ItemsError> {
        let item = decrypt(keys, self.index, &self.at, sealed)?;
        match key_of(def, &item) {
            Some(found) if found == *self.key => Ok(item),
            _ => Err(ItemsError::Integrity),
        }
    }
}

/// The AEAD and decoding half of [`open`]: the tag covers the binding, the storage key
/// included, so bytes moved under another key fail here already.
fn decrypt(keys: &TableKeys, index: u8, at: &[u8], sealed: &[u8]) -> Result<Item, ItemsError> {
    let header = envelope::peek_item_header(sealed)?;
    let dek = keys.dek(header.generation).ok_or(ItemsError::Integrity)?;
    let binding = Binding {
        label: ITEM_LABEL,
        keyspace: &keys.keyspace,
        index,
        storage_key: at,
    };
    let plain = envelope::open_item(dek, &binding, sealed)?;
    decode_item(&plain).map_err(|_| ItemsError::Integrity)
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

/// The sealed row kinds of a table's keyspace and how each is bound (label, index byte):
/// items (and secondary-index entries, index bytes 1..N) in `Space::Items`, sort-index pages
/// in `Space::SortIndex`. Whoever adds a row kind sealed under another label adds it here, so
/// that re-encryption keeps covering every sealed row.
fn row_binding<'a>(
    space: crate::storage::Space,
    keyspace: &'a Keyspace,
    storage_key: &'a [u8],
) -> Option<Binding<'a>> {
    use crate::storage::Space;
    let index = *storage_key.get(KEYSPACE_LEN)?;
    if storage_key.get(..KEYSPACE_LEN)? != keyspace.as_slice() {
        return None;
    }
    let label = match space {
        Space::Items => ITEM_LABEL,
        Space::SortIndex => PAGE_LABEL,
        Space::Meta | Space::Jobs => return None,
    };
    Some(Binding {
        label,
        keyspace,
        index,
        storage_key,
    })
}

/// The data-key generation a sealed row was written under (clear header; authenticated only
/// when the row is opened).
pub fn row_generation(sealed: &[u8]) -> Option<u32> {
    envelope::peek_item_header(sealed)
        .ok()
        .map(|h| h.generation)
}

/// Re-seals one sealed row of the table's keyspace (any row kind, see [`row_binding`]) under
/// the active data-key generation, keeping its write sequence (sort-index entries record it).
/// `Ok(None)` when the row already uses the active generation. The row is opened first, so a
/// damaged row is reported, never rewritten.
pub fn reseal_row(
    keys: &TableKeys,
    space: crate::storage::Space,
    storage_key: &[u8],
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, ItemsError> {
    let header = envelope::peek_item_header(sealed)?;
    if header.generation == keys.active_generation() {
        return Ok(None);
    }
    let binding = row_binding(space, &keys.keyspace, storage_key).ok_or(ItemsError::Integrity)?;
    let old = keys.dek(header.generation).ok_or(ItemsError::Integrity)?;
    let plain = envelope::open_item(old, &binding, sealed)?;
    let (generation, dek) = keys.active().ok_or(ItemsError::NoActiveKey)?;
    let resealed = envelope::seal_item(
        dek,
        ItemHeader {
            generation,
            write_seq: header.write_seq,
        },
        &binding,
        &plain,
    )?;
    Ok(Some(resealed))
}

/// Approximate plaintext length of a sealed value (startup statistics).
pub fn approx_plain_len(sealed: &[u8]) -> usize {
    sealed.len().saturating_sub(ITEM_HEADER_LEN + TAG_LEN)
}

// ---- secondary-index entries ------------------------------------------------------------
//
// An entry of index `i` lives at `keyspace | i | T(I, pk') | T(I, pk', sk', base key)`: the
// partition token comes first so an index partition is contiguous (Query, Scan), the entry
// token covers the base item's key as well so that items sharing index key values get
// distinct entries. The token inputs start with a domain tag and the index byte, so an index
// partition's token never equals the token of a base partition (or of another index) with the
// same value: storage keys do not link a table's partitions to its indexes' partitions.

const INDEX_TOKEN_TAG: u8 = b'I';

fn index_pk_input(index: u8, pk: &AttributeValue) -> Result<Vec<u8>, ItemsError> {
    let mut b = vec![INDEX_TOKEN_TAG, index];
    key_token_input(pk, &mut b).map_err(|_| ItemsError::Integrity)?;
    Ok(b)
}

/// Prefix of one index partition's entries (and of its sort-index pages).
pub fn index_partition_prefix(
    keys: &TableKeys,
    index: u8,
    pk: &AttributeValue,
) -> Result<Vec<u8>, ItemsError> {
    let pk_bytes = index_pk_input(index, pk)?;
    let mut out = Vec::with_capacity(STORAGE_KEY_LEN);
    out.extend_from_slice(&keys.keyspace);
    out.push(index);
    out.extend_from_slice(&partition_token(&keys.token, &pk_bytes));
    Ok(out)
}

/// Storage key of the entry of base item `base` in index `index` under index key (pk, sk).
pub fn index_storage_key(
    keys: &TableKeys,
    index: u8,
    pk: &AttributeValue,
    sk: Option<&AttributeValue>,
    base: &ItemKey,
) -> Result<Vec<u8>, ItemsError> {
    let pk_bytes = index_pk_input(index, pk)?;
    // Self-delimiting parts: a presence byte for the optional index sort key, then typed,
    // length-prefixed values (the base sort key's presence is fixed by the table schema).
    let mut rest = Vec::new();
    match sk {
        Some(v) => {
            rest.push(1);
            key_token_input(v, &mut rest).map_err(|_| ItemsError::Integrity)?;
        }
        None => rest.push(0),
    }
    key_token_input(&base.pk, &mut rest).map_err(|_| ItemsError::Integrity)?;
    if let Some(s) = &base.sk {
        key_token_input(s, &mut rest).map_err(|_| ItemsError::Integrity)?;
    }
    let mut out = Vec::with_capacity(STORAGE_KEY_LEN);
    out.extend_from_slice(&keys.keyspace);
    out.push(index);
    out.extend_from_slice(&partition_token(&keys.token, &pk_bytes));
    out.extend_from_slice(&item_token(&keys.token, &pk_bytes, Some(&rest)));
    Ok(out)
}

/// Opens a sealed index entry (the projected item) and checks that its index key and base key
/// re-derive the storage key it was read from.
pub fn open_index_entry(
    keys: &TableKeys,
    def: &TableDef,
    idx: &crate::indexes::IndexDef,
    at: &[u8],
    sealed: &[u8],
) -> Result<Item, ItemsError> {
    let header = envelope::peek_item_header(sealed)?;
    let dek = keys.dek(header.generation).ok_or(ItemsError::Integrity)?;
    let binding = Binding {
        label: ITEM_LABEL,
        keyspace: &keys.keyspace,
        index: idx.id,
        storage_key: at,
    };
    let plain = envelope::open_item(dek, &binding, sealed)?;
    let item = decode_item(&plain).map_err(|_| ItemsError::Integrity)?;
    let base = key_of(def, &item).ok_or(ItemsError::Integrity)?;
    let (pk, sk) = idx.key_of(&item).ok_or(ItemsError::Integrity)?;
    let expected = index_storage_key(keys, idx.id, &pk, sk.as_ref(), &base)?;
    if expected.ct_eq(at).into() {
        Ok(item)
    } else {
        Err(ItemsError::Integrity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyring::{create_table_keys, WrappedTableKeys};
    use crate::kms::local::{LocalKms, DEFAULT_ALIAS};

    fn table() -> (TableDef, TableKeys) {
        let kms = LocalKms::in_memory("000000000000", "us-east-1").unwrap();
        let ks = [7u8; 16];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (wrapped, keys): (WrappedTableKeys, TableKeys) = rt
            .block_on(create_table_keys(&kms, DEFAULT_ALIAS, &ks))
            .unwrap();
        let def: TableDef = serde_json::from_value(serde_json::json!({
            "name": "t",
            "table_id": "id",
            "keyspace": hex::encode(ks),
            "key_schema": {"hash": {"name": "pk", "ty": "S"}, "range": null},
            "attribute_definitions": [],
            "billing_mode": "PAY_PER_REQUEST",
            "throughput": null,
            "created": 0.0,
            "sse_explicit": false,
            "keys": serde_json::to_value(&wrapped).unwrap(),
        }))
        .unwrap();
        (def, keys)
    }

    fn item(pk: &str) -> (ItemKey, Item) {
        let pk = AttributeValue::S(pk.into());
        let mut item = Item::new();
        item.insert("pk".into(), pk.clone());
        item.insert("v".into(), AttributeValue::S("payload".into()));
        (ItemKey { pk, sk: None }, item)
    }

    #[test]
    fn keyed_open_accepts_exactly_what_open_accepts() {
        let (def, keys) = table();
        let (ka, a) = item("alice");
        let (kb, b) = item("bob");
        let at_a = KeyedAt::new(&keys, BASE_INDEX, &ka).unwrap();
        let at_b = KeyedAt::new(&keys, BASE_INDEX, &kb).unwrap();

        // The item sealed at its own key opens both ways.
        let sealed_a = seal(&keys, BASE_INDEX, at_a.storage_key(), &a).unwrap();
        assert_eq!(at_a.open(&keys, &def, &sealed_a).unwrap(), a);
        assert_eq!(
            open(&keys, &def, BASE_INDEX, at_a.storage_key(), &sealed_a).unwrap(),
            a
        );

        // Bob's attributes sealed under Alice's storage key: the tag verifies (the binding is
        // Alice's key), so only the key check can refuse it, and both checks do.
        let forged = seal(&keys, BASE_INDEX, at_a.storage_key(), &b).unwrap();
        assert!(matches!(
            at_a.open(&keys, &def, &forged),
            Err(ItemsError::Integrity)
        ));
        assert!(matches!(
            open(&keys, &def, BASE_INDEX, at_a.storage_key(), &forged),
            Err(ItemsError::Integrity)
        ));

        // Alice's bytes read at Bob's key fail the tag.
        assert!(matches!(
            at_b.open(&keys, &def, &sealed_a),
            Err(ItemsError::Integrity)
        ));
    }
}
