//! IAM principals as stored (sealed) in the catalog — users, groups, roles and role sessions —
//! and their compiled in-memory form.
//!
//! Every change compiles what changed when it is stored (`store.rs`): each access key maps to a
//! [`Subject`] holding the caller's identity, its complete identity-based policy list (own +
//! groups', or the role's) and its permissions boundary, all compiled. The request path does
//! one hash lookup and follows `Arc`s: nothing is parsed, merged or looked up per request, and
//! the number of principals does not change what a request costs.

mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::secret::random_bytes;
use crate::iam::eval::{PrincipalInfo, PrincipalKind};
use crate::iam::membership::{CasbinMembership, Link, Membership};
use crate::iam::policy::{Policy, PolicyKind};

pub use store::IamChange;

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

pub const KEY_ACTIVE: &str = "Active";
pub const KEY_INACTIVE: &str = "Inactive";

/// An IAM user.
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
    /// Inline policies: name -> document (JSON text).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyRecord>,
    /// The permissions boundary document, when set.
    #[serde(default)]
    pub boundary: Option<String>,
    /// Names of the groups the user belongs to (the stored side of the membership graph).
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// An IAM group: policies shared by its members.
#[derive(Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    pub name: String,
    /// "AGPA..."
    pub group_id: String,
    pub created: f64,
    /// Inline policies (PutGroupPolicy).
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Attached policies (AttachGroupPolicy), each under its own name.
    #[serde(default)]
    pub attached: BTreeMap<String, String>,
}

/// An IAM role, used through sessions.
#[derive(Clone, Serialize, Deserialize)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    /// "AROA..."
    pub role_id: String,
    pub created: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: BTreeMap<String, String>,
    #[serde(default)]
    pub boundary: Option<String>,
    /// The trust policy (AssumeRolePolicyDocument): who may create sessions of the role.
    /// `None` only in records written before trust policies existed; they trust the account
    /// ([`default_trust_policy`]), which is what they allowed then.
    #[serde(default)]
    pub trust_policy: Option<String>,
    #[serde(default = "default_max_session")]
    pub max_session_secs: u64,
    #[serde(default)]
    pub sessions: Vec<SessionRecord>,
}

// IAM: a role's MaxSessionDuration defaults to 3600 seconds.
pub const DEFAULT_MAX_SESSION_SECS: u64 = 3600;

fn default_max_session() -> u64 {
    DEFAULT_MAX_SESSION_SECS
}

/// Temporary credentials issued for a role session.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// "ASIA..."
    pub access_key_id: String,
    pub secret: Zeroizing<String>,
    /// Checked by SigV4 (`X-Amz-Security-Token`), constant time.
    pub token: Zeroizing<String>,
    pub session_name: String,
    pub created: f64,
    /// Epoch seconds.
    pub expires: f64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"[redacted]")
            .field("token", &"[redacted]")
            .field("session_name", &self.session_name)
            .field("expires", &self.expires)
            .finish()
    }
}

/// What an access key authenticates as, ready for evaluation.
pub struct Subject {
    pub info: PrincipalInfo,
    /// Identity-based policies: the user's own and its groups', or the role's.
    pub policies: Vec<Arc<Policy>>,
    pub boundary: Option<Arc<Policy>>,
}

/// A compiled user.
pub struct Principal {
    pub record: PrincipalRecord,
    /// The user's own policies (its groups' are added in `subject`).
    pub own: Vec<Arc<Policy>>,
    pub boundary: Option<Arc<Policy>>,
    pub subject: Arc<Subject>,
}

pub struct Group {
    pub record: GroupRecord,
    pub policies: Vec<Arc<Policy>>,
}

pub struct Role {
    pub record: RoleRecord,
    pub policies: Vec<Arc<Policy>>,
    pub boundary: Option<Arc<Policy>>,
    /// Consulted for `sts:AssumeRole` on the role (CreateRoleSession).
    pub trust: Arc<Policy>,
}

/// The trust policy of a role created without one: the account (its root ARN) may assume the
/// role, so a caller in the account needs an identity-based policy allowing `sts:AssumeRole`
/// on it (IAM requires a trust policy on CreateRole; this is the AWS console's default for
/// "AWS account: this account").
pub fn default_trust_policy(account: &str) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "sts:AssumeRole"}]})
    .to_string()
}

/// Session credentials beyond the secret key.
pub struct SessionAuth {
    pub token: Zeroizing<String>,
    /// Epoch seconds.
    pub expires: f64,
}

/// One access key on the request path.
pub struct KeyEntry {
    pub subject: Arc<Subject>,
    pub secret: Zeroizing<String>,
    pub active: bool,
    pub session: Option<SessionAuth>,
}

impl KeyEntry {
    pub fn expired(&self, now_epoch: f64) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.expires <= now_epoch)
    }
}

/// The directory: names -> compiled principals, access keys -> subjects. Replaced as a whole
/// (copy, change, swap) under the catalog's mutation lock; readers keep the snapshot they took.
#[derive(Clone)]
pub struct PrincipalIndex {
    pub by_name: BTreeMap<String, Arc<Principal>>,
    pub groups: BTreeMap<String, Arc<Group>>,
    pub roles: BTreeMap<String, Arc<Role>>,
    pub by_access_key: HashMap<String, Arc<KeyEntry>>,
    /// Shared by every snapshot; changed only under the catalog's mutation lock, after the
    /// store accepted the change, right before the new snapshot is published.
    membership: Arc<Mutex<Box<dyn Membership>>>,
}

impl Default for PrincipalIndex {
    fn default() -> Self {
        PrincipalIndex {
            by_name: BTreeMap::new(),
            groups: BTreeMap::new(),
            roles: BTreeMap::new(),
            by_access_key: HashMap::new(),
            membership: Arc::new(Mutex::new(Box::new(CasbinMembership::default()))),
        }
    }
}

impl PrincipalIndex {
    /// The groups a user belongs to, from the membership graph.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.membership
            .lock()
            .map(|m| m.containers_of(Link::UserGroup, user))
            .unwrap_or_default()
    }

    /// The trust policy of the role `role_arn` names in `account` (`None`: no such role).
    pub fn trust_policy_of(&self, role_arn: &str, account: &str) -> Option<Arc<Policy>> {
        let name = role_arn
            .strip_prefix("arn:aws:iam::")?
            .strip_prefix(account)?
            .strip_prefix(":role/")?;
        self.roles.get(name).map(|r| r.trust.clone())
    }

    /// The users in a group, from the membership graph.
    pub fn members_of(&self, group: &str) -> Vec<String> {
        self.membership
            .lock()
            .map(|m| m.members_of(Link::UserGroup, group))
            .unwrap_or_default()
    }
}

pub fn problems_text(problems: &[crate::iam::policy::PolicyProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Compiles named documents; `label` prefixes the policy names in explanations.
pub fn compile_named(
    label: &str,
    docs: &BTreeMap<String, String>,
    kind: PolicyKind,
    out: &mut Vec<Arc<Policy>>,
) -> Result<(), String> {
    for (name, doc) in docs {
        let full = if label.is_empty() {
            name.clone()
        } else {
            format!("{label}/{name}")
        };
        let p = Policy::parse(&full, doc, kind)
            .map_err(|problems| format!("{full}: {}", problems_text(&problems)))?;
        out.push(Arc::new(p));
    }
    Ok(())
}

fn compile_boundary(label: &str, doc: &Option<String>) -> Result<Option<Arc<Policy>>, String> {
    match doc {
        None => Ok(None),
        Some(d) => {
            let name = format!("{label}/permissions-boundary");
            Policy::parse(&name, d, PolicyKind::Boundary)
                .map(|p| Some(Arc::new(p)))
                .map_err(|problems| format!("{name}: {}", problems_text(&problems)))
        }
    }
}

impl Principal {
    /// Compiles the user's own policies and boundary; the subject (with the groups'
    /// policies) is filled in by [`Principal::with_groups`].
    pub fn compile(record: PrincipalRecord, account: &str) -> Result<Principal, String> {
        let mut own = Vec::with_capacity(record.policies.len());
        // Users' inline policies keep their bare names (as they always have in explanations).
        compile_named("", &record.policies, PolicyKind::Identity, &mut own)?;
        let boundary = compile_boundary(&format!("user/{}", record.name), &record.boundary)?;
        let subject = Arc::new(Subject {
            info: user_info(&record, account),
            policies: own.clone(),
            boundary: boundary.clone(),
        });
        Ok(Principal {
            record,
            own,
            boundary,
            subject,
        })
    }

    /// The same user with its groups' policies added to its subject.
    fn with_groups(&self, groups: &[Arc<Group>]) -> Principal {
        let mut policies = self.own.clone();
        for g in groups {
            policies.extend(g.policies.iter().cloned());
        }
        Principal {
            record: self.record.clone(),
            own: self.own.clone(),
            boundary: self.boundary.clone(),
            subject: Arc::new(Subject {
                info: self.subject.info.clone(),
                policies,
                boundary: self.boundary.clone(),
            }),
        }
    }
}

fn user_info(record: &PrincipalRecord, account: &str) -> PrincipalInfo {
    PrincipalInfo {
        kind: PrincipalKind::IAMUser,
        arn: user_arn(account, &record.name),
        account: account.to_string(),
        userid: record.user_id.clone(),
        username: Some(record.name.clone()),
        role_arn: None,
        tags: record.tags.clone(),
    }
}

impl Group {
    pub fn compile(record: GroupRecord) -> Result<Group, String> {
        let label = format!("group/{}", record.name);
        let mut policies = Vec::new();
        compile_named(
            &label,
            &record.policies,
            PolicyKind::Identity,
            &mut policies,
        )?;
        compile_named(
            &label,
            &record.attached,
            PolicyKind::Identity,
            &mut policies,
        )?;
        Ok(Group { record, policies })
    }
}

impl Role {
    pub fn compile(record: RoleRecord, account: &str) -> Result<Role, String> {
        let label = format!("role/{}", record.name);
        let mut policies = Vec::new();
        compile_named(
            &label,
            &record.policies,
            PolicyKind::Identity,
            &mut policies,
        )?;
        compile_named(
            &label,
            &record.attached,
            PolicyKind::Identity,
            &mut policies,
        )?;
        let boundary = compile_boundary(&label, &record.boundary)?;
        let name = format!("{label}/trust-policy");
        let doc = match &record.trust_policy {
            Some(d) => d.clone(),
            None => default_trust_policy(account),
        };
        let trust = Policy::parse(&name, &doc, PolicyKind::Trust)
            .map(Arc::new)
            .map_err(|problems| format!("{name}: {}", problems_text(&problems)))?;
        Ok(Role {
            record,
            policies,
            boundary,
            trust,
        })
    }

    /// The subject of one of the role's sessions.
    pub fn session_subject(&self, session_name: &str, account: &str) -> Subject {
        Subject {
            info: PrincipalInfo {
                kind: PrincipalKind::AssumedRole,
                arn: session_arn(account, &self.record.name, session_name),
                account: account.to_string(),
                // AWS: aws:userid of a role session is "ROLEID:SESSIONNAME".
                userid: format!("{}:{session_name}", self.record.role_id),
                username: None,
                role_arn: Some(role_arn(account, &self.record.name)),
                tags: self.record.tags.clone(),
            },
            policies: self.policies.clone(),
            boundary: self.boundary.clone(),
        }
    }
}

pub fn user_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user/{name}")
}

pub fn group_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:group/{name}")
}

pub fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

pub fn session_arn(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
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

/// Temporary (session) access key id: "ASIA" + 16 base32 characters, as STS issues them.
pub fn new_session_key_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("ASIA{}", random_base32(16)?))
}

/// 40 characters of base64 (30 random bytes), like AWS secret keys.
pub fn new_secret_key() -> Result<Zeroizing<String>, crate::crypto::CryptoError> {
    use base64::Engine;
    let bytes = Zeroizing::new(random_bytes::<30>()?);
    Ok(Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(&bytes[..]),
    ))
}

/// A session token: 64 random bytes, base64 (an opaque string, as STS's are).
pub fn new_session_token() -> Result<Zeroizing<String>, crate::crypto::CryptoError> {
    use base64::Engine;
    let bytes = Zeroizing::new(random_bytes::<64>()?);
    Ok(Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(&bytes[..]),
    ))
}

pub fn new_user_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("AIDA{}", random_base32(17)?))
}

pub fn new_group_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("AGPA{}", random_base32(17)?))
}

pub fn new_role_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(format!("AROA{}", random_base32(17)?))
}

/// A random storage id for a new record.
pub fn new_record_id() -> Result<String, crate::crypto::CryptoError> {
    Ok(hex::encode(random_bytes::<16>()?))
}

/// IAM user, group and role names: 1-64 of `[\w+=,.@-]` (IAM API reference, "userNameType").
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// STS RoleSessionName: 2-64 of `[\w+=,.@-]` (STS API reference, AssumeRole).
pub fn valid_session_name(name: &str) -> bool {
    name.len() >= 2 && valid_user_name(name)
}

/// IAM access key ids: 16-128 of `[\w]`.
pub fn valid_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
