//! `KeyStore`: the one KMS implementation, used in-process by sealdb and behind the HTTP server.
//!
//! All state sits behind one mutex. Every change is made on a copy, persisted (when the store
//! is persistent), and only then swapped in, so a failed write leaves memory and disk agreeing.
//! Time-driven events (deletion, automatic rotation) are applied at the start of each call,
//! against the mock clock (system time plus a persisted offset).

mod crypto;
mod keys;
mod rotation;
mod seed;
pub(crate) mod state;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::rand::SystemRandom;

use crate::error::KmsError;
use crate::fault::{FaultAction, FaultRule, Faults};
use crate::material::parse_uuid;
use crate::persist::{load_or_create_master_key, Persistence};
use crate::types::{KeyMetadata, KeyState};
use state::{KeyRecord, State};

pub use seed::{SeedFile, SeedKey};

/// A thread-safe KMS key store. Cheap to share behind an `Arc`.
pub struct KeyStore {
    account: String,
    region: String,
    state: Mutex<State>,
    persistence: Option<Persistence>,
    faults: Faults,
    /// When true (the default), the public methods apply injected faults themselves
    /// (latency as a thread sleep, a timeout as DependencyTimeoutException). The server
    /// turns this off and applies faults asynchronously before calling in.
    inline_faults: AtomicBool,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("account", &self.account)
            .field("region", &self.region)
            .field("persistent", &self.persistence.is_some())
            .finish_non_exhaustive()
    }
}

/// How a caller may name a key in one operation (AWS differs per operation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// Key id or key ARN only (lifecycle and rotation operations, alias targets).
    KeyOnly,
    /// Also alias name or alias ARN (DescribeKey and cryptographic operations).
    WithAlias,
}

pub(crate) fn ms_to_secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl KeyStore {
    pub fn in_memory(account: &str, region: &str) -> KeyStore {
        KeyStore::build(account, region, State::default(), None)
    }

    /// Opens or creates a persistent store. The state file is written atomically (temp +
    /// rename, fsync, mode 0600) and sealed under the 32-byte key in `master_key_file`
    /// (created 0600 with random bytes when missing).
    pub fn open(
        state_file: &Path,
        master_key_file: &Path,
        account: &str,
        region: &str,
    ) -> Result<KeyStore, KmsError> {
        let rng = SystemRandom::new();
        let master = load_or_create_master_key(master_key_file, &rng)?;
        let persistence = Persistence::new(state_file, master);
        let state = match persistence.load()? {
            Some(s) => s,
            None => {
                let s = State::default();
                persistence.save(&s, &rng)?;
                s
            }
        };
        Ok(KeyStore::build(account, region, state, Some(persistence)))
    }

    fn build(
        account: &str,
        region: &str,
        state: State,
        persistence: Option<Persistence>,
    ) -> KeyStore {
        KeyStore {
            account: account.to_string(),
            region: region.to_string(),
            state: Mutex::new(state),
            persistence,
            faults: Faults::default(),
            inline_faults: AtomicBool::new(true),
            rng: SystemRandom::new(),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn key_arn(&self, key_id: &str) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region, self.account, key_id
        )
    }

    pub fn alias_arn(&self, alias_name: &str) -> String {
        format!(
            "arn:aws:kms:{}:{}:{}",
            self.region, self.account, alias_name
        )
    }

    // ---- mock clock -------------------------------------------------------------------

    /// The mock clock, in epoch seconds.
    pub fn now_epoch_secs(&self) -> f64 {
        ms_to_secs(now_ms(&self.lock()))
    }

    /// Moves the mock clock forward; due deletions and automatic rotations happen at once.
    pub fn advance_clock(&self, secs: u64) -> Result<(), KmsError> {
        let ms = i64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| KmsError::Validation("advance_secs is too large".into()))?;
        let mut guard = self.lock();
        let mut next = guard.clone();
        next.clock_offset_ms = next
            .clock_offset_ms
            .checked_add(ms)
            .ok_or_else(|| KmsError::Validation("clock offset overflows".into()))?;
        let now = now_ms(&next);
        next.advance(&self.rng, now)?;
        self.persist(&next)?;
        *guard = next;
        Ok(())
    }

    // ---- fault injection --------------------------------------------------------------

    pub fn add_fault(&self, rule: FaultRule) -> Result<(), KmsError> {
        self.faults.add(rule)
    }

    pub fn clear_faults(&self) {
        self.faults.clear()
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.faults.list()
    }

    /// Consumes the fault (if any) for `operation`, for callers that apply it themselves.
    pub fn take_fault(&self, operation: &str) -> Option<FaultAction> {
        self.faults.take(operation)
    }

    /// See the `inline_faults` field: the server sets this to false.
    pub fn set_inline_faults(&self, inline: bool) {
        self.inline_faults.store(inline, Ordering::SeqCst)
    }

    fn gate(&self, operation: &str) -> Result<(), KmsError> {
        if !self.inline_faults.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(action) = self.faults.take(operation) else {
            return Ok(());
        };
        if !action.latency.is_zero() {
            std::thread::sleep(action.latency);
        }
        if action.timeout {
            return Err(KmsError::DependencyTimeout(format!(
                "Injected timeout for {operation}"
            )));
        }
        match action.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    // ---- state access -----------------------------------------------------------------

    fn lock(&self) -> MutexGuard<'_, State> {
        // Changes are made on a copy and swapped in whole, so a poisoned lock still guards
        // a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, state: &State) -> Result<(), KmsError> {
        match &self.persistence {
            Some(p) => p.save(state, &self.rng),
            None => Ok(()),
        }
    }

    fn locked_and_current(&self) -> Result<(MutexGuard<'_, State>, i64), KmsError> {
        let mut guard = self.lock();
        let now = now_ms(&guard);
        if guard.has_due_events(now) {
            let mut next = guard.clone();
            next.advance(&self.rng, now)?;
            self.persist(&next)?;
            *guard = next;
        }
        Ok((guard, now))
    }

    /// Runs a read-only operation.
    pub(crate) fn read<R>(
        &self,
        op: &str,
        f: impl FnOnce(&State, i64) -> Result<R, KmsError>,
    ) -> Result<R, KmsError> {
        self.gate(op)?;
        let (guard, now) = self.locked_and_current()?;
        f(&guard, now)
    }

    /// Runs a state-changing operation: on a copy, persisted before it becomes visible.
    pub(crate) fn mutate<R>(
        &self,
        op: &str,
        f: impl FnOnce(&mut State, i64) -> Result<R, KmsError>,
    ) -> Result<R, KmsError> {
        self.gate(op)?;
        let (mut guard, now) = self.locked_and_current()?;
        let mut next = guard.clone();
        let out = f(&mut next, now)?;
        self.persist(&next)?;
        *guard = next;
        Ok(out)
    }

    // ---- naming -----------------------------------------------------------------------

    fn key_not_found(&self, id: &str) -> KmsError {
        KmsError::NotFound(format!("Key '{}' does not exist", self.key_arn(id)))
    }

    /// Resolves a key id, key ARN, alias name or alias ARN to a key id.
    pub(crate) fn resolve(
        &self,
        state: &State,
        key_ref: &str,
        naming: Naming,
    ) -> Result<String, KmsError> {
        let invalid = || KmsError::NotFound(format!("Invalid keyId '{key_ref}'"));
        if key_ref.is_empty() {
            return Err(KmsError::Validation(
                "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
        let resource = if let Some(rest) = key_ref.strip_prefix("arn:") {
            // arn:PARTITION:kms:REGION:ACCOUNT:RESOURCE
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts.as_slice() else {
                return Err(KmsError::InvalidArn(format!("Invalid arn {key_ref}")));
            };
            if !partition.starts_with("aws") || *service != "kms" || resource.is_empty() {
                return Err(KmsError::InvalidArn(format!("Invalid arn {key_ref}")));
            }
            if *region != self.region || *account != self.account {
                return Err(if resource.starts_with("alias/") {
                    KmsError::NotFound(format!("Alias {key_ref} is not found."))
                } else {
                    KmsError::NotFound(format!("Key '{key_ref}' does not exist"))
                });
            }
            if let Some(id) = resource.strip_prefix("key/") {
                return self.lookup_id(state, id, invalid);
            }
            if !resource.starts_with("alias/") {
                return Err(KmsError::InvalidArn(format!("Invalid arn {key_ref}")));
            }
            *resource
        } else {
            key_ref
        };
        if resource.starts_with("alias/") {
            if naming == Naming::KeyOnly {
                return Err(invalid());
            }
            return match state.aliases.get(resource) {
                Some(a) => Ok(a.target.clone()),
                None => Err(KmsError::NotFound(format!(
                    "Alias {} is not found.",
                    self.alias_arn(resource)
                ))),
            };
        }
        self.lookup_id(state, resource, invalid)
    }

    fn lookup_id(
        &self,
        state: &State,
        id: &str,
        invalid: impl Fn() -> KmsError,
    ) -> Result<String, KmsError> {
        let Some(bytes) = parse_uuid(id) else {
            return Err(invalid());
        };
        let canonical = crate::material::format_uuid(&bytes);
        if state.keys.contains_key(&canonical) {
            Ok(canonical)
        } else {
            Err(self.key_not_found(&canonical))
        }
    }

    pub(crate) fn key<'a>(&self, state: &'a State, id: &str) -> Result<&'a KeyRecord, KmsError> {
        state.keys.get(id).ok_or_else(|| self.key_not_found(id))
    }

    pub(crate) fn key_mut<'a>(
        &self,
        state: &'a mut State,
        id: &str,
    ) -> Result<&'a mut KeyRecord, KmsError> {
        let err = self.key_not_found(id);
        state.keys.get_mut(id).ok_or(err)
    }

    // ---- state rules ------------------------------------------------------------------

    /// Cryptographic operations need an Enabled key.
    pub(crate) fn require_enabled(&self, key: &KeyRecord) -> Result<(), KmsError> {
        match key.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::Disabled(format!(
                "{} is disabled.",
                self.key_arn(&key.id)
            ))),
            KeyState::PendingDeletion => Err(self.pending_deletion(key)),
        }
    }

    pub(crate) fn require_not_pending(&self, key: &KeyRecord) -> Result<(), KmsError> {
        match key.state {
            KeyState::PendingDeletion => Err(self.pending_deletion(key)),
            _ => Ok(()),
        }
    }

    fn pending_deletion(&self, key: &KeyRecord) -> KmsError {
        KmsError::InvalidState(format!("{} is pending deletion.", self.key_arn(&key.id)))
    }

    pub(crate) fn metadata(&self, key: &KeyRecord) -> Result<KeyMetadata, KmsError> {
        let (_, current) = key.current()?;
        Ok(KeyMetadata {
            aws_account_id: self.account.clone(),
            key_id: key.id.clone(),
            arn: self.key_arn(&key.id),
            creation_date: ms_to_secs(key.created_ms),
            enabled: key.state == KeyState::Enabled,
            description: key.description.clone(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_state: key.state,
            deletion_date: key.deletion_ms.map(ms_to_secs),
            pending_deletion_window_in_days: key.pending_window_days,
            origin: "AWS_KMS".into(),
            key_manager: "CUSTOMER".into(),
            customer_master_key_spec: "SYMMETRIC_DEFAULT".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
            multi_region: false,
            current_key_material_id: current.id.clone(),
        })
    }
}

fn now_ms(state: &State) -> i64 {
    let sys = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    sys.saturating_add(state.clock_offset_ms)
}

#[cfg(test)]
mod tests;
