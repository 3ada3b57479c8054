//! Seeding known keys (tests and drills that need fixed key material).
//!
//! File format (JSON):
//! `{"keys":[{"id":"<uuid>","alias":"alias/x","material":"<base64 of 32 bytes>","description":"...","enabled":true}]}`
//! Seeding is idempotent: a key that already exists with the same material is kept as is
//! (so a persistent store can be started with the same seed file again); different material
//! under an existing id is refused.

use std::path::Path;

use serde::Deserialize;

use super::state::{KeyRecord, MaterialRecord};
use super::KeyStore;
use crate::error::KmsError;
use crate::material::{format_uuid, parse_uuid, random_material_id, KeyMaterial};
use crate::types::{KeyMetadata, KeyState};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub keys: Vec<SeedKey>,
}

/// One seeded key. Debug shows no material (KeyMaterial redacts itself).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    pub id: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(with = "crate::persist::material_b64")]
    pub material: KeyMaterial,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl KeyStore {
    /// Loads keys from a seed file (see the module docs); returns their metadata.
    pub fn seed_from_file(&self, path: &Path) -> Result<Vec<KeyMetadata>, KmsError> {
        let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            KmsError::Storage(format!("cannot read seed file {}: {e}", path.display()))
        })?);
        // Only the position is reported: serde_json's messages may quote input values.
        let file: SeedFile = serde_json::from_slice(&raw).map_err(|e| {
            KmsError::Storage(format!(
                "seed file {}: invalid at line {} column {}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        self.seed(file)
    }

    pub fn seed(&self, file: SeedFile) -> Result<Vec<KeyMetadata>, KmsError> {
        let mut ids = Vec::new();
        for k in &file.keys {
            let id = parse_uuid(&k.id).map(|b| format_uuid(&b)).ok_or_else(|| {
                KmsError::Validation(format!("seed key id {:?} is not a UUID", k.id))
            })?;
            ids.push(id);
        }
        // Aliases go through the normal validation before anything changes.
        for k in &file.keys {
            if let Some(a) = &k.alias {
                super::keys::check_alias_name(a)?;
            }
        }
        self.mutate("Seed", |state, now| {
            let mut out = Vec::new();
            for (k, id) in file.keys.iter().zip(&ids) {
                match state.keys.get(id) {
                    Some(existing) => {
                        let same = existing
                            .materials
                            .first()
                            .is_some_and(|m| m.material.ct_eq(&k.material));
                        if !same {
                            return Err(KmsError::AlreadyExists(format!(
                                "{} already exists with different key material",
                                self.key_arn(id)
                            )));
                        }
                    }
                    None => {
                        let record = KeyRecord {
                            id: id.clone(),
                            description: k.description.clone().unwrap_or_default(),
                            created_ms: now,
                            state: if k.enabled {
                                KeyState::Enabled
                            } else {
                                KeyState::Disabled
                            },
                            deletion_ms: None,
                            pending_window_days: None,
                            rotation_period_days: None,
                            next_rotation_ms: None,
                            on_demand_rotations: 0,
                            materials: vec![MaterialRecord {
                                material: k.material.clone(),
                                id: random_material_id(&self.rng)?,
                                created_ms: now,
                                rotation_type: None,
                            }],
                        };
                        state.keys.insert(id.clone(), record);
                    }
                }
                if let Some(alias) = &k.alias {
                    match state.aliases.get(alias) {
                        Some(a) if &a.target == id => {}
                        Some(_) => {
                            return Err(KmsError::AlreadyExists(format!(
                                "An alias with the name {} already exists",
                                self.alias_arn(alias)
                            )))
                        }
                        None => {
                            state.aliases.insert(
                                alias.clone(),
                                super::state::AliasRecord {
                                    target: id.clone(),
                                    created_ms: now,
                                    updated_ms: now,
                                },
                            );
                        }
                    }
                }
                out.push(self.metadata(self.key(state, id)?)?);
            }
            Ok(out)
        })
    }
}
