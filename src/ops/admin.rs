//! sealdb's administration API for IAM principals (users, access keys, inline policies).
//! The same functions serve the authenticated admin endpoint of a running server and the
//! offline CLI on a stopped server's data dir. Authorized with IAM's own action names
//! (`iam:CreateUser`, ...) on `arn:aws:iam::ACCOUNT:user/NAME`.

use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::catalog::principals::{
    new_access_key_id, new_secret_key, new_user_id, valid_access_key_id, valid_user_name,
    AccessKeyRecord, PrincipalRecord,
};
use crate::catalog::{Catalog, CatalogError};
use crate::error::ApiError;
use crate::iam::policy::{Policy, PolicyKind};
use crate::protocol::input::required;
use crate::protocol::AdminOp;

/// IAM quota: 2,048 characters for a user's inline policy, white space not counted.
pub const MAX_USER_POLICY_CHARS: usize = 2048;

/// No `Debug`: it may carry an imported secret access key.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AdminInput {
    pub user_name: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Zeroizing<String>>,
    pub policy_name: Option<String>,
    pub policy_document: Option<String>,
    pub tags: Option<Vec<crate::protocol::input::Tag>>,
}

impl AdminInput {
    /// The IAM action and resource this request needs.
    pub fn target(&self, op: AdminOp, account: &str) -> (String, String) {
        let user = self.user_name.as_deref().unwrap_or("*");
        let resource = match op {
            AdminOp::ListUsers => format!("arn:aws:iam::{account}:user/*"),
            _ => format!("arn:aws:iam::{account}:user/{user}"),
        };
        (format!("iam:{}", op.name()), resource)
    }
}

fn user_name(v: &Option<String>) -> Result<String, ApiError> {
    let name = required(v.clone(), "userName")?;
    if !valid_user_name(&name) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(name)
}

fn now() -> f64 {
    crate::util::epoch_seconds_f64()
}

pub async fn run(catalog: &Catalog, op: AdminOp, input: AdminInput) -> Result<Value, ApiError> {
    match op {
        AdminOp::CreateUser => {
            let name = user_name(&input.user_name)?;
            let mut tags = std::collections::BTreeMap::new();
            for t in input.tags.unwrap_or_default() {
                tags.insert(required(t.key, "key")?, t.value.unwrap_or_default());
            }
            let record = PrincipalRecord {
                id: hex::encode(
                    crate::crypto::secret::random_bytes::<16>()
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                ),
                name: name.clone(),
                user_id: new_user_id().map_err(|e| ApiError::Internal(e.to_string()))?,
                created: now(),
                tags,
                policies: Default::default(),
                access_keys: vec![],
            };
            let user_id = record.user_id.clone();
            catalog.create_principal(record).await?;
            Ok(json!({"User": {"UserName": name, "UserId": user_id,
                "Arn": crate::catalog::principals::user_arn(&catalog.account, &name)}}))
        }
        AdminOp::DeleteUser => {
            let name = user_name(&input.user_name)?;
            catalog.delete_principal(&name).await?;
            Ok(json!({}))
        }
        AdminOp::ListUsers => {
            let users: Vec<Value> = catalog
                .principals()
                .by_name
                .values()
                .map(|p| {
                    json!({"UserName": p.record.name, "UserId": p.record.user_id,
                           "Arn": p.info.arn, "CreateDate": p.record.created,
                           "Policies": p.record.policies.keys().collect::<Vec<_>>()})
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
                    new_access_key_id().map_err(|e| ApiError::Internal(e.to_string()))?,
                    new_secret_key().map_err(|e| ApiError::Internal(e.to_string()))?,
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
                status: "Active".into(),
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
                json!({"AccessKey": {"UserName": name, "AccessKeyId": id, "Status": "Active",
                "SecretAccessKey": secret.as_str()}}),
            )
        }
        AdminOp::DeleteAccessKey => {
            let id = required(input.access_key_id, "accessKeyId")?;
            let owner = catalog
                .principals()
                .by_access_key
                .get(&id)
                .map(|(p, _)| p.record.name.clone())
                .ok_or_else(|| CatalogError::AccessKeyNotFound(id.clone()))?;
            if let Some(u) = &input.user_name {
                if *u != owner {
                    return Err(CatalogError::AccessKeyNotFound(id).into());
                }
            }
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
            if let Err(problems) = Policy::parse(&policy_name, &doc, PolicyKind::Identity) {
                let text: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect();
                return Err(ApiError::validation(format!(
                    "MalformedPolicyDocument: {}",
                    text.join("; ")
                )));
            }
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
    }
}
