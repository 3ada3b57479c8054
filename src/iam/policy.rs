//! IAM policy documents: parse + validate once -> compiled [`Policy`].
//!
//! Validation follows what IAM rejects (IAM User Guide, "IAM JSON policy element reference" and
//! "IAM and AWS STS quotas"), naming the JSON path of every problem. Compilation lowercases
//! action patterns, pre-splits ARN patterns into components, parses typed condition values and
//! policy variables, and builds a per-service index so evaluation only visits statements whose
//! Action could match.

use super::condition::Condition;
use super::json::{self, JVal};
use super::variables::ContextKey;
use super::wildcard::{ArnPattern, Fold, Pattern, Tri};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Which slot a policy fills; decides the Principal rules and the default size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Attached to a user, group or role: Principal/NotPrincipal forbidden.
    Identity,
    /// A table's resource-based policy: Principal or NotPrincipal required.
    Resource,
    /// A permissions boundary (a managed policy): Principal/NotPrincipal forbidden.
    Boundary,
    /// A role's trust policy (AssumeRolePolicyDocument): Principal required, no Resource (the
    /// role is the resource), only STS role actions.
    Trust,
}

// IAM quota: managed policy document, 6,144 characters (whitespace not counted).
pub const MANAGED_POLICY_MAX_CHARS: usize = 6_144;
// IAM quota: aggregate inline policies of a user, 2,048 characters (whitespace not counted).
pub const USER_INLINE_POLICY_MAX_CHARS: usize = 2_048;
// IAM quota: aggregate inline policies of a role, 10,240 characters (whitespace not counted).
pub const ROLE_INLINE_POLICY_MAX_CHARS: usize = 10_240;
// IAM quota: aggregate inline policies of a group, 5,120 characters (whitespace not counted).
pub const GROUP_INLINE_POLICY_MAX_CHARS: usize = 5_120;
// IAM quota: role trust policy length, 2,048 characters (whitespace not counted).
pub const ROLE_TRUST_POLICY_MAX_CHARS: usize = 2_048;
// DynamoDB: a resource-based policy document is at most 20 KB, whitespace counted
// (DynamoDB Developer Guide, "Resource-based policy considerations").
pub const RESOURCE_POLICY_MAX_BYTES: usize = 20 * 1024;

/// How a document's size is measured against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    Unlimited,
    /// IAM counts characters, ignoring whitespace.
    NonWhitespaceChars(usize),
    /// DynamoDB counts bytes, whitespace included.
    Bytes(usize),
}

impl PolicyKind {
    /// Identity and boundary policies: the managed-policy quota; resource: DynamoDB's 20 KB.
    pub fn default_limit(self) -> SizeLimit {
        match self {
            PolicyKind::Identity | PolicyKind::Boundary => {
                SizeLimit::NonWhitespaceChars(MANAGED_POLICY_MAX_CHARS)
            }
            PolicyKind::Resource => SizeLimit::Bytes(RESOURCE_POLICY_MAX_BYTES),
            PolicyKind::Trust => SizeLimit::NonWhitespaceChars(ROLE_TRUST_POLICY_MAX_CHARS),
        }
    }
}

/// One validation problem, located by a JSON path such as `Statement[1].Condition.StringEquals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyProblem {
    pub path: String,
    pub message: String,
}

impl PolicyProblem {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> PolicyProblem {
        PolicyProblem {
            path: if path.is_empty() {
                "$".into()
            } else {
                path.into()
            },
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    V2008_10_17,
    V2012_10_17,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StmtEffect {
    Allow,
    Deny,
}

/// An action pattern: lowercased service prefix and name pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActionPat {
    Any,
    Service { service: Box<str>, name: Pattern },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActionSpec {
    Action(Vec<ActionPat>),
    NotAction(Vec<ActionPat>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResourceSpec {
    Resource(Vec<ArnPattern>),
    NotResource(Vec<ArnPattern>),
}

/// A principal named by a resource policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalId {
    Any,
    /// `123456789012` or `arn:aws:iam::123456789012:root`
    Account(Box<str>),
    Arn(Box<str>),
    /// Service, Federated and CanonicalUser principals: never one of sealdb's principals.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalSpec {
    pub not: bool,
    pub ids: Vec<PrincipalId>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub sid: Option<String>,
    pub effect: StmtEffect,
    pub principal: Option<PrincipalSpec>,
    pub actions: ActionSpec,
    pub resources: ResourceSpec,
    pub conditions: Vec<Condition>,
    /// Every context key the statement reads (conditions and variables), deduplicated.
    pub refs: Vec<ContextKey>,
}

/// Which statements can match a request's action, each list in statement order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ActionIndex {
    /// Lowercased `service:action` named literally in the policy -> every statement whose
    /// Action can match it (literal or wildcard), plus `always`.
    by_action: HashMap<Box<str>, Vec<usize>>,
    /// Lowercased service -> statements naming that service, plus `always`.
    by_service: Vec<(Box<str>, Vec<usize>)>,
    /// `*` actions and NotAction statements: candidates for every request.
    always: Vec<usize>,
}

// Longest action name looked up without allocating; longer names use the service list.
const ACTION_BUF: usize = 128;

impl ActionIndex {
    pub(crate) fn candidates(&self, action: &str) -> &[usize] {
        let mut buf = [0u8; ACTION_BUF];
        if let Some(dst) = buf.get_mut(..action.len()) {
            dst.copy_from_slice(action.as_bytes());
            dst.make_ascii_lowercase();
            if let Ok(lower) = std::str::from_utf8(dst) {
                if let Some(v) = self.by_action.get(lower) {
                    return v;
                }
            }
        }
        let service = action.split_once(':').map_or(action, |(s, _)| s);
        self.by_service
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(service))
            .map_or(&self.always, |(_, v)| v)
    }
}

/// A compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    source: String,
    kind: PolicyKind,
    version: PolicyVersion,
    pub(crate) statements: Vec<Statement>,
    pub(crate) index: ActionIndex,
}

impl Policy {
    /// Parses and validates with the kind's default size limit.
    pub fn parse(name: &str, json: &str, kind: PolicyKind) -> Result<Policy, Vec<PolicyProblem>> {
        Policy::parse_with_limit(name, json, kind, kind.default_limit())
    }

    pub fn parse_with_limit(
        name: &str,
        json: &str,
        kind: PolicyKind,
        limit: SizeLimit,
    ) -> Result<Policy, Vec<PolicyProblem>> {
        let mut problems = Vec::new();
        match limit {
            SizeLimit::Unlimited => {}
            SizeLimit::NonWhitespaceChars(max) => {
                let n = json.chars().filter(|c| !c.is_whitespace()).count();
                if n > max {
                    problems.push(PolicyProblem::new(
                        "",
                        format!("policy document is {n} characters without whitespace; the limit is {max}"),
                    ));
                }
            }
            SizeLimit::Bytes(max) => {
                if json.len() > max {
                    problems.push(PolicyProblem::new(
                        "",
                        format!(
                            "policy document is {} bytes; the limit is {max}",
                            json.len()
                        ),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let doc = match json::parse(json) {
            Ok(d) => d,
            Err(e) => return Err(vec![PolicyProblem::new("", format!("malformed JSON: {e}"))]),
        };
        check_duplicates(&doc, "", &mut problems);
        let compiled = compile_document(&doc, kind, &mut problems);
        match compiled {
            Some((version, statements)) if problems.is_empty() => {
                let index = build_index(&statements);
                Ok(Policy {
                    name: name.to_owned(),
                    source: json.to_owned(),
                    kind,
                    version,
                    statements,
                    index,
                })
            }
            _ => Err(problems),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The original JSON text.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }
}

fn check_duplicates(v: &JVal, path: &str, problems: &mut Vec<PolicyProblem>) {
    match v {
        JVal::Obj(members) => {
            for (i, (k, child)) in members.iter().enumerate() {
                let p = join(path, k);
                if members.iter().take(i).any(|(k2, _)| k2 == k) {
                    problems.push(PolicyProblem::new(&p, format!("duplicate element \"{k}\"")));
                }
                check_duplicates(child, &p, problems);
            }
        }
        JVal::Arr(items) => {
            for (i, child) in items.iter().enumerate() {
                check_duplicates(child, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn get<'v>(members: &'v [(String, JVal)], key: &str) -> Option<&'v JVal> {
    members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn compile_document(
    doc: &JVal,
    kind: PolicyKind,
    problems: &mut Vec<PolicyProblem>,
) -> Option<(PolicyVersion, Vec<Statement>)> {
    let members = match doc {
        JVal::Obj(m) => m,
        other => {
            problems.push(PolicyProblem::new(
                "",
                format!(
                    "a policy document must be a JSON object, not {}",
                    other.type_name()
                ),
            ));
            return None;
        }
    };
    for (k, _) in members {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            problems.push(PolicyProblem::new(
                k,
                format!("unknown policy element \"{k}\""),
            ));
        }
    }
    // IAM: a document without Version is read as 2008-10-17 (no policy variables).
    let version = match get(members, "Version") {
        None => PolicyVersion::V2008_10_17,
        Some(JVal::Str(s)) if s == "2012-10-17" => PolicyVersion::V2012_10_17,
        Some(JVal::Str(s)) if s == "2008-10-17" => PolicyVersion::V2008_10_17,
        Some(other) => {
            problems.push(PolicyProblem::new(
                "Version",
                format!(
                    "Version must be \"2012-10-17\" or \"2008-10-17\", not {}",
                    show(other)
                ),
            ));
            PolicyVersion::V2012_10_17
        }
    };
    if let Some(id) = get(members, "Id") {
        if !matches!(id, JVal::Str(_)) {
            problems.push(PolicyProblem::new("Id", "Id must be a string"));
        }
    }
    let vars = version == PolicyVersion::V2012_10_17;
    let list: Vec<(String, &JVal)> = match get(members, "Statement") {
        None => {
            problems.push(PolicyProblem::new("Statement", "Statement is required"));
            return None;
        }
        Some(JVal::Arr(items)) if items.is_empty() => {
            problems.push(PolicyProblem::new(
                "Statement",
                "Statement must not be empty",
            ));
            return None;
        }
        Some(JVal::Arr(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("Statement[{i}]"), s))
            .collect(),
        Some(s @ JVal::Obj(_)) => vec![("Statement".to_owned(), s)],
        Some(other) => {
            problems.push(PolicyProblem::new(
                "Statement",
                format!(
                    "Statement must be an object or an array of objects, not {}",
                    other.type_name()
                ),
            ));
            return None;
        }
    };
    let mut statements = Vec::with_capacity(list.len());
    let mut sids: Vec<String> = Vec::new();
    for (path, s) in list {
        if let Some(st) = compile_statement(s, &path, kind, vars, problems) {
            if let Some(sid) = &st.sid {
                if sids.contains(sid) {
                    problems.push(PolicyProblem::new(
                        &join(&path, "Sid"),
                        format!(
                            "duplicate Sid \"{sid}\": statement IDs must be unique in a policy"
                        ),
                    ));
                }
                sids.push(sid.clone());
            }
            statements.push(st);
        }
    }
    Some((version, statements))
}

fn show(v: &JVal) -> String {
    match v {
        JVal::Str(s) => format!("\"{s}\""),
        other => other.type_name().to_owned(),
    }
}

/// A string or a non-empty array of strings.
fn string_list(v: &JVal, path: &str, what: &str, problems: &mut Vec<PolicyProblem>) -> Vec<String> {
    match v {
        JVal::Str(s) => vec![s.clone()],
        JVal::Arr(items) if items.is_empty() => {
            problems.push(PolicyProblem::new(
                path,
                format!("{what} must not be empty"),
            ));
            Vec::new()
        }
        JVal::Arr(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.iter().enumerate() {
                match it {
                    JVal::Str(s) => out.push(s.clone()),
                    other => problems.push(PolicyProblem::new(
                        &format!("{path}[{i}]"),
                        format!("{what} entries must be strings, not {}", other.type_name()),
                    )),
                }
            }
            out
        }
        other => {
            problems.push(PolicyProblem::new(
                path,
                format!(
                    "{what} must be a string or an array of strings, not {}",
                    other.type_name()
                ),
            ));
            Vec::new()
        }
    }
}

fn item_path(path: &str, v: &JVal, i: usize) -> String {
    if matches!(v, JVal::Arr(_)) {
        format!("{path}[{i}]")
    } else {
        path.to_owned()
    }
}

fn compile_statement(
    s: &JVal,
    path: &str,
    kind: PolicyKind,
    vars: bool,
    problems: &mut Vec<PolicyProblem>,
) -> Option<Statement> {
    let members = match s {
        JVal::Obj(m) => m,
        other => {
            problems.push(PolicyProblem::new(
                path,
                format!("a statement must be an object, not {}", other.type_name()),
            ));
            return None;
        }
    };
    let before = problems.len();
    for (k, _) in members {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            problems.push(PolicyProblem::new(
                &join(path, k),
                format!("unknown statement element \"{k}\""),
            ));
        }
    }
    let sid = match get(members, "Sid") {
        None => None,
        Some(JVal::Str(s)) => {
            // IAM: identity-based (and managed) policies accept only alphanumeric Sids.
            if kind != PolicyKind::Resource && !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                problems.push(PolicyProblem::new(
                    &join(path, "Sid"),
                    format!("Sid \"{s}\" must be alphanumeric (A-Z, a-z, 0-9)"),
                ));
            }
            Some(s.clone())
        }
        Some(other) => {
            problems.push(PolicyProblem::new(
                &join(path, "Sid"),
                format!("Sid must be a string, not {}", other.type_name()),
            ));
            None
        }
    };
    let effect = match get(members, "Effect") {
        Some(JVal::Str(e)) if e == "Allow" => Some(StmtEffect::Allow),
        Some(JVal::Str(e)) if e == "Deny" => Some(StmtEffect::Deny),
        Some(other) => {
            problems.push(PolicyProblem::new(
                &join(path, "Effect"),
                format!("Effect must be \"Allow\" or \"Deny\", not {}", show(other)),
            ));
            None
        }
        None => {
            problems.push(PolicyProblem::new(
                &join(path, "Effect"),
                "Effect is required",
            ));
            None
        }
    };
    let principal = compile_principal(members, path, kind, problems);
    let actions = compile_actions(members, path, problems);
    if kind == PolicyKind::Trust {
        if let Some(a) = &actions {
            check_trust_actions(a, &join(path, "Action"), problems);
        }
    }
    let resources = if kind == PolicyKind::Trust {
        trust_resources(members, path, problems)
    } else {
        compile_resources(members, path, vars, problems)
    };
    let conditions = match get(members, "Condition") {
        None => Vec::new(),
        Some(c) => compile_conditions(c, &join(path, "Condition"), vars, problems),
    };
    if problems.len() != before {
        return None;
    }
    let (effect, actions, resources) = (effect?, actions?, resources?);
    let mut refs: Vec<ContextKey> = Vec::new();
    let mut add = |k: &ContextKey| {
        if !refs
            .iter()
            .any(|r| r.canonical.eq_ignore_ascii_case(&k.canonical))
        {
            refs.push(k.clone());
        }
    };
    let (ResourceSpec::Resource(ps) | ResourceSpec::NotResource(ps)) = &resources;
    ps.iter().flat_map(ArnPattern::var_keys).for_each(&mut add);
    conditions
        .iter()
        .flat_map(Condition::keys)
        .for_each(&mut add);
    Some(Statement {
        sid,
        effect,
        principal,
        actions,
        resources,
        conditions,
        refs,
    })
}

fn compile_principal(
    members: &[(String, JVal)],
    path: &str,
    kind: PolicyKind,
    problems: &mut Vec<PolicyProblem>,
) -> Option<PrincipalSpec> {
    let p = get(members, "Principal");
    let np = get(members, "NotPrincipal");
    if kind == PolicyKind::Trust && np.is_some() {
        // Our choice (stricter than needed): NotPrincipal in a trust policy is almost always a
        // mistake that trusts everyone but the listed principals.
        problems.push(PolicyProblem::new(
            &join(path, "NotPrincipal"),
            "NotPrincipal is not supported in a role trust policy; name the trusted principals in Principal",
        ));
        return None;
    }
    if !matches!(kind, PolicyKind::Resource | PolicyKind::Trust) {
        let what = if kind == PolicyKind::Boundary {
            "a permissions boundary"
        } else {
            "an identity-based policy"
        };
        for (name, v) in [("Principal", p), ("NotPrincipal", np)] {
            if v.is_some() {
                problems.push(PolicyProblem::new(
                    &join(path, name),
                    format!("{name} is not allowed in {what}"),
                ));
            }
        }
        return None;
    }
    let (name, v, not) = match (p, np) {
        (Some(_), Some(_)) => {
            problems.push(PolicyProblem::new(
                path,
                "a statement cannot have both Principal and NotPrincipal",
            ));
            return None;
        }
        (Some(v), None) => ("Principal", v, false),
        (None, Some(v)) => ("NotPrincipal", v, true),
        (None, None) => {
            let msg = if kind == PolicyKind::Trust {
                "a role trust policy statement requires Principal (who may assume the role)"
            } else {
                "a resource-based policy statement requires Principal or NotPrincipal"
            };
            problems.push(PolicyProblem::new(&join(path, "Principal"), msg));
            return None;
        }
    };
    let ppath = join(path, name);
    let mut ids = Vec::new();
    match v {
        JVal::Str(s) if s == "*" => ids.push(PrincipalId::Any),
        JVal::Obj(m) if !m.is_empty() => {
            for (ptype, val) in m {
                let tpath = join(&ppath, ptype);
                let list = string_list(val, &tpath, &format!("{name}.{ptype}"), problems);
                match ptype.as_str() {
                    "AWS" => {
                        for (i, id) in list.iter().enumerate() {
                            match aws_principal(id) {
                                Some(pid) => ids.push(pid),
                                None => problems.push(PolicyProblem::new(
                                    &item_path(&tpath, val, i),
                                    format!("invalid principal \"{id}\": use \"*\", an account ID, or the ARN of an account, user, role or role session (no wildcards)"),
                                )),
                            }
                        }
                    }
                    "Service" | "Federated" | "CanonicalUser" => {
                        ids.extend(list.iter().map(|_| PrincipalId::Other))
                    }
                    other => problems.push(PolicyProblem::new(
                        &tpath,
                        format!("unknown principal type \"{other}\" (AWS, Service, Federated, CanonicalUser)"),
                    )),
                }
            }
        }
        other => problems.push(PolicyProblem::new(
            &ppath,
            format!(
                "{name} must be \"*\" or an object such as {{\"AWS\": ...}}, not {}",
                show(other)
            ),
        )),
    }
    Some(PrincipalSpec { not, ids })
}

fn aws_principal(id: &str) -> Option<PrincipalId> {
    if id == "*" {
        return Some(PrincipalId::Any);
    }
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        return Some(PrincipalId::Account(id.into()));
    }
    if id.contains(['*', '?']) {
        return None; // IAM: no partial wildcards in Principal
    }
    let mut parts = id.splitn(6, ':');
    let (arn, _partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" || account.is_empty() || resource.is_empty() {
        return None;
    }
    if service == "iam" && resource == "root" {
        return Some(PrincipalId::Account(account.into()));
    }
    Some(PrincipalId::Arn(id.into()))
}

fn compile_actions(
    members: &[(String, JVal)],
    path: &str,
    problems: &mut Vec<PolicyProblem>,
) -> Option<ActionSpec> {
    let (name, v, not) = match (get(members, "Action"), get(members, "NotAction")) {
        (Some(_), Some(_)) => {
            problems.push(PolicyProblem::new(
                path,
                "a statement cannot have both Action and NotAction",
            ));
            return None;
        }
        (Some(v), None) => ("Action", v, false),
        (None, Some(v)) => ("NotAction", v, true),
        (None, None) => {
            problems.push(PolicyProblem::new(
                &join(path, "Action"),
                "a statement requires Action or NotAction",
            ));
            return None;
        }
    };
    let apath = join(path, name);
    let list = string_list(v, &apath, name, problems);
    let mut pats = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        if a == "*" {
            pats.push(ActionPat::Any);
            continue;
        }
        let ok = a.split_once(':').filter(|(svc, act)| {
            !svc.is_empty()
                && svc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !act.is_empty()
                && !act.contains(':')
                && !act.chars().any(char::is_whitespace)
        });
        match ok {
            Some((svc, act)) => pats.push(ActionPat::Service {
                service: svc.to_ascii_lowercase().into(),
                name: Pattern::new(act, false, true).lowercase(),
            }),
            None => problems.push(PolicyProblem::new(
                &item_path(&apath, v, i),
                format!("invalid action \"{a}\": use \"*\" or service:action (for example dynamodb:GetItem)"),
            )),
        }
    }
    Some(if not {
        ActionSpec::NotAction(pats)
    } else {
        ActionSpec::Action(pats)
    })
}

// STS: the actions a role trust policy may name (IAM User Guide, "Role trust policy").
const TRUST_ACTIONS: [&str; 6] = [
    "assumerole",
    "assumerolewithsaml",
    "assumerolewithwebidentity",
    "tagsession",
    "setsourceidentity",
    "setcontext",
];

/// IAM: "AssumeRole policy may only specify STS AssumeRole actions": every Action entry must
/// be an `sts:` pattern naming at least one of them (so `sts:*` is accepted, `*` is not).
fn check_trust_actions(actions: &ActionSpec, path: &str, problems: &mut Vec<PolicyProblem>) {
    let ok = match actions {
        ActionSpec::NotAction(_) => false,
        ActionSpec::Action(pats) => pats.iter().all(|p| match p {
            ActionPat::Any => false,
            ActionPat::Service { service, name } => {
                &**service == "sts"
                    && TRUST_ACTIONS
                        .iter()
                        .any(|a| name.matches(a, Fold::Ascii, &mut |_| None) == Tri::Match)
            }
        }),
    };
    if !ok {
        problems.push(PolicyProblem::new(
            path,
            "AssumeRole policy may only specify STS AssumeRole actions (sts:AssumeRole, sts:TagSession, ...) in Action",
        ));
    }
}

/// A trust policy's statements apply to the role that holds it: IAM rejects a Resource.
fn trust_resources(
    members: &[(String, JVal)],
    path: &str,
    problems: &mut Vec<PolicyProblem>,
) -> Option<ResourceSpec> {
    for name in ["Resource", "NotResource"] {
        if get(members, name).is_some() {
            problems.push(PolicyProblem::new(
                &join(path, name),
                format!("Has prohibited field {name}: a role trust policy applies to its role"),
            ));
        }
    }
    Some(ResourceSpec::Resource(vec![ArnPattern::Any]))
}

fn compile_resources(
    members: &[(String, JVal)],
    path: &str,
    vars: bool,
    problems: &mut Vec<PolicyProblem>,
) -> Option<ResourceSpec> {
    let (name, v, not) = match (get(members, "Resource"), get(members, "NotResource")) {
        (Some(_), Some(_)) => {
            problems.push(PolicyProblem::new(
                path,
                "a statement cannot have both Resource and NotResource",
            ));
            return None;
        }
        (Some(v), None) => ("Resource", v, false),
        (None, Some(v)) => ("NotResource", v, true),
        (None, None) => {
            problems.push(PolicyProblem::new(
                &join(path, "Resource"),
                "a statement requires Resource or NotResource",
            ));
            return None;
        }
    };
    let rpath = join(path, name);
    let list = string_list(v, &rpath, name, problems);
    let mut pats = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        match ArnPattern::new(r, vars) {
            Some(p) => pats.push(p),
            None => problems.push(PolicyProblem::new(
                &item_path(&rpath, v, i),
                format!("invalid resource \"{r}\": use \"*\" or an ARN arn:partition:service:region:account:resource"),
            )),
        }
    }
    Some(if not {
        ResourceSpec::NotResource(pats)
    } else {
        ResourceSpec::Resource(pats)
    })
}

fn compile_conditions(
    c: &JVal,
    path: &str,
    vars: bool,
    problems: &mut Vec<PolicyProblem>,
) -> Vec<Condition> {
    let ops = match c {
        JVal::Obj(m) => m,
        other => {
            problems.push(PolicyProblem::new(
                path,
                format!("Condition must be an object, not {}", other.type_name()),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (op, block) in ops {
        let opath = join(path, op);
        match block {
            JVal::Obj(keys) => {
                for (key, value) in keys {
                    if let Some(cond) = Condition::compile(op, &opath, key, value, vars, problems) {
                        out.push(cond);
                    }
                }
            }
            other => problems.push(PolicyProblem::new(
                &opath,
                format!(
                    "a condition operator takes an object of keys, not {}",
                    other.type_name()
                ),
            )),
        }
    }
    out
}

fn build_index(statements: &[Statement]) -> ActionIndex {
    let mut idx = ActionIndex::default();
    let mut services: Vec<Box<str>> = Vec::new();
    let mut literals: Vec<String> = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        match &st.actions {
            ActionSpec::NotAction(_) => idx.always.push(i),
            ActionSpec::Action(pats) if pats.iter().any(|p| matches!(p, ActionPat::Any)) => {
                idx.always.push(i)
            }
            ActionSpec::Action(pats) => {
                for p in pats {
                    if let ActionPat::Service { service, name } = p {
                        if !services.contains(service) {
                            services.push(service.clone());
                        }
                        if let Some(lit) = name.as_literal() {
                            let full = format!("{service}:{lit}");
                            if !literals.contains(&full) {
                                literals.push(full);
                            }
                        }
                    }
                }
            }
        }
    }
    let always = idx.always.clone();
    let list = |keep: &dyn Fn(&ActionPat) -> bool| -> Vec<usize> {
        statements
            .iter()
            .enumerate()
            .filter(|(i, st)| {
                always.contains(i)
                    || matches!(&st.actions, ActionSpec::Action(ps) if ps.iter().any(keep))
            })
            .map(|(i, _)| i)
            .collect()
    };
    for full in literals {
        let (svc, act) = full.split_once(':').unwrap_or((&full, ""));
        let v = list(&|p| match p {
            ActionPat::Any => true,
            ActionPat::Service { service, name } => {
                **service == *svc && name.matches(act, Fold::Ascii, &mut |_| None) == Tri::Match
            }
        });
        idx.by_action.insert(full.as_str().into(), v);
    }
    for svc in services {
        let v = list(&|p| matches!(p, ActionPat::Service { service, .. } if *service == svc));
        idx.by_service.push((svc, v));
    }
    idx
}
