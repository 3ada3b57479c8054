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

/// The per-table cache slot: the plaintext children and when they were fetched.
pub struct KeySlot {
    cached: RwLock<Option<(Arc<TableKeys>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Default for KeySlot {
    fn default() -> Self {
        KeySlot {
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

impl KeySlot {
    pub fn with_keys(keys: TableKeys) -> KeySlot {
        KeySlot {
            cached: RwLock::new(Some((Arc::new(keys), Instant::now()))),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self, ttl: Duration) -> Option<Arc<TableKeys>> {
        let guard = self.cached.read().ok()?;
        match guard.as_ref() {
            Some((keys, at)) if at.elapsed() < ttl => Some(keys.clone()),
            _ => None,
        }
    }

    /// The cached keys when fresh; otherwise one KMS round trip (concurrent callers share it).
    pub async fn get(
        &self,
        kms: &dyn KmsProvider,
        wrapped: &WrappedTableKeys,
        keyspace: &Keyspace,
        ttl: Duration,
    ) -> Result<Arc<TableKeys>, KeyringError> {
        if let Some(k) = self.fresh(ttl) {
            return Ok(k);
        }
        let _one = self.refresh.lock().await;
        if let Some(k) = self.fresh(ttl) {
            return Ok(k);
        }
        let keys = Arc::new(unwrap_table_keys(kms, wrapped, keyspace).await?);
        if let Ok(mut guard) = self.cached.write() {
            *guard = Some((keys.clone(), Instant::now()));
        }
        Ok(keys)
    }

    /// Drops the cached plaintext (revocation, table deletion).
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
