//! Groups, roles, role sessions, group/role policies, permissions boundaries and tags.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{
    check_policy, delete_conflict as conflict, iam_name, internal, now, AdminInput, AdminTag,
};
use crate::catalog::principals::{
    default_trust_policy, group_arn, new_group_id, new_record_id, new_role_id, new_secret_key,
    new_session_key_id, new_session_token, role_arn, session_arn, valid_session_name, GroupRecord,
    IamChange, PrincipalIndex, PrincipalRecord, RoleRecord, SessionRecord,
    DEFAULT_MAX_SESSION_SECS,
};
use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::iam::policy::{
    PolicyKind, GROUP_INLINE_POLICY_MAX_CHARS, MANAGED_POLICY_MAX_CHARS,
    ROLE_INLINE_POLICY_MAX_CHARS, ROLE_TRUST_POLICY_MAX_CHARS,
};
use crate::protocol::input::required;
use crate::protocol::AdminOp;

// IAM quota: managed policies attached to a group or role: 10 by default, at most 20.
const MAX_ATTACHED_POLICIES: usize = 20;
// IAM quota: tags per user or role.
const MAX_TAGS: usize = 50;
// IAM: tag keys are 1-128 characters, values 0-256.
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;
// IAM: MaxSessionDuration is 3600-43200 seconds; STS: DurationSeconds is at least 900.
const MIN_SESSION_SECS: u64 = 900;
const MAX_SESSION_SECS: u64 = 43_200;
// Our limit: live sessions per role (each is a key on the request path and part of the sealed
// role record, rewritten when a session is added).
const MAX_SESSIONS_PER_ROLE: usize = 1_000;

pub(crate) fn tag_map(tags: Vec<AdminTag>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for t in tags {
        let k = required(t.key, "key")?;
        let v = t.value.unwrap_or_default();
        if k.is_empty() || k.chars().count() > MAX_TAG_KEY || v.chars().count() > MAX_TAG_VALUE {
            return Err(ApiError::validation(format!(
                "Tag keys must be 1-{MAX_TAG_KEY} characters and values at most {MAX_TAG_VALUE}"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn merge_tags(
    into: &mut BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    into.extend(tags);
    if into.len() > MAX_TAGS {
        return Err(ApiError::LimitExceeded(format!(
            "The number of tags has reached the maximum limit of {MAX_TAGS}."
        )));
    }
    Ok(())
}

fn no_group(name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("The group with name {name} cannot be found."))
}

fn no_role(name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("The role with name {name} cannot be found."))
}

fn no_user(name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("The user with name {name} cannot be found."))
}

/// IAM deletes a group or role only once nothing is attached to it: members first (groups),
/// then inline policies, then managed policies.
fn policies_conflict(
    inline: &BTreeMap<String, String>,
    attached: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if !inline.is_empty() {
        return Err(conflict("must delete policies first"));
    }
    if !attached.is_empty() {
        return Err(conflict("must detach all policies first"));
    }
    Ok(())
}

/// A trust policy, validated as IAM validates AssumeRolePolicyDocument.
fn trust_doc(doc: &str) -> Result<(), ApiError> {
    if non_ws_chars(doc) > ROLE_TRUST_POLICY_MAX_CHARS {
        // IAM's quota name for the trust policy length.
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for ACLSizePerRole: {ROLE_TRUST_POLICY_MAX_CHARS}"
        )));
    }
    check_policy("trust-policy", doc, PolicyKind::Trust)
}

fn non_ws_chars(s: &str) -> usize {
    s.chars().filter(|c| !c.is_whitespace()).count()
}

/// Inline policies: the aggregate size limit of the entity.
fn put_inline(
    map: &mut BTreeMap<String, String>,
    name: String,
    doc: String,
    limit: usize,
    entity: &str,
) -> Result<(), ApiError> {
    map.insert(name, doc);
    let total: usize = map.values().map(|d| non_ws_chars(d)).sum();
    if total > limit {
        return Err(ApiError::LimitExceeded(format!(
            "Maximum policy size of {limit} bytes exceeded for {entity}"
        )));
    }
    Ok(())
}

fn put_attached(
    map: &mut BTreeMap<String, String>,
    name: String,
    doc: String,
    entity: &str,
) -> Result<(), ApiError> {
    if non_ws_chars(&doc) > MANAGED_POLICY_MAX_CHARS {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {MANAGED_POLICY_MAX_CHARS}"
        )));
    }
    map.insert(name, doc);
    if map.len() > MAX_ATTACHED_POLICIES {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for PoliciesPerEntity: {MAX_ATTACHED_POLICIES} ({entity})"
        )));
    }
    Ok(())
}

fn remove_named(map: &mut BTreeMap<String, String>, name: &str) -> Result<(), ApiError> {
    map.remove(name).map(|_| ()).ok_or_else(|| {
        ApiError::ResourceNotFound(format!("The policy with name {name} cannot be found."))
    })
}

async fn change_group<T>(
    catalog: &Catalog,
    name: &str,
    f: impl FnOnce(&mut GroupRecord, &PrincipalIndex, &mut IamChange) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    catalog
        .iam_change(|index, ch| {
            let mut g = index
                .groups
                .get(name)
                .map(|g| g.record.clone())
                .ok_or_else(|| no_group(name))?;
            let out = f(&mut g, index, ch)?;
            ch.put_group(g);
            Ok(out)
        })
        .await
}

async fn change_role<T>(
    catalog: &Catalog,
    name: &str,
    f: impl FnOnce(&mut RoleRecord) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    catalog
        .iam_change(|index, ch| {
            let mut r = index
                .roles
                .get(name)
                .map(|r| r.record.clone())
                .ok_or_else(|| no_role(name))?;
            let out = f(&mut r)?;
            ch.put_role(r);
            Ok(out)
        })
        .await
}

async fn change_user<T>(
    catalog: &Catalog,
    name: &str,
    f: impl FnOnce(&mut PrincipalRecord, &PrincipalIndex) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    catalog
        .iam_change(|index, ch| {
            let mut u = index
                .by_name
                .get(name)
                .map(|u| u.record.clone())
                .ok_or_else(|| no_user(name))?;
            let out = f(&mut u, index)?;
            ch.put_user(u);
            Ok(out)
        })
        .await
}

pub(super) async fn run(
    catalog: &Catalog,
    op: AdminOp,
    input: AdminInput,
) -> Result<Value, ApiError> {
    let account = catalog.account.clone();
    let group = || iam_name(&input.group_name, "groupName");
    let role = || iam_name(&input.role_name, "roleName");
    let user = || iam_name(&input.user_name, "userName");
    let policy = || -> Result<(String, String), ApiError> {
        Ok((
            required(input.policy_name.clone(), "policyName")?,
            required(input.policy_document.clone(), "policyDocument")?,
        ))
    };
    let policy_name = || required(input.policy_name.clone(), "policyName");
    match op {
        AdminOp::CreateGroup => {
            let name = group()?;
            let record = GroupRecord {
                id: new_record_id().map_err(internal)?,
                name: name.clone(),
                group_id: new_group_id().map_err(internal)?,
                created: now(),
                policies: BTreeMap::new(),
                attached: BTreeMap::new(),
            };
            let id = record.group_id.clone();
            catalog
                .iam_change(|index, ch| {
                    if index.groups.contains_key(&name) {
                        return Err(ApiError::ResourceInUse(format!(
                            "Group with name {name} already exists."
                        )));
                    }
                    ch.put_group(record);
                    Ok(())
                })
                .await?;
            Ok(
                json!({"Group": {"GroupName": name, "GroupId": id, "Arn": group_arn(&account, &name)}}),
            )
        }
        AdminOp::DeleteGroup => {
            let name = group()?;
            catalog
                .iam_change(|index, ch| {
                    let Some(g) = index.groups.get(&name) else {
                        return Err(no_group(&name));
                    };
                    if !index.members_of(&name).is_empty() {
                        return Err(conflict("must remove users from group first"));
                    }
                    policies_conflict(&g.record.policies, &g.record.attached)?;
                    ch.delete_group(&name);
                    Ok(())
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::ListGroups => {
            let index = catalog.principals();
            let groups: Vec<Value> = index
                .groups
                .values()
                .map(|g| {
                    json!({"GroupName": g.record.name, "GroupId": g.record.group_id,
                        "Arn": group_arn(&account, &g.record.name), "CreateDate": g.record.created,
                        "Policies": g.record.policies.keys().collect::<Vec<_>>(),
                        "AttachedPolicies": g.record.attached.keys().collect::<Vec<_>>(),
                        "Members": index.members_of(&g.record.name)})
                })
                .collect();
            Ok(json!({"Groups": groups}))
        }
        AdminOp::AddUserToGroup | AdminOp::RemoveUserFromGroup => {
            let (g, u) = (group()?, user()?);
            let add = op == AdminOp::AddUserToGroup;
            change_user(catalog, &u, |rec, index| {
                if !index.groups.contains_key(&g) {
                    return Err(no_group(&g));
                }
                if add {
                    rec.groups.insert(g.clone());
                } else {
                    rec.groups.remove(&g);
                }
                Ok(())
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::PutGroupPolicy => {
            let (g, (pn, doc)) = (group()?, policy()?);
            check_policy(&pn, &doc, PolicyKind::Identity)?;
            let entity = format!("group {g}");
            change_group(catalog, &g, |rec, _, _| {
                put_inline(
                    &mut rec.policies,
                    pn,
                    doc,
                    GROUP_INLINE_POLICY_MAX_CHARS,
                    &entity,
                )
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::AttachGroupPolicy => {
            let (g, (pn, doc)) = (group()?, policy()?);
            check_policy(&pn, &doc, PolicyKind::Identity)?;
            let entity = format!("group {g}");
            change_group(catalog, &g, |rec, _, _| {
                put_attached(&mut rec.attached, pn, doc, &entity)
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::DeleteGroupPolicy | AdminOp::DetachGroupPolicy => {
            let (g, pn) = (group()?, policy_name()?);
            change_group(catalog, &g, |rec, _, _| {
                let map = if op == AdminOp::DeleteGroupPolicy {
                    &mut rec.policies
                } else {
                    &mut rec.attached
                };
                remove_named(map, &pn)
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::CreateRole => {
            let name = role()?;
            let max = input
                .max_session_duration
                .unwrap_or(DEFAULT_MAX_SESSION_SECS);
            if !(DEFAULT_MAX_SESSION_SECS..=MAX_SESSION_SECS).contains(&max) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between {DEFAULT_MAX_SESSION_SECS} and {MAX_SESSION_SECS}"
                )));
            }
            if let Some(b) = &input.permissions_boundary {
                check_policy("permissions-boundary", b, PolicyKind::Boundary)?;
            }
            let trust = match &input.assume_role_policy_document {
                Some(d) => d.clone(),
                None => default_trust_policy(&account),
            };
            trust_doc(&trust)?;
            let record = RoleRecord {
                id: new_record_id().map_err(internal)?,
                name: name.clone(),
                role_id: new_role_id().map_err(internal)?,
                created: now(),
                tags: tag_map(input.tags.clone().unwrap_or_default())?,
                policies: BTreeMap::new(),
                attached: BTreeMap::new(),
                boundary: input.permissions_boundary.clone(),
                trust_policy: Some(trust.clone()),
                max_session_secs: max,
                sessions: Vec::new(),
            };
            let id = record.role_id.clone();
            catalog
                .iam_change(|index, ch| {
                    if index.roles.contains_key(&name) {
                        return Err(ApiError::ResourceInUse(format!(
                            "Role with name {name} already exists."
                        )));
                    }
                    ch.put_role(record);
                    Ok(())
                })
                .await?;
            Ok(
                json!({"Role": {"RoleName": name, "RoleId": id, "Arn": role_arn(&account, &name),
                "MaxSessionDuration": max, "AssumeRolePolicyDocument": trust}}),
            )
        }
        AdminOp::DeleteRole => {
            let name = role()?;
            catalog
                .iam_change(|index, ch| {
                    let Some(r) = index.roles.get(&name) else {
                        return Err(no_role(&name));
                    };
                    policies_conflict(&r.record.policies, &r.record.attached)?;
                    // Its sessions' keys go with it (the index drops them).
                    ch.delete_role(&name);
                    Ok(())
                })
                .await?;
            Ok(json!({}))
        }
        AdminOp::ListRoles => {
            let index = catalog.principals();
            let roles: Vec<Value> = index
                .roles
                .values()
                .map(|r| {
                    json!({"RoleName": r.record.name, "RoleId": r.record.role_id,
                        "Arn": role_arn(&account, &r.record.name), "CreateDate": r.record.created,
                        "MaxSessionDuration": r.record.max_session_secs,
                        "Policies": r.record.policies.keys().collect::<Vec<_>>(),
                        "AttachedPolicies": r.record.attached.keys().collect::<Vec<_>>(),
                        "PermissionsBoundary": r.record.boundary.is_some(),
                        "AssumeRolePolicyDocument": r.trust.source(),
                        "Tags": r.record.tags})
                })
                .collect();
            Ok(json!({"Roles": roles}))
        }
        AdminOp::PutRolePolicy => {
            let (r, (pn, doc)) = (role()?, policy()?);
            check_policy(&pn, &doc, PolicyKind::Identity)?;
            let entity = format!("role {r}");
            change_role(catalog, &r, |rec| {
                put_inline(
                    &mut rec.policies,
                    pn,
                    doc,
                    ROLE_INLINE_POLICY_MAX_CHARS,
                    &entity,
                )
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::AttachRolePolicy => {
            let (r, (pn, doc)) = (role()?, policy()?);
            check_policy(&pn, &doc, PolicyKind::Identity)?;
            let entity = format!("role {r}");
            change_role(catalog, &r, |rec| {
                put_attached(&mut rec.attached, pn, doc, &entity)
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::DeleteRolePolicy | AdminOp::DetachRolePolicy => {
            let (r, pn) = (role()?, policy_name()?);
            change_role(catalog, &r, |rec| {
                let map = if op == AdminOp::DeleteRolePolicy {
                    &mut rec.policies
                } else {
                    &mut rec.attached
                };
                remove_named(map, &pn)
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::PutUserPermissionsBoundary | AdminOp::DeleteUserPermissionsBoundary => {
            let u = user()?;
            let doc = boundary_doc(op == AdminOp::PutUserPermissionsBoundary, &input)?;
            change_user(catalog, &u, |rec, _| {
                rec.boundary = doc;
                Ok(())
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::PutRolePermissionsBoundary | AdminOp::DeleteRolePermissionsBoundary => {
            let r = role()?;
            let doc = boundary_doc(op == AdminOp::PutRolePermissionsBoundary, &input)?;
            change_role(catalog, &r, |rec| {
                rec.boundary = doc;
                Ok(())
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::TagUser => {
            let u = user()?;
            let tags = tag_map(required(input.tags.clone(), "tags")?)?;
            change_user(catalog, &u, |rec, _| merge_tags(&mut rec.tags, tags)).await?;
            Ok(json!({}))
        }
        AdminOp::TagRole => {
            let r = role()?;
            let tags = tag_map(required(input.tags.clone(), "tags")?)?;
            change_role(catalog, &r, |rec| merge_tags(&mut rec.tags, tags)).await?;
            Ok(json!({}))
        }
        AdminOp::UpdateAssumeRolePolicy => {
            let r = role()?;
            let doc = required(input.policy_document.clone(), "policyDocument")?;
            trust_doc(&doc)?;
            change_role(catalog, &r, |rec| {
                rec.trust_policy = Some(doc);
                Ok(())
            })
            .await?;
            Ok(json!({}))
        }
        AdminOp::CreateRoleSession => create_session(catalog, role()?, &input).await,
        other => Err(ApiError::Internal(format!(
            "admin operation {} has no handler",
            other.name()
        ))),
    }
}

fn boundary_doc(put: bool, input: &AdminInput) -> Result<Option<String>, ApiError> {
    if !put {
        return Ok(None);
    }
    let doc = required(input.permissions_boundary.clone(), "permissionsBoundary")?;
    if non_ws_chars(&doc) > MANAGED_POLICY_MAX_CHARS {
        return Err(ApiError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {MANAGED_POLICY_MAX_CHARS}"
        )));
    }
    check_policy("permissions-boundary", &doc, PolicyKind::Boundary)?;
    Ok(Some(doc))
}

/// STS AssumeRole, sealdb style: temporary credentials for a session of the role.
async fn create_session(
    catalog: &Catalog,
    role: String,
    input: &AdminInput,
) -> Result<Value, ApiError> {
    let session_name = required(input.role_session_name.clone(), "roleSessionName")?;
    if !valid_session_name(&session_name) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]{{2,64}}"
        )));
    }
    let account = catalog.account.clone();
    let id = new_session_key_id().map_err(internal)?;
    let secret = new_secret_key().map_err(internal)?;
    let token = new_session_token().map_err(internal)?;
    let created = now();
    let requested = input.duration_seconds.unwrap_or(DEFAULT_MAX_SESSION_SECS);
    let (expires, role_id) = change_role(catalog, &role, |rec| {
        if requested < MIN_SESSION_SECS || requested > rec.max_session_secs {
            return Err(ApiError::validation(format!(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role (allowed: {MIN_SESSION_SECS}-{}).",
                rec.max_session_secs
            )));
        }
        let live = rec.sessions.iter().filter(|s| s.expires > created).count();
        if live >= MAX_SESSIONS_PER_ROLE {
            return Err(ApiError::LimitExceeded(format!(
                "The role {} has {MAX_SESSIONS_PER_ROLE} live sessions",
                rec.name
            )));
        }
        let expires = created + requested as f64;
        rec.sessions.push(SessionRecord {
            access_key_id: id.clone(),
            secret: secret.clone(),
            token: token.clone(),
            session_name: session_name.clone(),
            created,
            expires,
        });
        Ok((expires, rec.role_id.clone()))
    })
    .await?;
    let expiration = time::OffsetDateTime::from_unix_timestamp(expires as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    // The only time the secret and token leave the server.
    Ok(json!({
        "Credentials": {"AccessKeyId": id, "SecretAccessKey": secret.as_str(),
                        "SessionToken": token.as_str(), "Expiration": expiration},
        "AssumedRoleUser": {"AssumedRoleId": format!("{role_id}:{session_name}"),
                            "Arn": session_arn(&account, &role, &session_name)}
    }))
}
