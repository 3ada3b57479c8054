//! PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy on tables. The policy is stored
//! with the table definition (sealed in the catalog) and compiled when stored; evaluation reads
//! the compiled form from the live table entry (http/pipeline.rs).

use serde::Deserialize;
use serde_json::{json, Value};

use super::Services;
use crate::error::ApiError;
use crate::iam::context::Target;
use crate::iam::table_policy::TablePolicy;
use crate::iam::targets::Targets;
use crate::protocol::input::required;

/// DynamoDB: ExpectedRevisionId that means "only when the table has no policy yet".
pub const NO_POLICY: &str = "NO_POLICY";
// DynamoDB service model: PolicyRevisionId is 1-255 characters.
const MAX_REVISION_ID_LEN: usize = 255;
// DynamoDB service model: ResourceArnString is 1-1283 characters.
const MAX_RESOURCE_ARN_LEN: usize = 1283;

#[derive(Debug, thiserror::Error)]
pub enum ResourcePolicyError {
    /// DynamoDB's PolicyNotFoundException.
    #[error("{0}")]
    PolicyNotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<ResourcePolicyError> for ApiError {
    fn from(e: ResourcePolicyError) -> Self {
        match e {
            ResourcePolicyError::PolicyNotFound(m) => ApiError::PolicyNotFound(m),
            ResourcePolicyError::Invalid(m) => ApiError::Validation(m),
        }
    }
}

/// The input of all three operations (members they do not use are ignored).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourcePolicyInput {
    pub resource_arn: Option<String>,
    pub policy: Option<String>,
    pub expected_revision_id: Option<String>,
    /// Accepted for compatibility; sealdb does not second-guess a policy that locks the
    /// caller out (the dev credentials or offline CLI can always remove it).
    pub confirm_remove_self_resource_access: Option<bool>,
}

/// The table named by a resource ARN of this server (`arn:aws:dynamodb:R:A:table/NAME`).
pub fn table_of_arn(svc: &Services, arn: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::Validation(format!(
            "Invalid ResourceArn provided as input {arn}: expected arn:aws:dynamodb:{}:{}:table/TABLE",
            svc.config.region, svc.config.account_id
        ))
    };
    if arn.is_empty() || arn.len() > MAX_RESOURCE_ARN_LEN {
        return Err(invalid());
    }
    let prefix = format!(
        "arn:aws:dynamodb:{}:{}:table/",
        svc.config.region, svc.config.account_id
    );
    let name = arn.strip_prefix(&prefix).ok_or_else(invalid)?;
    // Stream ARNs (table/NAME/stream/...) name a resource sealdb does not have.
    if name.is_empty() || name.contains('/') {
        return Err(invalid());
    }
    Ok(name.to_string())
}

/// The table name a request's resource ARN is about: `table/NAME` or `table/NAME/index/...`.
pub fn table_name_in(resource: &str) -> Option<&str> {
    let (_, rest) = resource.split_once(":table/")?;
    Some(rest.split('/').next().unwrap_or(rest)).filter(|n| !n.is_empty())
}

impl Targets for (crate::protocol::Operation, &ResourcePolicyInput) {
    fn targets(&self, svc: &Services) -> Result<Vec<Target>, ApiError> {
        let arn = required(self.1.resource_arn.clone(), "resourceArn")?;
        table_of_arn(svc, &arn)?;
        Ok(vec![Target::new(
            format!("dynamodb:{}", self.0.name()),
            arn,
        )])
    }
}

fn check_revision(id: &Option<String>) -> Result<(), ApiError> {
    if let Some(r) = id {
        if r.is_empty() || r.len() > MAX_REVISION_ID_LEN {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{r}' at 'expectedRevisionId' failed to satisfy constraint: Member must have length between 1 and {MAX_REVISION_ID_LEN}"
            )));
        }
    }
    Ok(())
}

fn not_found(arn: &str) -> ResourcePolicyError {
    ResourcePolicyError::PolicyNotFound(format!(
        "Resource-based policy not found for the provided ResourceArn: {arn}"
    ))
}

fn mismatch(arn: &str, expected: &str) -> ResourcePolicyError {
    ResourcePolicyError::PolicyNotFound(format!(
        "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {expected}, but the policy associated to target table {arn} does not match"
    ))
}

/// A revision id that orders after `previous`: milliseconds since the epoch, bumped past the
/// previous id when the clock has not moved on.
fn next_revision(previous: Option<&str>) -> String {
    let now = (crate::util::epoch_seconds_f64() * 1000.0) as u64;
    let prev = previous.and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
    now.max(prev.saturating_add(1)).to_string()
}

pub async fn put_resource_policy(
    svc: &Services,
    input: ResourcePolicyInput,
) -> Result<Value, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    let doc = required(input.policy, "policy")?;
    check_revision(&input.expected_revision_id)?;
    let name = table_of_arn(svc, &arn)?;
    svc.table(&name)?;
    // Compiled before the catalog lock: a bad document never reaches storage.
    let compiled = TablePolicy::compile(&doc, String::new()).map_err(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        ResourcePolicyError::Invalid(format!("Invalid policy document: {}", text.join("; ")))
    })?;
    let expected = input.expected_revision_id;
    let (_, revision) = svc
        .catalog
        .update_table(&name, |def| -> Result<String, ApiError> {
            let current = def.resource_policy.as_ref().map(|p| p.revision_id.as_str());
            match (expected.as_deref(), current) {
                (None, _) => {}
                (Some(NO_POLICY), None) => {}
                (Some(e), Some(c)) if e == c => {}
                (Some(e), _) => return Err(mismatch(&arn, e).into()),
            }
            let revision = next_revision(current);
            def.resource_policy = Some(TablePolicy {
                revision_id: revision.clone(),
                compiled: compiled.compiled,
            });
            Ok(revision)
        })
        .await?;
    Ok(json!({ "RevisionId": revision }))
}

pub async fn get_resource_policy(
    svc: &Services,
    input: ResourcePolicyInput,
) -> Result<Value, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    let name = table_of_arn(svc, &arn)?;
    let entry = svc.table(&name)?;
    let p = entry
        .def
        .resource_policy
        .as_ref()
        .ok_or_else(|| not_found(&arn))?;
    Ok(json!({ "Policy": p.document(), "RevisionId": p.revision_id }))
}

pub async fn delete_resource_policy(
    svc: &Services,
    input: ResourcePolicyInput,
) -> Result<Value, ApiError> {
    let arn = required(input.resource_arn, "resourceArn")?;
    check_revision(&input.expected_revision_id)?;
    let name = table_of_arn(svc, &arn)?;
    svc.table(&name)?;
    let expected = input.expected_revision_id;
    let (_, revision) = svc
        .catalog
        .update_table(&name, |def| -> Result<String, ApiError> {
            let current = def
                .resource_policy
                .as_ref()
                .map(|p| p.revision_id.clone())
                .ok_or_else(|| not_found(&arn))?;
            if let Some(e) = &expected {
                if *e != current {
                    return Err(mismatch(&arn, e).into());
                }
            }
            def.resource_policy = None;
            Ok(current)
        })
        .await?;
    Ok(json!({ "RevisionId": revision }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_in_resource_arns() {
        let t = "arn:aws:dynamodb:us-east-1:000000000000:table/Orders";
        assert_eq!(table_name_in(t), Some("Orders"));
        assert_eq!(table_name_in(&format!("{t}/index/ByDate")), Some("Orders"));
        assert_eq!(table_name_in("*"), None);
        assert_eq!(
            table_name_in("arn:aws:dynamodb:us-east-1:000000000000:table/"),
            None
        );
    }

    #[test]
    fn revisions_increase() {
        let a = next_revision(None);
        let b = next_revision(Some(&a));
        assert!(b.parse::<u64>().unwrap() > a.parse::<u64>().unwrap());
        let far = "99999999999999";
        assert_eq!(next_revision(Some(far)), "100000000000000");
    }
}
