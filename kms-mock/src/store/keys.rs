//! Key lifecycle (create, describe, list, enable, disable, deletion) and aliases.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use super::state::{AliasRecord, KeyRecord, MS_PER_DAY};
use super::{ms_to_secs, KeyStore, Naming};
use crate::error::KmsError;
use crate::material::random_uuid;
use crate::types::{
    AliasEntry, CreateKeyRequest, DeletionScheduled, KeyListEntry, KeyMetadata, KeyState, Page,
};

/// KMS DescriptionType: length 0..8192 (service model).
const MAX_DESCRIPTION_LEN: usize = 8192;
/// KMS AliasNameType: length 1..256 (service model).
const MAX_ALIAS_LEN: usize = 256;
/// ScheduleKeyDeletion PendingWindowInDays: 7..30, default 30 (KMS API reference).
const MIN_PENDING_DAYS: u32 = 7;
const MAX_PENDING_DAYS: u32 = 30;
const DEFAULT_PENDING_DAYS: u32 = 30;
/// ListKeys: default 100; ListAliases: default 50; Limit 1..1000 (KMS API reference).
pub(crate) const DEFAULT_LIST_KEYS_LIMIT: u32 = 100;
pub(crate) const DEFAULT_LIST_ALIASES_LIMIT: u32 = 50;
const MAX_LIST_LIMIT: u32 = 1000;

/// One page of `items` (sorted by their string key) starting at `marker`. Markers are the
/// base64url of the first key of the next page: opaque to callers, stable under deletions.
pub(crate) fn paginate<T>(
    items: Vec<(String, T)>,
    limit: Option<u32>,
    default_limit: u32,
    marker: Option<&str>,
) -> Result<Page<T>, KmsError> {
    let limit = match limit {
        None => default_limit,
        Some(l) if (1..=MAX_LIST_LIMIT).contains(&l) => l,
        Some(l) => {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {MAX_LIST_LIMIT}"
            )))
        }
    };
    let start = match marker {
        None => None,
        Some(m) => {
            let bad = || KmsError::InvalidMarker("Invalid marker".into());
            let raw = B64URL.decode(m.as_bytes()).map_err(|_| bad())?;
            Some(String::from_utf8(raw).map_err(|_| bad())?)
        }
    };
    let mut rest = items
        .into_iter()
        .filter(|(k, _)| start.as_ref().is_none_or(|s| k >= s))
        .peekable();
    let mut out = Vec::new();
    while out.len() < limit as usize {
        match rest.next() {
            Some((_, v)) => out.push(v),
            None => break,
        }
    }
    let next_marker = rest.peek().map(|(k, _)| B64URL.encode(k.as_bytes()));
    Ok(Page {
        items: out,
        next_marker,
    })
}

pub(crate) fn check_alias_name(name: &str) -> Result<(), KmsError> {
    if name.is_empty() || name.len() > MAX_ALIAS_LEN {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must have length between 1 and {MAX_ALIAS_LEN}"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-'))
    {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )));
    }
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    };
    if rest.is_empty() || rest.contains(':') {
        return Err(KmsError::InvalidAliasName(format!(
            "Alias name {name} is not valid."
        )));
    }
    // The alias/aws/ prefix is reserved for AWS managed keys (KMS developer guide, aliases).
    if name.starts_with("alias/aws/") {
        return Err(KmsError::InvalidAliasName(format!(
            "Alias name {name} is reserved: the prefix alias/aws/ is reserved for AWS managed keys."
        )));
    }
    Ok(())
}

impl KeyStore {
    /// CreateKey: a SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT key with fresh random material.
    pub fn create_key(&self, req: CreateKeyRequest) -> Result<KeyMetadata, KmsError> {
        let description = req.description.unwrap_or_default();
        if description.len() > MAX_DESCRIPTION_LEN {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to {MAX_DESCRIPTION_LEN}"
            )));
        }
        let unsupported = |what: &str, v: &str| {
            KmsError::UnsupportedOperation(format!("{what} {v} is not supported by kms-mock"))
        };
        if let Some(u) = req.key_usage.as_deref().filter(|u| *u != "ENCRYPT_DECRYPT") {
            return Err(unsupported("KeyUsage", u));
        }
        if let Some(s) = req
            .key_spec
            .as_deref()
            .filter(|s| *s != "SYMMETRIC_DEFAULT")
        {
            return Err(unsupported("KeySpec", s));
        }
        if let Some(o) = req.origin.as_deref().filter(|o| *o != "AWS_KMS") {
            return Err(unsupported("Origin", o));
        }
        if req.multi_region == Some(true) {
            return Err(unsupported("MultiRegion", "true"));
        }
        self.mutate("CreateKey", |state, now| {
            let id = random_uuid(&self.rng)?;
            let mut key = KeyRecord {
                id: id.clone(),
                description,
                created_ms: now,
                state: KeyState::Enabled,
                deletion_ms: None,
                pending_window_days: None,
                rotation_period_days: None,
                next_rotation_ms: None,
                on_demand_rotations: 0,
                materials: Vec::new(),
            };
            key.add_material(&self.rng, now, None)?;
            let meta = self.metadata(&key)?;
            state.keys.insert(id, key);
            Ok(meta)
        })
    }

    /// DescribeKey: by key id, key ARN, alias name or alias ARN; works in every key state.
    pub fn describe_key(&self, key_id: &str) -> Result<KeyMetadata, KmsError> {
        self.read("DescribeKey", |state, _| {
            let id = self.resolve(state, key_id, Naming::WithAlias)?;
            self.metadata(self.key(state, &id)?)
        })
    }

    pub fn list_keys(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<KeyListEntry>, KmsError> {
        self.read("ListKeys", |state, _| {
            let items = state
                .keys
                .keys()
                .map(|id| {
                    (
                        id.clone(),
                        KeyListEntry {
                            key_id: id.clone(),
                            key_arn: self.key_arn(id),
                        },
                    )
                })
                .collect();
            paginate(items, limit, DEFAULT_LIST_KEYS_LIMIT, marker)
        })
    }

    pub fn enable_key(&self, key_id: &str) -> Result<(), KmsError> {
        self.mutate("EnableKey", |state, _| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            let key = self.key(state, &id)?;
            self.require_not_pending(key)?;
            self.key_mut(state, &id)?.state = KeyState::Enabled;
            Ok(())
        })
    }

    pub fn disable_key(&self, key_id: &str) -> Result<(), KmsError> {
        self.mutate("DisableKey", |state, _| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            let key = self.key(state, &id)?;
            self.require_not_pending(key)?;
            self.key_mut(state, &id)?.state = KeyState::Disabled;
            Ok(())
        })
    }

    /// ScheduleKeyDeletion: 7..30 days (default 30). The key is removed, with its aliases,
    /// once the mock clock passes the deletion date.
    pub fn schedule_key_deletion(
        &self,
        key_id: &str,
        pending_window_in_days: Option<u32>,
    ) -> Result<DeletionScheduled, KmsError> {
        let days = pending_window_in_days.unwrap_or(DEFAULT_PENDING_DAYS);
        if days < MIN_PENDING_DAYS {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to {MIN_PENDING_DAYS}"
            )));
        }
        if days > MAX_PENDING_DAYS {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to {MAX_PENDING_DAYS}"
            )));
        }
        self.mutate("ScheduleKeyDeletion", |state, now| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            self.require_not_pending(self.key(state, &id)?)?;
            let deletion_ms = now.saturating_add(i64::from(days).saturating_mul(MS_PER_DAY));
            let key = self.key_mut(state, &id)?;
            key.state = KeyState::PendingDeletion;
            key.deletion_ms = Some(deletion_ms);
            key.pending_window_days = Some(days);
            Ok(DeletionScheduled {
                key_id: self.key_arn(&id),
                deletion_date: ms_to_secs(deletion_ms),
                key_state: KeyState::PendingDeletion,
                pending_window_in_days: days,
            })
        })
    }

    /// CancelKeyDeletion: the key returns in the Disabled state, as in AWS. Returns the key ARN.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<String, KmsError> {
        self.mutate("CancelKeyDeletion", |state, _| {
            let id = self.resolve(state, key_id, Naming::KeyOnly)?;
            let arn = self.key_arn(&id);
            let key = self.key_mut(state, &id)?;
            if key.state != KeyState::PendingDeletion {
                return Err(KmsError::InvalidState(format!(
                    "{arn} is not pending deletion."
                )));
            }
            key.state = KeyState::Disabled;
            key.deletion_ms = None;
            key.pending_window_days = None;
            Ok(arn)
        })
    }

    // ---- aliases ----------------------------------------------------------------------

    pub fn create_alias(&self, alias_name: &str, target_key_id: &str) -> Result<(), KmsError> {
        check_alias_name(alias_name)?;
        self.mutate("CreateAlias", |state, now| {
            let id = self.resolve(state, target_key_id, Naming::KeyOnly)?;
            self.require_not_pending(self.key(state, &id)?)?;
            if state.aliases.contains_key(alias_name) {
                return Err(KmsError::AlreadyExists(format!(
                    "An alias with the name {} already exists",
                    self.alias_arn(alias_name)
                )));
            }
            state.aliases.insert(
                alias_name.to_string(),
                AliasRecord {
                    target: id,
                    created_ms: now,
                    updated_ms: now,
                },
            );
            Ok(())
        })
    }

    pub fn update_alias(&self, alias_name: &str, target_key_id: &str) -> Result<(), KmsError> {
        check_alias_name(alias_name)?;
        self.mutate("UpdateAlias", |state, now| {
            let id = self.resolve(state, target_key_id, Naming::KeyOnly)?;
            self.require_not_pending(self.key(state, &id)?)?;
            let arn = self.alias_arn(alias_name);
            let alias = state
                .aliases
                .get_mut(alias_name)
                .ok_or_else(|| KmsError::NotFound(format!("Alias {arn} is not found.")))?;
            alias.target = id;
            alias.updated_ms = now;
            Ok(())
        })
    }

    pub fn delete_alias(&self, alias_name: &str) -> Result<(), KmsError> {
        check_alias_name(alias_name)?;
        self.mutate("DeleteAlias", |state, _| {
            match state.aliases.remove(alias_name) {
                Some(_) => Ok(()),
                None => Err(KmsError::NotFound(format!(
                    "Alias {} is not found.",
                    self.alias_arn(alias_name)
                ))),
            }
        })
    }

    /// ListAliases, optionally only those of one key (key id or key ARN).
    pub fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<AliasEntry>, KmsError> {
        self.read("ListAliases", |state, _| {
            let only = key_id
                .map(|k| self.resolve(state, k, Naming::KeyOnly))
                .transpose()?;
            let items = state
                .aliases
                .iter()
                .filter(|(_, a)| only.as_ref().is_none_or(|k| &a.target == k))
                .map(|(name, a)| {
                    (
                        name.clone(),
                        AliasEntry {
                            alias_name: name.clone(),
                            alias_arn: self.alias_arn(name),
                            target_key_id: a.target.clone(),
                            creation_date: ms_to_secs(a.created_ms),
                            last_updated_date: ms_to_secs(a.updated_ms),
                        },
                    )
                })
                .collect();
            paginate(items, limit, DEFAULT_LIST_ALIASES_LIMIT, marker)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names() {
        assert!(check_alias_name("alias/my-key_1/x").is_ok());
        assert_eq!(
            check_alias_name("nope").unwrap_err().aws_type(),
            "ValidationException"
        );
        assert_eq!(
            check_alias_name("alias/aws/x").unwrap_err().aws_type(),
            "InvalidAliasNameException"
        );
        assert_eq!(
            check_alias_name("alias/").unwrap_err().aws_type(),
            "InvalidAliasNameException"
        );
        assert_eq!(
            check_alias_name("alias/a b").unwrap_err().aws_type(),
            "ValidationException"
        );
        assert!(check_alias_name(&format!("alias/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn pagination_walks_all_items_once() {
        let items: Vec<(String, u32)> = (0..25).map(|i| (format!("k{i:03}"), i)).collect();
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = paginate(items.clone(), Some(7), 100, marker.as_deref()).unwrap();
            seen.extend(page.items);
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        assert!(paginate(items.clone(), Some(0), 100, None).is_err());
        assert_eq!(
            paginate(items, None, 100, Some("!!!"))
                .unwrap_err()
                .aws_type(),
            "InvalidMarkerException"
        );
    }
}
