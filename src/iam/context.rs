//! Request -> what must be authorized: every (action, resource ARN) pair with its condition
//! keys. Global keys (`aws:*`) come from the request's [`RequestFacts`], read on demand;
//! operation keys are built per target.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use time::OffsetDateTime;

use super::eval::{ContextValue, Val};
use super::variables::GlobalKey;
use crate::catalog::tables::TableEntry;
use crate::protocol::attr::{AttributeValue, Item};

/// One authorization check of a request.
#[derive(Clone)]
pub struct Target {
    pub action: String,
    pub resource: String,
    /// Operation-specific keys (`dynamodb:*`), added to the global ones.
    pub keys: Context,
    /// The live table `resource` names, when the mapping looked it up (its tags, key schema
    /// and resource policy): the authorizer reuses it instead of a second catalog lookup.
    pub table: Option<Arc<TableEntry>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("action", &self.action)
            .field("resource", &self.resource)
            .field("keys", &self.keys)
            .field("table", &self.table.as_ref().map(|e| &e.def.name))
            .finish()
    }
}

impl Target {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Target {
        Target {
            action: action.into(),
            resource: resource.into(),
            keys: Vec::new(),
            table: None,
        }
    }

    /// The name of the looked-up table's partition key attribute.
    pub fn hash_key_name(&self) -> Option<String> {
        let e = self.table.as_ref()?;
        Some(e.def.key_schema.hash.name.clone())
    }

    pub fn with(mut self, key: &str, value: ContextValue) -> Target {
        self.keys.push((key.to_string(), value));
        self
    }
}

/// The condition keys an operation adds for one target (`dynamodb:*`, tags), as AWS spells them.
pub type Context = Vec<(String, ContextValue)>;

/// The global condition keys of a request that come from the transport and the clock:
/// `aws:SourceIp`, `aws:CurrentTime`, `aws:EpochTime`, `aws:SecureTransport` and
/// `aws:RequestedRegion`. The evaluator reads them through [`GlobalKey`] when a policy asks,
/// and their text is formatted at most once per request, on first use: most policies never
/// read them, and formatting all of them cost every request five allocations. (The keys
/// describing the principal are derived from the principal the same way.)
pub struct RequestFacts<'a> {
    source_ip: IpAddr,
    secure_transport: bool,
    now: OffsetDateTime,
    region: &'a str,
    source_ip_text: OnceLock<String>,
    current_time: OnceLock<String>,
    epoch_time: OnceLock<String>,
}

impl<'a> RequestFacts<'a> {
    pub fn new(
        source_ip: IpAddr,
        secure_transport: bool,
        now: OffsetDateTime,
        region: &'a str,
    ) -> RequestFacts<'a> {
        RequestFacts {
            source_ip,
            secure_transport,
            now,
            region,
            source_ip_text: OnceLock::new(),
            current_time: OnceLock::new(),
            epoch_time: OnceLock::new(),
        }
    }

    /// The value of a global key, as the evaluator compares it.
    pub(crate) fn get(&self, key: GlobalKey) -> Val<'_> {
        match key {
            GlobalKey::SourceIp => Val::Str(
                self.source_ip_text
                    .get_or_init(|| self.source_ip.to_string()),
            ),
            GlobalKey::CurrentTime => Val::Str(
                self.current_time
                    .get_or_init(|| crate::util::rfc3339_utc(self.now)),
            ),
            GlobalKey::EpochTime => Val::Str(
                self.epoch_time
                    .get_or_init(|| self.now.unix_timestamp().to_string()),
            ),
            GlobalKey::SecureTransport => Val::Bool(self.secure_transport),
            GlobalKey::RequestedRegion => Val::Str(self.region),
        }
    }
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
