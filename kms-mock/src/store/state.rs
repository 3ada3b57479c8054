//! The store's whole state: what is persisted, and the time-driven transitions on it
//! (deletion at the end of the waiting period, automatic rotation).

use std::collections::BTreeMap;

use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};

use crate::error::KmsError;
use crate::material::{random_material_id, KeyMaterial};
use crate::types::{KeyState, RotationType};

pub const MS_PER_DAY: i64 = 86_400_000;
/// Bound on catch-up rotations in one step (a clock moved years ahead with a 90-day period
/// needs a few dozen; this only stops a runaway loop).
const MAX_CATCH_UP_ROTATIONS: usize = 10_000;

#[derive(Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub keys: BTreeMap<String, KeyRecord>,
    /// Alias name (`alias/...`) -> target key id.
    pub aliases: BTreeMap<String, AliasRecord>,
    /// Mock clock: milliseconds added to the system clock.
    pub clock_offset_ms: i64,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub description: String,
    pub created_ms: i64,
    pub state: KeyState,
    pub deletion_ms: Option<i64>,
    pub pending_window_days: Option<u32>,
    /// Automatic rotation: period and next date, present while enabled.
    pub rotation_period_days: Option<u32>,
    pub next_rotation_ms: Option<i64>,
    pub on_demand_rotations: u32,
    /// Index = material version recorded in blobs; the last one encrypts.
    pub materials: Vec<MaterialRecord>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct MaterialRecord {
    #[serde(with = "crate::persist::material_b64")]
    pub material: KeyMaterial,
    pub id: String,
    pub created_ms: i64,
    pub rotation_type: Option<RotationType>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    pub target: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl KeyRecord {
    pub fn current(&self) -> Result<(u32, &MaterialRecord), KmsError> {
        let last = self
            .materials
            .last()
            .ok_or_else(|| KmsError::Internal("key has no material".into()))?;
        let version = u32::try_from(self.materials.len().saturating_sub(1))
            .map_err(|_| KmsError::Internal("too many key versions".into()))?;
        Ok((version, last))
    }

    pub fn add_material(
        &mut self,
        rng: &SystemRandom,
        at_ms: i64,
        kind: Option<RotationType>,
    ) -> Result<(), KmsError> {
        self.materials.push(MaterialRecord {
            material: KeyMaterial::random(rng)?,
            id: random_material_id(rng)?,
            created_ms: at_ms,
            rotation_type: kind,
        });
        Ok(())
    }
}

impl State {
    /// True when `advance` would change something at `now`.
    pub fn has_due_events(&self, now_ms: i64) -> bool {
        self.keys.values().any(|k| {
            (k.state == KeyState::PendingDeletion && k.deletion_ms.is_some_and(|d| d <= now_ms))
                || (k.state == KeyState::Enabled && k.next_rotation_ms.is_some_and(|n| n <= now_ms))
        })
    }

    /// Applies the events due at `now`: deletes keys whose waiting period ended (and their
    /// aliases) and performs automatic rotations of enabled keys (KMS does not rotate
    /// disabled or pending-deletion keys; it catches up when a key is enabled again).
    pub fn advance(&mut self, rng: &SystemRandom, now_ms: i64) -> Result<(), KmsError> {
        let expired: Vec<String> = self
            .keys
            .values()
            .filter(|k| {
                k.state == KeyState::PendingDeletion && k.deletion_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|k| k.id.clone())
            .collect();
        for id in &expired {
            self.keys.remove(id);
        }
        self.aliases.retain(|_, a| !expired.contains(&a.target));

        for key in self.keys.values_mut() {
            if key.state != KeyState::Enabled {
                continue;
            }
            let (Some(period_days), Some(mut next)) =
                (key.rotation_period_days, key.next_rotation_ms)
            else {
                continue;
            };
            let period_ms = i64::from(period_days).saturating_mul(MS_PER_DAY).max(1);
            let mut n = 0;
            while next <= now_ms && n < MAX_CATCH_UP_ROTATIONS {
                key.add_material(rng, next, Some(RotationType::Automatic))?;
                next = next.saturating_add(period_ms);
                n += 1;
            }
            key.next_rotation_ms = Some(next);
        }
        Ok(())
    }
}
