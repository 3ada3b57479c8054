//! SimulatePrincipalPolicy: `sealdb policy simulate` for a stored principal. The identity
//! policies and the boundary are the principal's own (a user's with its groups', or a role's
//! for a session of it); the request carries action, resource, a complete context, and
//! optionally a resource-based policy (else the table's stored one applies).

use serde_json::Value;

use super::{iam_name, AdminInput};
use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::iam::eval::{evaluate, AuthzRequest, ContextValue, PolicySet};
use crate::iam::policy::{Policy, PolicyKind};
use crate::protocol::input::required;

// The session name a simulated role session gets when the request names none.
const DEFAULT_SESSION_NAME: &str = "simulated-session";

pub(super) fn run(catalog: &Catalog, input: AdminInput) -> Result<Value, ApiError> {
    let index = catalog.principals();
    let subject = match (&input.user_name, &input.role_name) {
        (Some(_), None) => {
            let name = iam_name(&input.user_name, "userName")?;
            index
                .by_name
                .get(&name)
                .map(|p| p.subject.clone())
                .ok_or_else(|| {
                    ApiError::ResourceNotFound(format!(
                        "The user with name {name} cannot be found."
                    ))
                })?
        }
        (None, Some(_)) => {
            let name = iam_name(&input.role_name, "roleName")?;
            let role = index.roles.get(&name).ok_or_else(|| {
                ApiError::ResourceNotFound(format!("The role with name {name} cannot be found."))
            })?;
            let session = input
                .role_session_name
                .as_deref()
                .unwrap_or(DEFAULT_SESSION_NAME);
            std::sync::Arc::new(role.session_subject(session, &catalog.account))
        }
        _ => {
            return Err(ApiError::validation(
                "give exactly one of UserName and RoleName",
            ))
        }
    };
    let action = required(input.action, "action")?;
    let resource = required(input.resource, "resource")?;
    let mut context = Vec::new();
    match &input.context {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let cv = ContextValue::from_json(v).ok_or_else(|| {
                    ApiError::validation(format!("context.{k}: unsupported value {v}"))
                })?;
                context.push((k.clone(), cv));
            }
        }
        Some(_) => return Err(ApiError::validation("context must be an object")),
    }
    let given = match &input.resource_policy {
        None | Some(Value::Null) => None,
        Some(v) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let p = Policy::parse("resource_policy", &text, PolicyKind::Resource).map_err(
                |problems| {
                    ApiError::validation(format!(
                        "MalformedPolicyDocument: {}",
                        crate::catalog::principals::problems_text(&problems)
                    ))
                },
            )?;
            Some(p)
        }
    };
    let table =
        crate::ops::resource_policy::table_name_in(&resource).and_then(|n| catalog.table(n));
    let stored = table
        .as_ref()
        .and_then(|t| t.def.resource_policy.as_ref())
        .map(|p| &*p.compiled);
    let decision = evaluate(
        &AuthzRequest {
            principal: &subject.info,
            action: &action,
            resource: &resource,
            context: &context,
            facts: None,
        },
        &PolicySet {
            identity: &subject.policies,
            boundary: subject.boundary.as_deref(),
            resource: given.as_ref().or(stored),
        },
    );
    let mut out = serde_json::to_value(&decision).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut out {
        m.insert(
            "principal_arn".into(),
            Value::String(subject.info.arn.clone()),
        );
    }
    Ok(out)
}
