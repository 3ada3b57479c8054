//! Key rotation: automatic (EnableKeyRotation / DisableKeyRotation / GetKeyRotationStatus)
//! and on demand (RotateKeyOnDemand, ListKeyRotations). Rotation adds fresh random material;
//! new encryptions use the newest; blobs of older material still decrypt.

use super::keys::paginate;
use super::state::MS_PER_DAY;
use super::{ms_to_secs, KeyStore, Naming};
use crate::error::KmsError;
use crate::types::{
    IncludeKeyMaterial, KeyState, Page, RotationEntry, RotationStatus, RotationType,
};

/// RotationPeriodInDays: 90..2560, default 365 (KMS API reference, EnableKeyRotation).
const MIN_ROTATION_DAYS: u32 = 90;
const MAX_ROTATION_DAYS: u32 = 2560;
const DEFAULT_ROTATION_DAYS: u32 = 365;
/// On-demand rotations per key: at most 25 (KMS developer guide, "Perform on-demand key rotation").
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
/// ListKeyRotations Limit default 100 (KMS API reference).
const DEFAULT_LIST_ROTATIONS_LIMIT: u32 = 100;

impl KeyStore {
    pub fn enable_key_rotation(
        &self,
        key_id: &str,
        rotation_period_in_days: Option<u32>,
    ) -> Result<(), KmsError> {
        let days = rotation_period_in_days.unwrap_or(DEFAULT_ROTATION_DAYS);
        if !(MIN_ROTATION_DAYS..=MAX_ROTATION_DAYS).contains(&days) {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between {MIN_ROTATION_DAYS} and {MAX_ROTATION_DAYS}"
            )));
        }
        self.mutate("EnableKeyRotation", |state, now| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            self.require_enabled(self.key(state, &id)?)?;
            let key = self.key_mut(state, &id)?;
            key.rotation_period_days = Some(days);
            key.next_rotation_ms =
                Some(now.saturating_add(i64::from(days).saturating_mul(MS_PER_DAY)));
            Ok(())
        })
    }

    pub fn disable_key_rotation(&self, key_id: &str) -> Result<(), KmsError> {
        self.mutate("DisableKeyRotation", |state, _| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            self.require_enabled(self.key(state, &id)?)?;
            let key = self.key_mut(state, &id)?;
            key.rotation_period_days = None;
            key.next_rotation_ms = None;
            Ok(())
        })
    }

    /// Works in every key state; a key pending deletion reports rotation as disabled (AWS),
    /// and gets its setting back when the deletion is cancelled.
    pub fn get_key_rotation_status(&self, key_id: &str) -> Result<RotationStatus, KmsError> {
        self.read("GetKeyRotationStatus", |state, _| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            let key = self.key(state, &id)?;
            let enabled =
                key.rotation_period_days.is_some() && key.state != KeyState::PendingDeletion;
            Ok(RotationStatus {
                key_rotation_enabled: enabled,
                key_id: self.key_arn(&id),
                rotation_period_in_days: if enabled {
                    key.rotation_period_days
                } else {
                    None
                },
                next_rotation_date: if enabled {
                    key.next_rotation_ms.map(ms_to_secs)
                } else {
                    None
                },
                on_demand_rotation_start_date: None,
            })
        })
    }

    /// RotateKeyOnDemand: completes at once (AWS runs it asynchronously). Does not move the
    /// automatic schedule. Returns the key ARN.
    pub fn rotate_key_on_demand(&self, key_id: &str) -> Result<String, KmsError> {
        self.mutate("RotateKeyOnDemand", |state, now| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            self.require_enabled(self.key(state, &id)?)?;
            let arn = self.key_arn(&id);
            let key = self.key_mut(state, &id)?;
            if key.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
                return Err(KmsError::LimitExceeded(format!(
                    "{arn} has reached the maximum of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations."
                )));
            }
            key.add_material(&self.rng, now, Some(RotationType::OnDemand))?;
            key.on_demand_rotations = key.on_demand_rotations.saturating_add(1);
            Ok(arn)
        })
    }

    /// ListKeyRotations: completed rotations, oldest first (with `All`, the original
    /// material too).
    pub fn list_key_rotations(
        &self,
        key_id: &str,
        include: IncludeKeyMaterial,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<RotationEntry>, KmsError> {
        self.read("ListKeyRotations", |state, _| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            let key = self.key(state, &id)?;
            let last = key.materials.len().saturating_sub(1);
            let items = key
                .materials
                .iter()
                .enumerate()
                .filter(|(i, _)| include == IncludeKeyMaterial::All || *i > 0)
                .map(|(i, m)| {
                    (
                        format!("{i:010}"),
                        RotationEntry {
                            key_id: id.clone(),
                            key_material_id: m.id.clone(),
                            key_material_state: if i == last { "CURRENT" } else { "NON_CURRENT" }
                                .into(),
                            rotation_date: m.rotation_type.map(|_| ms_to_secs(m.created_ms)),
                            rotation_type: m.rotation_type,
                        },
                    )
                })
                .collect();
            paginate(items, limit, DEFAULT_LIST_ROTATIONS_LIMIT, marker)
        })
    }

    /// Number of key material versions of a key (1 + rotations); for tests and status tools.
    pub fn material_versions(&self, key_id: &str) -> Result<usize, KmsError> {
        // Not an AWS operation: no fault injection applies.
        let (state, _) = self.locked_and_current()?;
        let id = self.resolve(&state, key_id, Naming::WithAlias)?;
        Ok(self.key(&state, &id)?.materials.len())
    }
}
