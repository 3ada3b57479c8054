//! sealdb's administration API for IAM principals: users, access keys, groups, roles, role
//! sessions, policies, boundaries and tags, and the simulator for a stored principal.
//! The same functions serve the authenticated admin endpoint of a running server and the
//! offline CLI on a stopped server's data dir. Authorized with IAM's own action names
//! (`iam:CreateUser`, `iam:CreateGroup`, `sts:AssumeRole`, ...) on the IAM resource ARN.

mod directory; // groups, roles, sessions, policies, boundaries, tags
mod simulate; //  SimulatePrincipalPolicy

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::catalog::principals::{
    new_access_key_id, new_record_id, new_secret_key, new_user_id, valid_access_key_id,
    valid_user_name, AccessKeyRecord, PrincipalRecord, KEY_ACTIVE,
};
use crate::catalog::{Catalog, CatalogError};
use crate::error::ApiError;
use crate::iam::policy::{Policy, PolicyKind};
use crate::protocol::input::required;
use crate::protocol::AdminOp;

/// IAM's DeleteConflictException: the entity still has keys, policies or members attached
/// (IAM's message: "Cannot delete entity, must ... first.").
pub(crate) fn delete_conflict(why: &str) -> ApiError {
    ApiError::DeleteConflict(format!("Cannot delete entity, {why}."))
}

/// What still hangs off a user, in the order IAM's DeleteUser lists it (a permissions boundary
/// is not on that list); `None` when it may be deleted.
pub(crate) fn user_delete_conflict(p: &PrincipalRecord) -> Option<ApiError> {
    let why = if !p.access_keys.is_empty() {
        "must delete access keys first"
    } else if !p.policies.is_empty() {
        "must delete policies first"
    } else if !p.groups.is_empty() {
        "must remove user from all groups first"
    } else {
        return None;
    };
    Some(delete_conflict(why))
}

/// IAM quota: 2,048 characters for a user's inline policy, white space not counted.
pub const MAX_USER_POLICY_CHARS: usize = 2048;

/// A tag as IAM's TagUser/TagRole take it.
#[derive(Deserialize, Serialize, Default, Clone, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct AdminTag {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// No `Debug`: it may carry an imported secret access key.
#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AdminInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Zeroizing<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<AdminTag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    /// CreateRoleSession (STS AssumeRole's RoleSessionName).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    /// CreateRole: the longest session the role allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u64>,
    /// UpdateAccessKey: "Active" or "Inactive".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Put*PermissionsBoundary: the boundary document (JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    /// CreateRole: the role's trust policy (JSON text); UpdateAssumeRolePolicy takes its new
    /// document in `PolicyDocument`, as IAM does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assume_role_policy_document: Option<String>,
    /// SimulatePrincipalPolicy: the fields of `sealdb policy simulate` that do not come from
    /// the stored principal.
    #[serde(skip_serializing_if = "Option::is_none", alias = "action")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "resource")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "context")]
    pub context: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "resource_policy")]
    pub resource_policy: Option<Value>,
}

impl AdminInput {
    /// The IAM action and resource this request needs.
    pub fn target(&self, op: AdminOp, account: &str) -> (String, String) {
        use crate::catalog::principals::{group_arn, role_arn, user_arn};
        let user = self.user_name.as_deref().unwrap_or("*");
        let group = self.group_name.as_deref().unwrap_or("*");
        let role = self.role_name.as_deref().unwrap_or("*");
        let resource = match op {
            AdminOp::ListUsers => user_arn(account, "*"),
            AdminOp::CreateGroup
            | AdminOp::DeleteGroup
            | AdminOp::ListGroups
            | AdminOp::AddUserToGroup
            | AdminOp::RemoveUserFromGroup
            | AdminOp::PutGroupPolicy
            | AdminOp::DeleteGroupPolicy
            | AdminOp::AttachGroupPolicy
            | AdminOp::DetachGroupPolicy => group_arn(account, group),
            AdminOp::CreateRole
            | AdminOp::DeleteRole
            | AdminOp::ListRoles
            | AdminOp::PutRolePolicy
            | AdminOp::DeleteRolePolicy
            | AdminOp::AttachRolePolicy
            | AdminOp::DetachRolePolicy
            | AdminOp::PutRolePermissionsBoundary
            | AdminOp::DeleteRolePermissionsBoundary
            | AdminOp::TagRole
            | AdminOp::UpdateAssumeRolePolicy
            | AdminOp::CreateRoleSession => role_arn(account, role),
            AdminOp::SimulatePrincipalPolicy if self.role_name.is_some() => role_arn(account, role),
            _ => user_arn(account, user),
        };
        let action = match op {
            // STS's action for obtaining a role session.
            AdminOp::CreateRoleSession => "sts:AssumeRole".to_string(),
            _ => format!("iam:{}", op.name()),
        };
        (action, resource)
    }
}

/// An IAM name (user, group, role) from a request member, validated.
pub(crate) fn iam_name(v: &Option<String>, member: &str) -> Result<String, ApiError> {
    let name = required(v.clone(), member)?;
    if !valid_user_name(&name) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(name)
}

fn user_name(v: &Option<String>) -> Result<String, ApiError> {
    iam_name(v, "userName")
}

fn now() -> f64 {
    crate::util::epoch_seconds_f64()
}

fn internal(e: crate::crypto::CryptoError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// IAM's MalformedPolicyDocument, as a validation error naming every problem.
pub(crate) fn check_policy(name: &str, doc: &str, kind: PolicyKind) -> Result<(), ApiError> {
    Policy::parse(name, doc, kind)
        .map(|_| ())
        .map_err(|problems| {
            ApiError::validation(format!(
                "MalformedPolicyDocument: {}",
                crate::catalog::principals::problems_text(&problems)
            ))
        })
}

pub async fn run(catalog: &Catalog, op: AdminOp, input: AdminInput) -> Result<Value, ApiError> {
    match op {
        AdminOp::CreateUser => {
            let name = user_name(&input.user_name)?;
            let tags = directory::tag_map(input.tags.unwrap_or_default())?;
            let record = PrincipalRecord {
                id: new_record_id().map_err(internal)?,
                name: name.clone(),
                user_id: new_user_id().map_err(internal)?,
                created: now(),
                tags,
                policies: Default::default(),
                access_keys: vec![],
                boundary: None,
                groups: Default::default(),
            };
            let user_id = record.user_id.clone();
            catalog.create_principal(record).await?;
            Ok(json!({"User": {"UserName": name, "UserId": user_id,
                "Arn": crate::catalog::principals::user_arn(&catalog.account, &name)}}))
        }
        AdminOp::DeleteUser => {
            let name = user_name(&input.user_name)?;
            catalog
                .iam_change(|index, ch| {
                    let p = index
                        .by_name
                        .get(&name)
                        .ok_or_else(|| CatalogError::UserNotFound(name.clone()))?;
                    if let Some(e) = user_delete_conflict(&p.record) {
                        return Err(e);
                    }
                    ch.delete_user(&name);
                    Ok(())
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::ListUsers => {
            let users: Vec<Value> = catalog
                .principals()
                .by_name
                .values()
                .map(|p| {
                    json!({"UserName": p.record.name, "UserId": p.record.user_id,
                           "Arn": p.subject.info.arn, "CreateDate": p.record.created,
                           "Policies": p.record.policies.keys().collect::<Vec<_>>(),
                           "Groups": p.record.groups,
                           "PermissionsBoundary": p.record.boundary.is_some()})
                })
                .collect();
            Ok(json!({"Users": users}))
        }
        AdminOp::CreateAccessKey => {
            let name = user_name(&input.user_name)?;
            let (id, secret) = match (input.access_key_id, input.secret_access_key) {
                (Some(id), Some(secret)) => {
                    if !valid_access_key_id(&id) {
                        return Err(ApiError::validation(
                            "AccessKeyId must be 16-128 characters of [A-Za-z0-9_]",
                        ));
                    }
                    if secret.len() < 16 {
                        return Err(ApiError::validation(
                            "SecretAccessKey must be at least 16 characters",
                        ));
                    }
                    (id, secret)
                }
                (None, None) => (
                    new_access_key_id().map_err(internal)?,
                    new_secret_key().map_err(internal)?,
                ),
                _ => {
                    return Err(ApiError::validation(
                        "AccessKeyId and SecretAccessKey must be given together",
                    ))
                }
            };
            if catalog.access_key_in_use(&id) {
                return Err(CatalogError::AccessKeyExists(id).into());
            }
            let record = AccessKeyRecord {
                id: id.clone(),
                secret: secret.clone(),
                status: KEY_ACTIVE.into(),
                created: now(),
            };
            catalog
                .update_principal(&name, move |p| {
                    p.access_keys.push(record);
                    Ok(())
                })
                .await?;
            // The only time the secret leaves the server.
            Ok(
                json!({"AccessKey": {"UserName": name, "AccessKeyId": id, "Status": KEY_ACTIVE,
                "SecretAccessKey": secret.as_str()}}),
            )
        }
        AdminOp::DeleteAccessKey => {
            let id = required(input.access_key_id, "accessKeyId")?;
            let owner = key_owner(catalog, &id, &input.user_name)?;
            catalog
                .update_principal(&owner, |p| {
                    p.access_keys.retain(|k| k.id != id);
                    Ok(())
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::ListAccessKeys => {
            let name = user_name(&input.user_name)?;
            let index = catalog.principals();
            let p = index
                .by_name
                .get(&name)
                .ok_or(CatalogError::UserNotFound(name.clone()))?;
            let keys: Vec<Value> = p
                .record
                .access_keys
                .iter()
                .map(|k| json!({"UserName": name, "AccessKeyId": k.id, "Status": k.status, "CreateDate": k.created}))
                .collect();
            Ok(json!({"AccessKeyMetadata": keys}))
        }
        AdminOp::PutUserPolicy => {
            let name = user_name(&input.user_name)?;
            let policy_name = required(input.policy_name, "policyName")?;
            let doc = required(input.policy_document, "policyDocument")?;
            if doc.chars().filter(|c| !c.is_whitespace()).count() > MAX_USER_POLICY_CHARS {
                return Err(ApiError::LimitExceeded(format!(
                    "Maximum policy size of {MAX_USER_POLICY_CHARS} bytes exceeded for user {name}"
                )));
            }
            check_policy(&policy_name, &doc, PolicyKind::Identity)?;
            catalog
                .update_principal(&name, move |p| {
                    p.policies.insert(policy_name, doc);
                    Ok(())
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::DeleteUserPolicy => {
            let name = user_name(&input.user_name)?;
            let policy_name = required(input.policy_name, "policyName")?;
            catalog
                .update_principal(&name, |p| {
                    p.policies.remove(&policy_name).map(|_| ()).ok_or_else(|| {
                        CatalogError::Invalid(format!(
                            "The user policy with name {policy_name} cannot be found."
                        ))
                    })
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::UpdateAccessKey => {
            let id = required(input.access_key_id, "accessKeyId")?;
            let status = required(input.status, "status")?;
            if status != KEY_ACTIVE && status != crate::catalog::principals::KEY_INACTIVE {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                )));
            }
            let owner = key_owner(catalog, &id, &input.user_name)?;
            catalog
                .update_principal(&owner, |p| {
                    for k in p.access_keys.iter_mut().filter(|k| k.id == id) {
                        k.status = status.clone();
                    }
                    Ok(())
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::SimulatePrincipalPolicy => simulate::run(catalog, input),
        other => directory::run(catalog, other, input).await,
    }
}

/// The user owning a (long-term) access key; with `user` given, it must be that user.
fn key_owner(catalog: &Catalog, id: &str, user: &Option<String>) -> Result<String, ApiError> {
    let index = catalog.principals();
    let owner = index
        .by_name
        .values()
        .find(|p| p.record.access_keys.iter().any(|k| k.id == id))
        .map(|p| p.record.name.clone())
        .ok_or_else(|| CatalogError::AccessKeyNotFound(id.to_string()))?;
    match user {
        Some(u) if *u != owner => Err(CatalogError::AccessKeyNotFound(id.to_string()).into()),
        _ => Ok(owner),
    }
}
