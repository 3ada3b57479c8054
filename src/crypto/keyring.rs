//! Table keys: how they are created and wrapped, and the per-table cache of their plaintext.
//!
//! ```text
//! KMS key ── TK (GenerateDataKey, context {sealdb:keyspace: <id>}), stored only wrapped
//!            ├─ KTOK   wrapped by TK  (HMAC storage tokens; stable across rotations)
//!            └─ DEK_g  wrapped by TK  (one per data-key generation; one active for writes)
//! ```
//! The cache holds only KTOK and the DEKs; TK is zeroized as soon as its children are unwrapped.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The re-encryption job of this table (cursor and counters), persisted with the keys so
    /// that it resumes after a crash; `None` when no job was ever started.
    #[serde(default)]
    pub reencrypt: Option<ReencryptRecord>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct WrappedGeneration {
    pub generation: u32,
    #[serde(with = "crate::util::b64")]
    pub wrapped: Vec<u8>,
    pub created: f64,
    /// Approximate number of encryptions under this generation (counted in memory, persisted
    /// periodically; a crash loses at most one period's count).
    #[serde(default)]
    pub encryptions: u64,
}

/// Persisted state of a table's re-encryption job. The cursor is the last storage key
/// processed in `space` (0 = items, 1 = sort-index pages); rows after it are still to do.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ReencryptRecord {
    /// The generation rows are re-sealed to (the active one when the job started).
    pub target_generation: u32,
    pub space: u8,
    #[serde(with = "crate::util::b64")]
    pub cursor: Vec<u8>,
    pub scanned: u64,
    pub resealed: u64,
    /// Rows a concurrent write replaced between our read and our conditional write (they are
    /// re-sealed by that write under the active generation).
    pub changed: u64,
    pub failed: u64,
    pub started: f64,
    pub finished: Option<f64>,
}

impl WrappedTableKeys {
    pub fn generation(&self, g: u32) -> Option<&WrappedGeneration> {
        self.generations.iter().find(|w| w.generation == g)
    }

    /// A digest of everything that decides the plaintext keys (TK blob, generations, active):
    /// the key slot compares it to notice a caller holding a definition older than its own.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&(self.table_key_blob.len() as u64).to_be_bytes());
        ctx.update(&self.table_key_blob);
        ctx.update(&self.active_generation.to_be_bytes());
        for g in &self.generations {
            ctx.update(&g.generation.to_be_bytes());
            ctx.update(&(g.wrapped.len() as u64).to_be_bytes());
            ctx.update(&g.wrapped);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// Plaintext children of a table key. Zeroized when the last reference drops.
pub struct TableKeys {
    pub keyspace: Keyspace,
    pub token: Key32,
    deks: Vec<(u32, Key32)>,
    active: u32,
    /// Encryptions under the active generation, shared with the table's key slot (rotation
    /// policy by number of encryptions).
    encryptions: Arc<AtomicU64>,
}

impl TableKeys {
    pub fn dek(&self, generation: u32) -> Option<&Key32> {
        self.deks
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, k)| k)
    }

    /// The generation used for new writes. Every call is counted as one encryption: it is
    /// only called to seal.
    pub fn active(&self) -> Option<(u32, &Key32)> {
        self.encryptions.fetch_add(1, Ordering::Relaxed);
        self.dek(self.active).map(|k| (self.active, k))
    }

    pub fn active_generation(&self) -> u32 {
        self.active
    }

    pub fn generations(&self) -> Vec<u32> {
        self.deks.iter().map(|(g, _)| *g).collect()
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
            encryptions: 0,
        }],
        active_generation: 1,
        reencrypt: None,
    };
    Ok((
        wrapped,
        TableKeys {
            keyspace: *keyspace,
            token,
            deks: vec![(1, dek)],
            active: 1,
            encryptions: Arc::default(),
        },
    ))
}

/// One KMS Decrypt of TK, then local unwrapping of its children.
pub async fn unwrap_table_keys(
    kms: &dyn KmsProvider,
    wrapped: &WrappedTableKeys,
    keyspace: &Keyspace,
) -> Result<TableKeys, KeyringError> {
    let tk = decrypt_table_key(kms, wrapped, keyspace).await?;
    unwrap_children(&tk, wrapped, keyspace)
}

/// TK in plaintext (one KMS Decrypt). Key administration only; callers drop it promptly.
pub async fn decrypt_table_key(
    kms: &dyn KmsProvider,
    wrapped: &WrappedTableKeys,
    keyspace: &Keyspace,
) -> Result<Key32, KeyringError> {
    let ctx = keyspace_context(&keyspace_hex(keyspace));
    Ok(kms
        .decrypt(&wrapped.kms_key_arn, &wrapped.table_key_blob, &ctx)
        .await?)
}

/// Unwraps KTOK and every DEK generation under a plaintext TK (no KMS call).
pub fn unwrap_children(
    tk: &Key32,
    wrapped: &WrappedTableKeys,
    keyspace: &Keyspace,
) -> Result<TableKeys, KeyringError> {
    let token = unwrap_key(tk, &child_aad(keyspace, "tok", 0), &wrapped.token_key)?;
    let mut deks = Vec::with_capacity(wrapped.generations.len());
    for g in &wrapped.generations {
        deks.push((
            g.generation,
            unwrap_key(tk, &child_aad(keyspace, "dek", g.generation), &g.wrapped)?,
        ));
    }
    Ok(TableKeys {
        keyspace: *keyspace,
        token,
        deks,
        active: wrapped.active_generation,
        encryptions: Arc::default(),
    })
}

/// The same children (KTOK, every DEK of `wrapped`) wrapped under a fresh TK from
/// `new_kms_key`: what a KMS key switch persists, with the new TK in plaintext. No item
/// changes, since the children do not; the new TK's context binds the same keyspace.
pub async fn rewrap_under_new_kms_key(
    kms: &dyn KmsProvider,
    new_kms_key: &str,
    children: &TableKeys,
    wrapped: &WrappedTableKeys,
    keyspace: &Keyspace,
) -> Result<(WrappedTableKeys, Key32), KeyringError> {
    let ctx = keyspace_context(&keyspace_hex(keyspace));
    let tk = kms.generate_data_key(new_kms_key, &ctx).await?;
    let mut generations = Vec::with_capacity(wrapped.generations.len());
    for g in &wrapped.generations {
        let dek = children
            .dek(g.generation)
            .ok_or(CryptoError::UnknownGeneration(g.generation))?;
        generations.push(WrappedGeneration {
            wrapped: wrap_key(
                &tk.plaintext,
                &child_aad(keyspace, "dek", g.generation),
                dek,
            )?,
            ..g.clone()
        });
    }
    let out = WrappedTableKeys {
        kms_key_arn: tk.key_arn.clone(),
        table_key_blob: tk.blob.clone(),
        token_key: wrap_key(
            &tk.plaintext,
            &child_aad(keyspace, "tok", 0),
            &children.token,
        )?,
        generations,
        active_generation: wrapped.active_generation,
        reencrypt: wrapped.reencrypt.clone(),
    };
    Ok((out, tk.plaintext))
}

/// Adds a data-key generation (a fresh DEK wrapped by TK) numbered one past the highest ever
/// used, active for writes when `activate`. Returns its number.
pub fn add_generation(
    tk: &Key32,
    wrapped: &mut WrappedTableKeys,
    keyspace: &Keyspace,
    activate: bool,
) -> Result<u32, KeyringError> {
    let next = wrapped
        .generations
        .iter()
        .map(|g| g.generation)
        .chain([wrapped.active_generation])
        .max()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or(CryptoError::Integrity)?;
    let dek = Key32::random()?;
    wrapped.generations.push(WrappedGeneration {
        generation: next,
        wrapped: wrap_key(tk, &child_aad(keyspace, "dek", next), &dek)?,
        created: crate::util::epoch_seconds_f64(),
        encryptions: 0,
    });
    if activate {
        wrapped.active_generation = next;
    }
    Ok(next)
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
    /// Encryptions since the count was last persisted (see [`KeySlot::take_encryptions`]).
    encryptions: Arc<AtomicU64>,
    /// Fingerprint of the wrapped keys last installed by key administration. A reload with a
    /// different one comes from a caller holding an older table definition (a refresh that
    /// raced a KMS key switch or a rotation): it must not replace newer keys, nor ask the KMS
    /// about a key the table no longer uses.
    installed: RwLock<Option<[u8; 32]>>,
    /// Serializes key administration (switch, rotate, retire) on this table.
    pub admin: tokio::sync::Mutex<()>,
}

impl Default for KeySlot {
    fn default() -> Self {
        KeySlot {
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            inaccessible_since: RwLock::new(None),
            encryptions: Arc::default(),
            installed: RwLock::new(None),
            admin: tokio::sync::Mutex::new(()),
        }
    }
}

impl KeySlot {
    pub fn with_keys(keys: TableKeys) -> KeySlot {
        let slot = KeySlot::default();
        slot.store(keys);
        slot
    }

    fn store(&self, mut keys: TableKeys) -> Arc<TableKeys> {
        keys.encryptions = self.encryptions.clone();
        let keys = Arc::new(keys);
        if let Ok(mut guard) = self.cached.write() {
            *guard = Some((keys.clone(), Instant::now()));
        }
        keys
    }

    /// Installs keys derived by key administration for the definition `wrapped` (already
    /// persisted), so requests use them at once and later refreshes by older definitions are
    /// ignored.
    pub async fn install(&self, wrapped: &WrappedTableKeys, keys: TableKeys) {
        let _one = self.refresh.lock().await;
        if let Ok(mut g) = self.installed.write() {
            *g = Some(wrapped.fingerprint());
        }
        self.store(keys);
        if let Ok(mut g) = self.inaccessible_since.write() {
            *g = None;
        }
    }

    /// Encryptions counted since the last call (approximate: relaxed atomics; every call of
    /// [`TableKeys::active`] counts).
    pub fn take_encryptions(&self) -> u64 {
        self.encryptions.swap(0, Ordering::Relaxed)
    }

    /// Encryptions counted since the last [`KeySlot::take_encryptions`], without taking them.
    pub fn pending_encryptions(&self) -> u64 {
        self.encryptions.load(Ordering::Relaxed)
    }

    /// Gives back a count that could not be persisted.
    pub fn return_encryptions(&self, n: u64) {
        self.encryptions.fetch_add(n, Ordering::Relaxed);
    }

    /// The cached keys whatever their age (key administration, status).
    pub fn cached(&self) -> Option<Arc<TableKeys>> {
        self.cached_within(Duration::MAX)
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
        let installed = self.installed.read().ok().and_then(|g| *g);
        if installed.is_some_and(|f| f != wrapped.fingerprint()) {
            if let Some(k) = self.cached() {
                return Ok(k);
            }
            // No cache to fall back on: serve this caller, but keep its keys out of the slot.
            return unwrap_table_keys(kms, wrapped, keyspace)
                .await
                .map(Arc::new);
        }
        match unwrap_table_keys(kms, wrapped, keyspace).await {
            Ok(keys) => {
                let keys = self.store(keys);
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
