//! IAM principals as stored (sealed) in the catalog, and their compiled in-memory form.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::secret::random_bytes;
use crate::iam::eval::{PrincipalInfo, PrincipalKind};
use crate::iam::policy::{Policy, PolicyKind};

#[derive(Clone, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub id: String,
    /// Sealed with the rest of the record; only ever shown once, at creation.
    pub secret: Zeroizing<String>,
    pub status: String,
    pub created: f64,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("status", &self.status)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct PrincipalRecord {
    /// Random storage id (the user name is not a storage key).
    pub id: String,
    pub name: String,
    /// AWS's unique id for the user ("AIDA..."), the value of `aws:userid`.
    pub user_id: String,
    pub created: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Policy name -> policy document (JSON text), in attachment order by name.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyRecord>,
}

/// The compiled form used on the request path.
pub struct Principal {
    pub record: PrincipalRecord,
    pub info: PrincipalInfo,
    pub policies: Vec<Arc<Policy>>,
}

impl Principal {
    pub fn compile(record: PrincipalRecord, account: &str) -> Result<Principal, String> {
        let mut policies = Vec::with_capacity(record.policies.len());
        for (name, doc) in &record.policies {
            let p = Policy::parse(name, doc, PolicyKind::Identity).map_err(|problems| {
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            policies.push(Arc::new(p));
        }
        let info = PrincipalInfo {
            kind: PrincipalKind::IAMUser,
            arn: user_arn(account, &record.name),
            account: account.to_string(),
            userid: record.user_id.clone(),
            username: Some(record.name.clone()),
            role_arn: None,
            tags: record.tags.clone(),
        };
        Ok(Principal {
            record,
            info,
            policies,
        })
    }
}

pub fn user_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user/{name}")
}

/// The access key -> principal index, rebuilt whenever a principal changes.
#[derive(Default, Clone)]
pub struct PrincipalIndex {
    pub by_name: BTreeMap<String, Arc<Principal>>,
    pub by_access_key: HashMap<String, (Arc<Principal>, usize)>,
}

impl PrincipalIndex {
    pub fn insert(&mut self, p: Arc<Principal>) {
        self.remove(&p.record.name);
        for (i, k) in p.record.access_keys.iter().enumerate() {
            self.by_access_key.insert(k.id.clone(), (p.clone(), i));
        }
        self.by_name.insert(p.record.name.clone(), p);
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(old) = self.by_name.remove(name) {
            for k in &old.record.access_keys {
                self.by_access_key.remove(&k.id);
            }
        }
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn random_base32(n: usize) -> Result<String, crate::crypto::CryptoError> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(bytes
        .iter()
        .take(n)
        .map(|b| BASE32[(*b as usize) % 32] as char)
        .collect())
}

/// AWS-shaped access key id: "AKIA" + 16 base32 characters.
pub fn new_access_key_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("AKIA{}", random_base32(16)?))
}

/// 40 characters of base64 (30 random bytes), like AWS secret keys.
pub fn new_secret_key() -> Result<Zeroizing<String>, crate::crypto::CryptoError> {
    use base64::Engine;
    let bytes = Zeroizing::new(random_bytes::<30>()?);
    Ok(Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(&bytes[..]),
    ))
}

pub fn new_user_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("AIDA{}", random_base32(17)?))
}

/// IAM user names: 1-64 of `[\w+=,.@-]`.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// IAM access key ids: 16-128 of `[\w]`.
pub fn valid_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
