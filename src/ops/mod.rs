//! Operations: one file per family, each `validate -> plan -> run`. Authorization has already
//! happened when an operation runs (http/pipeline.rs); storage work runs on the blocking pool.

pub mod admin;
pub mod batch;
pub mod capacity;
pub mod commit;
pub mod index_admin;
pub mod items;
pub mod key_admin;
pub mod keys;
pub mod query;
pub mod resource_policy;
pub mod tables;
pub mod tags;
pub mod transact;
pub mod ttl;
pub mod update;
pub mod update_table;

use std::sync::Arc;

use crate::audit::Audit;
use crate::catalog::tables::TableEntry;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::crypto::keyring::{CachePolicy, TableKeys};
use crate::error::ApiError;
use crate::kms::KmsProvider;
use crate::storage::Store;

/// Everything an operation may use; built once at start-up.
pub struct Services {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Always the audited decorator.
    pub kms: Arc<dyn KmsProvider>,
    /// Key id/ARN/alias used for tables that name no key.
    pub default_kms_key: String,
    pub catalog: Catalog,
    pub audit: Audit,
    pub key_cache: CachePolicy,
    /// The in-process KMS, when that is the provider (operator commands, drills, tests).
    pub local_kms: Option<Arc<crate::kms::local::LocalKms>>,
}

impl Services {
    /// The live table, or DynamoDB's ResourceNotFoundException for data-plane calls.
    pub fn table(&self, name: &str) -> Result<Arc<TableEntry>, ApiError> {
        self.catalog
            .table(name)
            .ok_or_else(|| ApiError::ResourceNotFound("Requested resource not found".into()))
    }

    /// The table's plaintext child keys: from the cache, or one KMS call when stale.
    pub async fn table_keys(&self, entry: &TableEntry) -> Result<Arc<TableKeys>, ApiError> {
        Ok(entry
            .keys
            .get(
                self.kms.as_ref(),
                &entry.def.keys,
                &entry.def.keyspace,
                self.key_cache,
            )
            .await?)
    }
}

/// Runs a single-item write to completion as its own task: the commit is awaited, not blocked
/// on, yet a client that disconnects mid-commit (hyper then drops the request's future) cannot
/// stop the write between its landing and the table statistics that follow it.
pub async fn detached<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(f)
        .await
        .map_err(|e| ApiError::Internal(format!("operation task failed: {e}")))?
}

/// Runs storage and crypto work on tokio's blocking pool (RocksDB calls block; fsync waits).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("operation task failed: {e}")))?
}
