//! The catalog: table definitions and IAM principals, sealed under the system key in the
//! `meta` space and held in memory (one map lookup per request, no storage read).
//!
//! The system key is a KMS data key (context `{sealdb:keyspace: system}`) under the server's
//! default KMS key; its wrapped form is the only unsealed record in `meta`.

pub mod principals;
pub mod tables;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::envelope::{open_record, seal_record};
use crate::crypto::keyring::{KeySlot, TableKeys};
use crate::crypto::{CryptoError, Key32};
use crate::kms::{keyspace_context, KmsError, KmsProvider};
use crate::storage::{Check, CommitError, Space, Store, StoreError, Write};
use principals::PrincipalIndex;
use tables::{TableDef, TableEntry, TableStats};

const SYSTEM_KEY_RECORD: &[u8] = b"sys/key";
const TABLE_PREFIX: &[u8] = b"tbl/";
const USER_PREFIX: &[u8] = b"usr/";
const CATALOG_AAD_LABEL: &[u8] = b"sealdb/catalog/v1|";

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("Table already exists: {0}")]
    TableExists(String),
    #[error("Requested resource not found: Table: {0} not found")]
    TableNotFound(String),
    #[error("User already exists: {0}")]
    UserExists(String),
    #[error("The user with name {0} cannot be found.")]
    UserNotFound(String),
    #[error("The Access Key with id {0} cannot be found.")]
    AccessKeyNotFound(String),
    #[error("The access key id {0} is already in use.")]
    AccessKeyExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("catalog record failed its integrity check")]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Kms(#[from] KmsError),
    #[error("catalog record is malformed: {0}")]
    Corrupt(String),
    #[error("concurrent catalog change, retry")]
    Conflict,
}

impl From<CommitError> for CatalogError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Conflict { .. } => CatalogError::Conflict,
            CommitError::Store(s) => CatalogError::Store(s),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SystemKeyRecord {
    kms_key_arn: String,
    #[serde(with = "crate::util::b64")]
    blob: Vec<u8>,
}

pub struct Catalog {
    store: Arc<dyn Store>,
    system_key: Key32,
    pub account: String,
    pub region: String,
    /// Read by every request without a lock; replaced whole (copy on write) by the mutations,
    /// which `mutate` serializes, so no update is lost.
    tables: ArcSwap<HashMap<String, Arc<TableEntry>>>,
    principals: ArcSwap<PrincipalIndex>,
    /// Serializes catalog mutations (rare: DDL and IAM administration).
    mutate: tokio::sync::Mutex<()>,
}

fn record_aad(key: &[u8]) -> Vec<u8> {
    let mut aad = CATALOG_AAD_LABEL.to_vec();
    aad.extend_from_slice(key);
    aad
}

fn prefixed(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(id);
    k
}

/// The first key after every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CatalogError> + Send + 'static,
) -> Result<T, CatalogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CatalogError::Corrupt(format!("task failed: {e}")))?
}

impl Catalog {
    /// Opens the catalog: unwraps (or creates) the system key, loads tables and principals.
    pub async fn open(
        store: Arc<dyn Store>,
        kms: &dyn KmsProvider,
        default_kms_key: &str,
        account: &str,
        region: &str,
    ) -> Result<Catalog, CatalogError> {
        let ctx = keyspace_context("system");
        let s = store.clone();
        let existing = blocking(move || Ok(s.get(Space::Meta, SYSTEM_KEY_RECORD)?)).await?;
        let system_key = match existing {
            Some(bytes) => {
                let rec: SystemKeyRecord = serde_json::from_slice(&bytes)
                    .map_err(|e| CatalogError::Corrupt(e.to_string()))?;
                kms.decrypt(&rec.kms_key_arn, &rec.blob, &ctx).await?
            }
            None => {
                let dk = kms.generate_data_key(default_kms_key, &ctx).await?;
                let rec = SystemKeyRecord {
                    kms_key_arn: dk.key_arn.clone(),
                    blob: dk.blob.clone(),
                };
                let bytes =
                    serde_json::to_vec(&rec).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
                let s = store.clone();
                blocking(move || {
                    s.commit(
                        &[Check {
                            space: Space::Meta,
                            key: SYSTEM_KEY_RECORD.to_vec(),
                            expect: None,
                        }],
                        &[Write::Put {
                            space: Space::Meta,
                            key: SYSTEM_KEY_RECORD.to_vec(),
                            value: bytes,
                        }],
                    )?;
                    Ok(())
                })
                .await?;
                dk.plaintext
            }
        };
        let cat = Catalog {
            store,
            system_key,
            account: account.to_string(),
            region: region.to_string(),
            tables: ArcSwap::from_pointee(HashMap::new()),
            principals: ArcSwap::from_pointee(PrincipalIndex::default()),
            mutate: tokio::sync::Mutex::new(()),
        };
        cat.load().await?;
        Ok(cat)
    }

    fn open_records(&self, prefix: &[u8]) -> Result<Vec<Zeroizing<Vec<u8>>>, CatalogError> {
        let mut out = Vec::new();
        let end = prefix_end(prefix);
        let mut start = prefix.to_vec();
        loop {
            let page = self
                .store
                .scan(Space::Meta, &start, Some(&end), false, 256)?;
            for (k, v) in &page.entries {
                out.push(open_record(&self.system_key, &record_aad(k), v)?);
            }
            match (page.more, page.entries.last()) {
                (true, Some((k, _))) => {
                    start = k.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn load(&self) -> Result<(), CatalogError> {
        let mut tables = HashMap::new();
        for plain in self.open_records(TABLE_PREFIX)? {
            let def: TableDef =
                serde_json::from_slice(&plain).map_err(|e| CatalogError::Corrupt(e.to_string()))?;
            let stats = self.count_items(&def)?;
            tables.insert(
                def.name.clone(),
                Arc::new(TableEntry {
                    def,
                    keys: Arc::new(KeySlot::default()),
                    stats: Arc::new(stats),
                }),
            );
        }
        let index = self.load_principals()?;
        self.tables.store(Arc::new(tables));
        self.principals.store(Arc::new(index));
        Ok(())
    }

    /// Startup statistics: one pass over the table's sealed rows (sizes are approximate).
    fn count_items(&self, def: &TableDef) -> Result<TableStats, CatalogError> {
        let stats = TableStats::default();
        // Base rows only: index entries live under the same keyspace with other index bytes.
        let mut prefix = crate::items::table_prefix(&def.keyspace);
        prefix.push(crate::items::BASE_INDEX);
        let end = prefix_end(&prefix);
        let mut start = prefix.clone();
        loop {
            let page = self
                .store
                .scan(Space::Items, &start, Some(&end), false, 1024)?;
            for (_, v) in &page.entries {
                stats.adjust(1, crate::items::approx_plain_len(v) as i64);
            }
            match (page.more, page.entries.last()) {
                (true, Some((k, _))) => {
                    start = k.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        Ok(stats)
    }

    fn seal(&self, key: &[u8], value: &impl Serialize) -> Result<Vec<u8>, CatalogError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| CatalogError::Corrupt(e.to_string()))?,
        );
        Ok(seal_record(&self.system_key, &record_aad(key), &plain)?)
    }

    // ---- tables -------------------------------------------------------------------------

    pub fn table(&self, name: &str) -> Option<Arc<TableEntry>> {
        self.tables.load().get(name).cloned()
    }

    /// Replaces the table map with an edited copy. Callers hold `mutate`.
    fn edit_tables(&self, edit: impl FnOnce(&mut HashMap<String, Arc<TableEntry>>)) {
        let mut tables = HashMap::clone(&self.tables.load());
        edit(&mut tables);
        self.tables.store(Arc::new(tables));
    }

    /// Every live table (background work: key refresh).
    pub fn tables(&self) -> Vec<Arc<TableEntry>> {
        self.tables.load().values().cloned().collect()
    }

    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.load().keys().cloned().collect();
        names.sort();
        names
    }

    pub async fn create_table(
        &self,
        def: TableDef,
        keys: TableKeys,
    ) -> Result<Arc<TableEntry>, CatalogError> {
        let _guard = self.mutate.lock().await;
        if self.table(&def.name).is_some() {
            return Err(CatalogError::TableExists(def.name));
        }
        let key = prefixed(TABLE_PREFIX, &def.keyspace);
        let sealed = self.seal(&key, &def)?;
        let s = self.store.clone();
        blocking(move || {
            s.commit(
                &[Check {
                    space: Space::Meta,
                    key: key.clone(),
                    expect: None,
                }],
                &[Write::Put {
                    space: Space::Meta,
                    key,
                    value: sealed,
                }],
            )?;
            Ok(())
        })
        .await?;
        let entry = Arc::new(TableEntry {
            def,
            keys: Arc::new(KeySlot::with_keys(keys)),
            stats: Arc::new(TableStats::default()),
        });
        self.edit_tables(|t| {
            t.insert(entry.def.name.clone(), entry.clone());
        });
        Ok(entry)
    }

    /// Changes a table's stored definition: `change` edits a copy of the current definition
    /// (returning an error leaves everything as it was); the sealed record is rewritten and the
    /// live entry replaced by one sharing the same key slot and statistics. Serialized with
    /// every other catalog mutation. Requests already holding the old entry finish with it.
    pub async fn update_table<T, E: From<CatalogError>>(
        &self,
        name: &str,
        change: impl FnOnce(&mut TableDef) -> Result<T, E>,
    ) -> Result<(Arc<TableEntry>, T), E> {
        let _guard = self.mutate.lock().await;
        let current = self
            .table(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        let mut def = current.def.clone();
        let out = change(&mut def)?;
        // The keyspace names the record and binds the keys: it never changes.
        if def.keyspace != current.def.keyspace || def.name != current.def.name {
            return Err(
                CatalogError::Invalid("a table's name and keyspace cannot change".into()).into(),
            );
        }
        let key = prefixed(TABLE_PREFIX, &def.keyspace);
        let sealed = self.seal(&key, &def)?;
        let s = self.store.clone();
        blocking(move || {
            s.commit(
                &[],
                &[Write::Put {
                    space: Space::Meta,
                    key,
                    value: sealed,
                }],
            )?;
            Ok(())
        })
        .await?;
        let entry = Arc::new(TableEntry {
            def,
            keys: current.keys.clone(),
            stats: current.stats.clone(),
        });
        self.edit_tables(|t| {
            t.insert(entry.def.name.clone(), entry.clone());
        });
        Ok((entry, out))
    }

    /// Destroys a table: its record (and with it the only copy of its wrapped keys: a
    /// crypto-shred), then its rows.
    pub async fn delete_table(&self, name: &str) -> Result<Arc<TableEntry>, CatalogError> {
        let _guard = self.mutate.lock().await;
        let entry = self
            .table(name)
            .ok_or_else(|| CatalogError::TableNotFound(name.to_string()))?;
        let key = prefixed(TABLE_PREFIX, &entry.def.keyspace);
        let s = self.store.clone();
        let prefix = crate::items::table_prefix(&entry.def.keyspace);
        blocking(move || {
            s.commit(
                &[],
                &[Write::Delete {
                    space: Space::Meta,
                    key,
                }],
            )?;
            let end = prefix_end(&prefix);
            s.delete_range(Space::Items, &prefix, &end)?;
            s.delete_range(Space::SortIndex, &prefix, &end)?;
            Ok(())
        })
        .await?;
        entry.keys.forget();
        self.edit_tables(|t| {
            t.remove(name);
        });
        Ok(entry)
    }

    // ---- principals ---------------------------------------------------------------------

    pub fn principals(&self) -> Arc<PrincipalIndex> {
        self.principals.load_full()
    }

    // Mutations of principals (users, groups, roles): principals/store.rs.
}
