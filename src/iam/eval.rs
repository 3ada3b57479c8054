//! Policy evaluation for a request within one account -> an explained [`Decision`].
//!
//! Follows IAM's documented logic (IAM User Guide, "Policy evaluation logic", "How AWS
//! enforcement code logic evaluates requests", "Permissions boundaries"):
//! 1. an explicit Deny in any identity-based policy, the resource-based policy or the
//!    permissions boundary denies;
//! 2. the account root user is allowed everything not explicitly denied;
//! 3. a resource-based policy that names the caller directly (the IAM user ARN, the role
//!    session ARN, or `*`) allows on its own: implicit denies in identity policies and the
//!    boundary do not limit it;
//! 4. a resource-based policy that names the role ARN allows unless the boundary (when there is
//!    one) does not allow; it does not need an identity-based allow;
//! 5. a resource-based policy that names the account delegates to the account: it grants
//!    nothing by itself;
//! 6. otherwise an identity-based allow is needed, and the boundary (when there is one) must
//!    allow as well.
//!
//! A role's trust policy (a [`PolicyKind::Trust`] in the resource slot, for `sts:AssumeRole`)
//! is the documented exception ("Role trust policies and KMS key policies are exceptions ...
//! they must explicitly allow access for principals"): it must itself allow the caller, by
//! ARN (rules 3-4 then apply) or by account (rule 5: the identity policy must also allow); an
//! identity-based allow alone is not enough, and the account root user cannot assume a role.

use super::context::RequestFacts;
use super::policy::{
    ActionPat, ActionSpec, Policy, PolicyKind, PrincipalId, PrincipalSpec, ResourceSpec, Statement,
    StmtEffect,
};
use super::variables::{key_hash, ContextKey, Derived};
use super::wildcard::{ArnParts, Fold, Tri};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A request context value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Str(String),
    /// A multivalued key; an empty list is present (and differs from an absent key).
    List(Vec<String>),
    Bool(bool),
    /// A number in decimal text form.
    Num(String),
}

impl ContextValue {
    /// Reads a simulator-style JSON value: string, number, boolean, or array of those.
    pub fn from_json(v: &serde_json::Value) -> Option<ContextValue> {
        use serde_json::Value as J;
        match v {
            J::String(s) => Some(ContextValue::Str(s.clone())),
            J::Bool(b) => Some(ContextValue::Bool(*b)),
            J::Number(n) => Some(ContextValue::Num(n.to_string())),
            J::Array(items) => items
                .iter()
                .map(|i| match i {
                    J::String(s) => Some(s.clone()),
                    J::Number(n) => Some(n.to_string()),
                    J::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(ContextValue::List),
            J::Null | J::Object(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalKind {
    IAMUser,
    AssumedRole,
    Root,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalInfo {
    #[serde(rename = "type")]
    pub kind: PrincipalKind,
    /// User ARN, role session ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) or root ARN.
    pub arn: String,
    pub account: String,
    #[serde(default)]
    pub userid: String,
    #[serde(default)]
    pub username: Option<String>,
    /// For a role session: the role's ARN (`arn:aws:iam::ACCOUNT:role/ROLE`).
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

pub struct AuthzRequest<'a> {
    pub principal: &'a PrincipalInfo,
    pub action: &'a str,
    pub resource: &'a str,
    /// Keys as AWS spells them; lookups ignore ASCII case (the first of equal keys counts).
    /// Keys describing the principal (`aws:username`, `aws:userid`, `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:PrincipalTag/*`) fall back to
    /// `principal` when absent here, and the global keys of the transport and the clock to
    /// `facts` (none given: such keys are missing unless the context carries them).
    pub context: &'a [(String, ContextValue)],
    pub facts: Option<&'a RequestFacts<'a>>,
}

pub struct PolicySet<'a> {
    pub identity: &'a [Arc<Policy>],
    pub boundary: Option<&'a Policy>,
    pub resource: Option<&'a Policy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// The policy type that caused a deny (AccessDeniedException names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyType {
    IdentityBased,
    ResourceBased,
    PermissionsBoundary,
}

impl PolicyType {
    fn phrase(self) -> &'static str {
        match self {
            PolicyType::IdentityBased => "identity-based policy",
            PolicyType::ResourceBased => "resource-based policy",
            PolicyType::PermissionsBoundary => "permissions boundary",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedStatement {
    pub policy: String,
    pub index: usize,
    pub sid: Option<String>,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub decision: Effect,
    pub matched_statements: Vec<MatchedStatement>,
    pub missing_context_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<PolicyType>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.decision == Effect::Allow
    }

    /// The tail of AWS's AccessDenied message: "with an explicit deny in an identity-based
    /// policy" or "because no permissions boundary allows the dynamodb:PutItem action".
    pub fn denial_reason(&self, action: &str) -> Option<String> {
        let t = self.denied_by?;
        let article = if t == PolicyType::IdentityBased {
            "an"
        } else {
            "a"
        };
        match self.decision {
            Effect::Allow => None,
            Effect::ExplicitDeny => {
                Some(format!("with an explicit deny in {article} {}", t.phrase()))
            }
            Effect::ImplicitDeny => Some(format!(
                "because no {} allows the {action} action",
                t.phrase()
            )),
        }
    }
}

/// A context value as the evaluator reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'x> {
    Str(&'x str),
    List(&'x [String]),
    Bool(bool),
}

/// Key lookup over the request context, with principal-derived fallbacks.
pub(crate) struct Ctx<'x> {
    principal: &'x PrincipalInfo,
    facts: Option<&'x RequestFacts<'x>>,
    /// (key hash, key, value): a request context is small, so a scan comparing precomputed
    /// hashes beats hashing the key name for every lookup, and it ignores case for free.
    entries: Vec<(u64, &'x str, &'x ContextValue)>,
}

fn to_val(v: &ContextValue) -> Val<'_> {
    match v {
        ContextValue::Str(s) | ContextValue::Num(s) => Val::Str(s),
        ContextValue::List(l) => Val::List(l),
        ContextValue::Bool(b) => Val::Bool(*b),
    }
}

impl<'x> Ctx<'x> {
    pub(crate) fn get(&self, key: &ContextKey) -> Option<Val<'x>> {
        let name: &str = &key.canonical;
        if let Some((_, _, v)) = self
            .entries
            .iter()
            .find(|(h, k, _)| *h == key.hash && k.eq_ignore_ascii_case(name))
        {
            return Some(to_val(v));
        }
        let p = self.principal;
        let s: &'x str = match &key.derived {
            Derived::None => return None,
            Derived::Global(g) => return self.facts.map(|f| f.get(*g)),
            Derived::Username => match p.kind {
                PrincipalKind::IAMUser => p.username.as_deref()?,
                _ => return None,
            },
            Derived::UserId => &p.userid,
            Derived::PrincipalArn => match p.kind {
                PrincipalKind::AssumedRole => p.role_arn.as_deref().unwrap_or(&p.arn),
                _ => &p.arn,
            },
            Derived::PrincipalAccount => &p.account,
            Derived::PrincipalType => match p.kind {
                PrincipalKind::IAMUser => "User",
                PrincipalKind::AssumedRole => "AssumedRole",
                PrincipalKind::Root => "Account",
            },
            Derived::PrincipalTag(t) => match p.tags.get(&**t) {
                Some(v) => v,
                None => p.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(t))?.1,
            },
        };
        if s.is_empty() && matches!(key.derived, Derived::UserId) {
            return None;
        }
        Some(Val::Str(s))
    }

    /// A single-valued key as text (policy variables); multivalued keys have no such value.
    pub(crate) fn get_str(&self, key: &ContextKey) -> Option<&'x str> {
        match self.get(key)? {
            Val::Str(s) => Some(s),
            Val::Bool(true) => Some("true"),
            Val::Bool(false) => Some("false"),
            Val::List(_) => None,
        }
    }
}

/// How a resource-policy statement names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    Account,
    Role,
    Direct,
}

#[derive(Default)]
struct Tally {
    allow: bool,
    deny: bool,
    grant: Option<Grant>,
}

struct Acc<'x> {
    matched: Vec<MatchedStatement>,
    missing: Vec<&'x str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Identity,
    Boundary,
    Resource { boundary_present: bool },
}

struct Req<'x> {
    action: &'x str,
    service: &'x str,
    action_name: &'x str,
    resource: Option<ArnParts<'x>>,
    principal: &'x PrincipalInfo,
}

pub fn evaluate(req: &AuthzRequest<'_>, policies: &PolicySet<'_>) -> Decision {
    let ctx = Ctx {
        principal: req.principal,
        facts: req.facts,
        entries: req
            .context
            .iter()
            .map(|(k, v)| (key_hash(k), k.as_str(), v))
            .collect(),
    };
    let (service, action_name) = req.action.split_once(':').unwrap_or(("", req.action));
    let r = Req {
        action: req.action,
        service,
        action_name,
        resource: ArnParts::split(req.resource),
        principal: req.principal,
    };
    let mut acc = Acc {
        matched: Vec::new(),
        missing: Vec::new(),
    };
    let mut id = Tally::default();
    for p in policies.identity {
        let t = eval_policy(p, Slot::Identity, &r, &ctx, &mut acc);
        id.allow |= t.allow;
        id.deny |= t.deny;
    }
    let bd = policies
        .boundary
        .map(|p| eval_policy(p, Slot::Boundary, &r, &ctx, &mut acc));
    let rs = policies.resource.map(|p| {
        let slot = Slot::Resource {
            boundary_present: policies.boundary.is_some(),
        };
        eval_policy(p, slot, &r, &ctx, &mut acc)
    });

    let trust = policies
        .resource
        .is_some_and(|p| p.kind() == PolicyKind::Trust);
    let r_deny = rs.as_ref().is_some_and(|t| t.deny);
    let b_deny = bd.as_ref().is_some_and(|t| t.deny);
    let (decision, denied_by) = if id.deny || r_deny || b_deny {
        let by = if id.deny {
            PolicyType::IdentityBased
        } else if r_deny {
            PolicyType::ResourceBased
        } else {
            PolicyType::PermissionsBoundary
        };
        (Effect::ExplicitDeny, Some(by))
    } else if req.principal.kind == PrincipalKind::Root && !trust {
        (Effect::Allow, None)
    } else {
        let boundary_ok = bd.as_ref().is_none_or(|t| t.allow);
        let grant = rs.as_ref().and_then(|t| t.grant);
        let allowed = grant == Some(Grant::Direct)
            || (grant == Some(Grant::Role) && boundary_ok)
            || (id.allow && boundary_ok);
        if trust && (grant.is_none() || req.principal.kind == PrincipalKind::Root) {
            (Effect::ImplicitDeny, Some(PolicyType::ResourceBased))
        } else if allowed {
            (Effect::Allow, None)
        } else if (id.allow || grant == Some(Grant::Role)) && !boundary_ok {
            (Effect::ImplicitDeny, Some(PolicyType::PermissionsBoundary))
        } else {
            (Effect::ImplicitDeny, Some(PolicyType::IdentityBased))
        }
    };

    let mut missing: Vec<String> = Vec::with_capacity(acc.missing.len());
    acc.missing.sort_unstable_by_key(|k| k.to_ascii_lowercase());
    for k in acc.missing {
        if !missing
            .last()
            .is_some_and(|m: &String| m.eq_ignore_ascii_case(k))
        {
            missing.push(k.to_owned());
        }
    }
    Decision {
        decision,
        matched_statements: acc.matched,
        missing_context_keys: missing,
        denied_by,
    }
}

fn eval_policy<'x>(
    policy: &'x Policy,
    slot: Slot,
    r: &Req<'x>,
    ctx: &Ctx<'x>,
    acc: &mut Acc<'x>,
) -> Tally {
    let mut t = Tally::default();
    for &next in policy.index.candidates(r.action) {
        let Some(st) = policy.statements.get(next) else {
            continue;
        };
        let grant = match slot {
            Slot::Resource { boundary_present } => match &st.principal {
                Some(spec) => match principal_grant(spec, r.principal, st.effect, boundary_present)
                {
                    Some(g) => Some(g),
                    None => continue,
                },
                None => continue,
            },
            _ => None,
        };
        if !statement_applies(st, r, ctx, acc) {
            continue;
        }
        acc.matched.push(MatchedStatement {
            policy: policy.name().to_owned(),
            index: next,
            sid: st.sid.clone(),
            effect: match st.effect {
                StmtEffect::Allow => "Allow",
                StmtEffect::Deny => "Deny",
            }
            .to_owned(),
        });
        match st.effect {
            StmtEffect::Deny => t.deny = true,
            StmtEffect::Allow => {
                t.allow = true;
                t.grant = t.grant.max(grant);
            }
        }
    }
    t
}

/// Action, Resource and Condition of one statement; records the keys a relevant statement
/// referenced that the context lacks.
fn statement_applies<'x>(st: &'x Statement, r: &Req<'x>, ctx: &Ctx<'x>, acc: &mut Acc<'x>) -> bool {
    let action_hit = |pats: &[ActionPat]| {
        pats.iter().any(|p| match p {
            ActionPat::Any => true,
            ActionPat::Service { service, name } => {
                service.eq_ignore_ascii_case(r.service)
                    && name.matches(r.action_name, Fold::Ascii, &mut |_| None) == Tri::Match
            }
        })
    };
    let action_ok = match &st.actions {
        ActionSpec::Action(p) => action_hit(p),
        ActionSpec::NotAction(p) => !action_hit(p),
    };
    if !action_ok {
        return false;
    }
    let mut resolve = |k: &'x ContextKey| ctx.get_str(k);
    let resource = match &st.resources {
        ResourceSpec::Resource(ps) => {
            let mut out = Tri::NoMatch;
            for p in ps {
                match p.matches(r.resource.as_ref(), &mut resolve) {
                    Tri::Match => {
                        out = Tri::Match;
                        break;
                    }
                    Tri::Unresolved => out = Tri::Unresolved,
                    Tri::NoMatch => {}
                }
            }
            out
        }
        // an entry whose variable has no value names no resource, so it excludes nothing
        ResourceSpec::NotResource(ps) => {
            if ps
                .iter()
                .any(|p| p.matches(r.resource.as_ref(), &mut resolve) == Tri::Match)
            {
                Tri::NoMatch
            } else {
                Tri::Match
            }
        }
    };
    if resource == Tri::NoMatch {
        return false;
    }
    for k in &st.refs {
        if ctx.get(k).is_none() {
            acc.missing.push(&k.canonical);
        }
    }
    resource == Tri::Match && st.conditions.iter().all(|c| c.eval(ctx))
}

fn listed_account(ids: &[PrincipalId], account: &str) -> bool {
    ids.iter().any(|i| {
        matches!(i, PrincipalId::Any) || matches!(i, PrincipalId::Account(a) if **a == *account)
    })
}

fn listed_arn(ids: &[PrincipalId], arn: &str) -> bool {
    ids.iter()
        .any(|i| matches!(i, PrincipalId::Any) || matches!(i, PrincipalId::Arn(a) if **a == *arn))
}

/// How a resource-policy statement's Principal/NotPrincipal applies to the caller.
fn principal_grant(
    spec: &PrincipalSpec,
    p: &PrincipalInfo,
    effect: StmtEffect,
    boundary_present: bool,
) -> Option<Grant> {
    if spec.not {
        // IAM documents that a Deny with NotPrincipal always applies to a principal that has a
        // permissions boundary, whatever NotPrincipal lists.
        if effect == StmtEffect::Deny && boundary_present {
            return Some(Grant::Direct);
        }
        // A request carries the account, the user or session, and for a session the role:
        // NotPrincipal excludes the caller only when every one of them is listed.
        let mut any_listed = listed_account(&spec.ids, &p.account);
        let mut all_listed = any_listed;
        let mut check = |arn: &str| {
            let l = listed_arn(&spec.ids, arn);
            any_listed |= l;
            all_listed &= l;
        };
        if p.kind != PrincipalKind::Root {
            check(&p.arn);
        }
        if let (PrincipalKind::AssumedRole, Some(role)) = (p.kind, &p.role_arn) {
            check(role);
        }
        return match effect {
            StmtEffect::Deny => (!all_listed).then_some(Grant::Direct),
            // an Allow with NotPrincipal: only callers none of whose identities are listed
            StmtEffect::Allow => (!any_listed).then_some(Grant::Direct),
        };
    }
    let mut best: Option<Grant> = None;
    for id in &spec.ids {
        let g = match id {
            PrincipalId::Any => Some(Grant::Direct),
            PrincipalId::Account(a) if **a == *p.account => Some(Grant::Account),
            PrincipalId::Arn(a) if p.kind != PrincipalKind::Root && **a == *p.arn => {
                Some(Grant::Direct)
            }
            PrincipalId::Arn(a)
                if p.kind == PrincipalKind::AssumedRole && p.role_arn.as_deref() == Some(&**a) =>
            {
                Some(Grant::Role)
            }
            _ => None,
        };
        best = best.max(g);
    }
    best
}
