//! Request -> what must be authorized: every (action, resource ARN) pair with its condition
//! keys. Global keys (`aws:*`) are built once per request; operation keys per target.

use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;

use super::eval::ContextValue;
use crate::protocol::attr::{AttributeValue, Item};

pub type Context = HashMap<String, ContextValue>;

/// One authorization check of a request.
#[derive(Debug, Clone)]
pub struct Target {
    pub action: String,
    pub resource: String,
    /// Operation-specific keys (`dynamodb:*`), added to the global ones.
    pub keys: Vec<(String, ContextValue)>,
}

impl Target {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Target {
        Target {
            action: action.into(),
            resource: resource.into(),
            keys: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, value: ContextValue) -> Target {
        self.keys.push((key.to_string(), value));
        self
    }
}

/// What the transport knows about a request.
pub struct RequestFacts {
    pub source_ip: IpAddr,
    pub secure_transport: bool,
    pub now: OffsetDateTime,
    pub region: String,
}

/// The global condition keys of a request that come from the transport and the clock
/// (`aws:SourceIp`, `aws:CurrentTime`, ...). The keys describing the principal
/// (`aws:PrincipalArn`, `aws:username`, `aws:PrincipalTag/*`, ...) are not copied in: the
/// evaluator derives them from the principal when a policy asks (`iam::eval::Ctx`), which
/// spares every request a dozen string allocations for keys most policies never read.
pub fn global_context(facts: &RequestFacts) -> Context {
    let mut c = Context::with_capacity(8);
    let s = |v: &str| ContextValue::Str(v.to_string());
    c.insert("aws:SourceIp".into(), s(&facts.source_ip.to_string()));
    c.insert(
        "aws:CurrentTime".into(),
        ContextValue::Str(crate::util::rfc3339_utc(facts.now)),
    );
    c.insert(
        "aws:EpochTime".into(),
        ContextValue::Num(facts.now.unix_timestamp().to_string()),
    );
    c.insert(
        "aws:SecureTransport".into(),
        ContextValue::Bool(facts.secure_transport),
    );
    c.insert("aws:RequestedRegion".into(), s(&facts.region));
    c
}

/// `dynamodb:LeadingKeys` value of a partition key: its string form as IAM compares it.
pub fn leading_key(v: &AttributeValue) -> Option<String> {
    use base64::Engine;
    match v {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.to_string()),
        AttributeValue::B(b) => Some(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => None,
    }
}

/// The partition key value of an item or key map, given the table's hash key name.
pub fn leading_keys_of(item: &Item, hash_key: &str) -> ContextValue {
    ContextValue::List(
        item.get(hash_key)
            .and_then(leading_key)
            .into_iter()
            .collect(),
    )
}

/// `dynamodb:Attributes`: the top-level attribute names a request names.
pub fn attributes<'a>(names: impl IntoIterator<Item = &'a String>) -> ContextValue {
    let mut v: Vec<String> = names.into_iter().cloned().collect();
    v.sort();
    v.dedup();
    ContextValue::List(v)
}

/// `aws:ResourceTag/<k>` for each of a table's stored tags.
pub fn with_resource_tags(
    target: Target,
    tags: &std::collections::BTreeMap<String, String>,
) -> Target {
    let mut t = target;
    for (k, v) in tags {
        t = t.with(
            &format!("aws:ResourceTag/{k}"),
            ContextValue::Str(v.clone()),
        );
    }
    t
}

/// `aws:RequestTag/<k>` for each tag a request sets, and `aws:TagKeys` (multivalued: every key
/// the request names; present, possibly empty, whenever the request carries a tag list).
pub fn with_request_tags(target: Target, tags: &[(String, String)]) -> Target {
    let mut t = target;
    for (k, v) in tags {
        t = t.with(&format!("aws:RequestTag/{k}"), ContextValue::Str(v.clone()));
    }
    t.with(
        "aws:TagKeys",
        ContextValue::List(tags.iter().map(|(k, _)| k.clone()).collect()),
    )
}
