//! Table keys: how they are created and wrapped, and the per-table cache of their plaintext.
//!
//! ```text
//! KMS key ── TK (GenerateDataKey, context {sealdb:keyspace: <id>}), stored only wrapped
//!            ├─ KTOK   wrapped by TK  (HMAC storage tokens; stable across rotations)
//!            └─ DEK_g  wrapped by TK  (one per data-key generation; one active for writes)
//! ```
//! The cache holds only KTOK and the DEKs; TK is zeroized as soon as its children are unwrapped.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::envelope::{unwrap_key, wrap_key};
use super::{CryptoError, Key32};
use crate::kms::{keyspace_context, KmsError, KmsProvider};

pub const KEYSPACE_LEN: usize = 16;
pub type Keyspace = [u8; KEYSPACE_LEN];

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Kms(#[from] KmsError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The persisted (wrapped) form of a table's keys; lives inside the sealed table record.
#[derive(Clone, Serialize, Deserialize)]
pub struct WrappedTableKeys {
    pub kms_key_arn: String,
    #[serde(with = "crate::util::b64")]
    pub table_key_blob: Vec<u8>,
    #[serde(with = "crate::util::b64")]
    pub token_key: Vec<u8>,
    pub generations: Vec<WrappedGeneration>,
    pub active_generation: u32,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct WrappedGeneration {
    pub generation: u32,
    #[serde(with = "crate::util::b64")]
    pub wrapped: Vec<u8>,
    pub created: f64,
}

/// Plaintext children of a table key. Zeroized when the last reference drops.
pub struct TableKeys {
    pub keyspace: Keyspace,
    pub token: Key32,
    deks: Vec<(u32, Key32)>,
    active: u32,
}

impl TableKeys {
    pub fn dek(&self, generation: u32) -> Option<&Key32> {
        self.deks
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, k)| k)
    }

    /// The generation used for new writes.
    pub fn active(&self) -> Option<(u32, &Key32)> {
        self.dek(self.active).map(|k| (self.active, k))
    }
}

fn child_aad(keyspace: &Keyspace, what: &str, generation: u32) -> Vec<u8> {
    let mut aad = b"sealdb/child-key/v1|".to_vec();
    aad.extend_from_slice(keyspace);
    aad.push(b'|');
    aad.extend_from_slice(what.as_bytes());
    aad.extend_from_slice(&generation.to_be_bytes());
    aad
}

pub fn keyspace_hex(keyspace: &Keyspace) -> String {
    hex::encode(keyspace)
}

/// Creates TK under `kms_key`, and KTOK + DEK_1 under TK.
pub async fn create_table_keys(
    kms: &dyn KmsProvider,
    kms_key: &str,
    keyspace: &Keyspace,
) -> Result<(WrappedTableKeys, TableKeys), KeyringError> {
    let ctx = keyspace_context(&keyspace_hex(keyspace));
    let tk = kms.generate_data_key(kms_key, &ctx).await?;
    let token = Key32::random()?;
    let dek = Key32::random()?;
    let wrapped = WrappedTableKeys {
        kms_key_arn: tk.key_arn.clone(),
        table_key_blob: tk.blob.clone(),
        token_key: wrap_key(&tk.plaintext, &child_aad(keyspace, "tok", 0), &token)?,
        generations: vec![WrappedGeneration {
            generation: 1,
            wrapped: wrap_key(&tk.plaintext, &child_aad(keyspace, "dek", 1), &dek)?,
            created: crate::util::epoch_seconds_f64(),
        }],
        active_generation: 1,
    };
    Ok((
        wrapped,
        TableKeys {
            keyspace: *keyspace,
            token,
            deks: vec![(1, dek)],
            active: 1,
        },
    ))
}

/// One KMS Decrypt of TK, then local unwrapping of its children.
pub async fn unwrap_table_keys(
    kms: &dyn KmsProvider,
    wrapped: &WrappedTableKeys,
    keyspace: &Keyspace,
) -> Result<TableKeys, KeyringError> {
    let ctx = keyspace_context(&keyspace_hex(keyspace));
    let tk = kms
        .decrypt(&wrapped.kms_key_arn, &wrapped.table_key_blob, &ctx)
        .await?;
    let token = unwrap_key(&tk, &child_aad(keyspace, "tok", 0), &wrapped.token_key)?;
    let mut deks = Vec::with_capacity(wrapped.generations.len());
    for g in &wrapped.generations {
        deks.push((
            g.generation,
            unwrap_key(&tk, &child_aad(keyspace, "dek", g.generation), &g.wrapped)?,
        ));
    }
    Ok(TableKeys {
        keyspace: *keyspace,
        token,
        deks,
        active: wrapped.active_generation,
    })
}

/// How long cached plaintext keys serve.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// Normal lifetime; the background refresher renews keys at half of it, so requests do
    /// not wait on the KMS.
    pub ttl: Duration,
    /// During a KMS outage (not a revocation) cached keys keep serving up to this age.
    pub max_stale: Duration,
}

/// The per-table cache slot: the plaintext children, when they were fetched, and whether the
/// table's KMS key was found revoked.
pub struct KeySlot {
    cached: RwLock<Option<(Arc<TableKeys>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
    /// Epoch seconds since which the KMS key has been unusable (disabled, pending deletion,
    /// missing, access denied); `None` while accessible.
    inaccessible_since: RwLock<Option<f64>>,
}

impl Default for KeySlot {
    fn default() -> Self {
        KeySlot {
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            inaccessible_since: RwLock::new(None),
        }
    }
}

impl KeySlot {
    pub fn with_keys(keys: TableKeys) -> KeySlot {
        let slot = KeySlot::default();
        slot.store(Arc::new(keys));
        slot
    }

    fn store(&self, keys: Arc<TableKeys>) {
        if let Ok(mut guard) = self.cached.write() {
            *guard = Some((keys, Instant::now()));
        }
    }

    fn cached_within(&self, age: Duration) -> Option<Arc<TableKeys>> {
        let guard = self.cached.read().ok()?;
        match guard.as_ref() {
            Some((keys, at)) if at.elapsed() < age => Some(keys.clone()),
            _ => None,
        }
    }

    /// Age of the cached keys, if any.
    pub fn age(&self) -> Option<Duration> {
        let guard = self.cached.read().ok()?;
        guard.as_ref().map(|(_, at)| at.elapsed())
    }

    pub fn inaccessible_since(&self) -> Option<f64> {
        self.inaccessible_since.read().ok().and_then(|g| *g)
    }

    /// The keys for a request: from the cache while fresh, else one KMS round trip
    /// (concurrent callers share it). A revoked key fails fast without calling the KMS; the
    /// background refresher notices when it comes back.
    pub async fn get(
        &self,
        kms: &dyn KmsProvider,
        wrapped: &WrappedTableKeys,
        keyspace: &Keyspace,
        policy: CachePolicy,
    ) -> Result<Arc<TableKeys>, KeyringError> {
        if let Some(k) = self.cached_within(policy.ttl) {
            return Ok(k);
        }
        if self.inaccessible_since().is_some() {
            return Err(KeyringError::Kms(KmsError::Disabled(
                "the table's KMS key is inaccessible".into(),
            )));
        }
        let _one = self.refresh.lock().await;
        if let Some(k) = self.cached_within(policy.ttl) {
            return Ok(k);
        }
        match self.reload_locked(kms, wrapped, keyspace).await {
            Err(KeyringError::Kms(e)) if !e.is_revocation() => self
                .cached_within(policy.max_stale)
                .ok_or(KeyringError::Kms(e)),
            other => other,
        }
    }

    /// Re-reads the table key from the KMS (background refresh, and `get` on a stale cache).
    /// A revocation zeroizes the cached keys and marks the table inaccessible; an outage
    /// leaves the cache as it is.
    pub async fn reload(
        &self,
        kms: &dyn KmsProvider,
        wrapped: &WrappedTableKeys,
        keyspace: &Keyspace,
    ) -> Result<Arc<TableKeys>, KeyringError> {
        let _one = self.refresh.lock().await;
        self.reload_locked(kms, wrapped, keyspace).await
    }

    async fn reload_locked(
        &self,
        kms: &dyn KmsProvider,
        wrapped: &WrappedTableKeys,
        keyspace: &Keyspace,
    ) -> Result<Arc<TableKeys>, KeyringError> {
        match unwrap_table_keys(kms, wrapped, keyspace).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.store(keys.clone());
                if let Ok(mut g) = self.inaccessible_since.write() {
                    *g = None;
                }
                Ok(keys)
            }
            Err(KeyringError::Kms(e)) if e.is_revocation() => {
                self.forget();
                if let Ok(mut g) = self.inaccessible_since.write() {
                    g.get_or_insert_with(crate::util::epoch_seconds_f64);
                }
                Err(KeyringError::Kms(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Drops the cached plaintext (revocation, table deletion); zeroized once the last
    /// in-flight request holding it finishes.
    pub fn forget(&self) {
        if let Ok(mut guard) = self.cached.write() {
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kms::local::LocalKms;

    #[tokio::test]
    async fn keys_unwrap_to_the_same_children_and_bind_the_keyspace() {
        let kms = LocalKms::in_memory("000000000000", "us-east-1").unwrap();
        let ks = [3u8; 16];
        let (wrapped, keys) = create_table_keys(&kms, crate::kms::local::DEFAULT_ALIAS, &ks)
            .await
            .unwrap();
        let again = unwrap_table_keys(&kms, &wrapped, &ks).await.unwrap();
        assert_eq!(again.token.expose(), keys.token.expose());
        assert_eq!(
            again.active().unwrap().1.expose(),
            keys.active().unwrap().1.expose()
        );
        // The table key is bound to its keyspace by the encryption context.
        assert!(unwrap_table_keys(&kms, &wrapped, &[4u8; 16]).await.is_err());
    }
}
