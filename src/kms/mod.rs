//! KMS providers behind one trait. The table key ring only ever talks to `dyn KmsProvider`,
//! always through the audit decorator ([`audited::Audited`]).
pub mod audited;
pub mod aws;
pub mod local;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::crypto::Key32;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type EncryptionContext = BTreeMap<String, String>;

/// Encryption-context key naming the keyspace a table key belongs to (never the table name,
/// which can be reused after deletion).
pub const CONTEXT_KEYSPACE: &str = "sealdb:keyspace";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub arn: String,
    pub state: KeyState,
}

pub struct GeneratedKey {
    pub plaintext: Key32,
    pub blob: Vec<u8>,
    pub key_arn: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    AccessDenied(String),
    /// Throttling, timeouts, network: a KMS outage, not a revocation.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl KmsError {
    /// True when the key itself is unusable (as opposed to the KMS being unreachable).
    pub fn is_revocation(&self) -> bool {
        matches!(
            self,
            KmsError::Disabled(_)
                | KmsError::InvalidState(_)
                | KmsError::NotFound(_)
                | KmsError::AccessDenied(_)
        )
    }
}

pub trait KmsProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn describe_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<KeyInfo, KmsError>>;
    /// A fresh 256-bit data key, returned in plaintext and wrapped under `key_id`.
    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<GeneratedKey, KmsError>>;
    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<Key32, KmsError>>;
}

pub fn keyspace_context(keyspace_hex: &str) -> EncryptionContext {
    let mut c = EncryptionContext::new();
    c.insert(CONTEXT_KEYSPACE.to_string(), keyspace_hex.to_string());
    c
}
