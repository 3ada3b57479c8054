//! The request path, top to bottom (DESIGN.md section 3):
//! size-capped body -> X-Amz-Target -> SigV4 -> typed input -> IAM -> operation -> response.
//! No JSON is parsed before the signature is verified; nothing touches storage before the
//! policy check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::auth::sigv4::{self, KeyLookup, KeyMaterial, RequestParts, VerifyConfig};
use crate::catalog::principals::{PrincipalIndex, Subject};
use crate::error::ApiError;
use crate::iam::context::{RequestFacts, Target};
use crate::iam::eval::{evaluate, AuthzRequest, Decision, Effect, PolicySet, PolicyType};
use crate::ops::{self, Services};
use crate::protocol::Operation;

/// DynamoDB: the maximum request size is 16 MB.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// STS's action for obtaining a role session (CreateRoleSession is authorized as it).
const ASSUME_ROLE: &str = "sts:AssumeRole";
/// The SigV4 service name of both the DynamoDB API and sealdb's admin API.
pub const SIGNING_SERVICE: &str = "dynamodb";

pub type HttpResponse = Response<Full<Bytes>>;

/// Everything the transport tells the pipeline about a connection.
#[derive(Clone, Copy)]
pub struct Conn {
    pub peer: SocketAddr,
    pub secure: bool,
}

/// Access keys from the in-memory principal index (no storage read per request).
struct IndexLookup<'a>(&'a PrincipalIndex);

impl KeyLookup for IndexLookup<'_> {
    fn lookup(&self, access_key_id: &str) -> Option<KeyMaterial> {
        let key = self.0.by_access_key.get(access_key_id)?;
        if !key.active {
            return None;
        }
        Some(KeyMaterial {
            secret: Zeroizing::new(key.secret.as_str().to_string()),
            // A session key is valid only with the token issued with it (checked by SigV4).
            session_token: key.session.as_ref().map(|s| s.token.as_str().to_string()),
        })
    }
}

pub async fn handle(svc: Arc<Services>, conn: Conn, req: Request<Incoming>) -> HttpResponse {
    let request_id = new_request_id();
    let result = route(&svc, conn, req, &request_id).await;
    let (status, body, content_type) = match result {
        Ok(Routed::Json(v)) => (
            StatusCode::OK,
            serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()),
            "application/x-amz-json-1.0",
        ),
        Ok(Routed::Encoded(body)) => (StatusCode::OK, body, "application/x-amz-json-1.0"),
        Ok(Routed::Text(status, text)) => (status, text.into_bytes(), "text/plain"),
        Err(e) => {
            if e.is_server_fault() {
                tracing::error!(request_id = %request_id, error = ?e, "request failed");
            }
            let (_, status) = e.wire();
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.body(),
                "application/x-amz-json-1.0",
            )
        }
    };
    let crc = crc32fast::hash(&body);
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", request_id.as_str())
        .header("x-amz-crc32", crc.to_string())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

enum Routed {
    Json(Value),
    /// A response body the operation serialized itself (GetItem: the item straight to JSON,
    /// without an intermediate `Value` tree).
    Encoded(Vec<u8>),
    Text(StatusCode, String),
}

async fn route(
    svc: &Arc<Services>,
    conn: Conn,
    req: Request<Incoming>,
    request_id: &str,
) -> Result<Routed, ApiError> {
    if req.uri().path() != "/" {
        return Ok(Routed::Text(StatusCode::NOT_FOUND, "Not Found".into()));
    }
    match *req.method() {
        // Load balancers and test harnesses probe DynamoDB with an unsigned GET /.
        Method::GET => {
            let host = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            return Ok(Routed::Text(StatusCode::OK, format!("healthy: {host}")));
        }
        Method::POST => {}
        _ => {
            return Ok(Routed::Text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed".into(),
            ))
        }
    }

    // 1. Body, capped before it is read.
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(ApiError::RequestTooLarge(MAX_REQUEST_BYTES));
    }
    let (mut parts, body) = req.into_parts();
    // HTTP/2 carries the host as `:authority`; SigV4 signs it as `host`.
    if !parts.headers.contains_key(hyper::header::HOST) {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| hyper::header::HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(hyper::header::HOST, v);
        }
    }
    let body = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| ApiError::RequestTooLarge(MAX_REQUEST_BYTES))?
        .to_bytes();

    // 2. Operation.
    let op = Operation::parse(
        parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok()),
    )?;

    // 3. Authentication over the raw bytes.
    let index = svc.catalog.principals();
    let now = time::OffsetDateTime::now_utc();
    let verified = sigv4::verify(
        &RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &body,
        },
        &VerifyConfig {
            region: &svc.config.region,
            service: SIGNING_SERVICE,
            max_skew: std::time::Duration::from_secs(svc.config.max_clock_skew_secs),
        },
        now,
        &IndexLookup(&index),
    )?;
    let key = index
        .by_access_key
        .get(&verified.access_key_id)
        .ok_or_else(|| {
            ApiError::UnrecognizedClient(
                "The security token included in the request is invalid.".into(),
            )
        })?;
    if key.expired(now.unix_timestamp() as f64) {
        return Err(ApiError::ExpiredToken(
            "The security token included in the request is expired".into(),
        ));
    }
    let principal = key.subject.clone();
    let mut authz = Authorizer {
        svc,
        principal: &principal,
        facts: RequestFacts::new(conn.peer.ip(), conn.secure, now, &svc.config.region),
        tables: HashMap::new(),
        request_id,
    };

    // 4-6. Typed input, authorization, operation.
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    dispatch(svc, &mut authz, op, &body, host).await
}

/// Step 5: every target of a request must be allowed; the first denial ends the request.
struct Authorizer<'a> {
    svc: &'a Services,
    principal: &'a Subject,
    /// Tables whose resource-based policy this request consulted (one lookup per table), for
    /// targets that do not carry their table already.
    tables: HashMap<String, Option<Arc<crate::catalog::tables::TableEntry>>>,
    /// The global condition keys, read by the evaluator only when a policy asks.
    facts: RequestFacts<'a>,
    request_id: &'a str,
}

impl Authorizer<'_> {
    fn check(&mut self, targets: &[Target]) -> Result<(), ApiError> {
        for t in targets {
            let table = match &t.table {
                Some(entry) => Some(entry.clone()),
                None => ops::resource_policy::table_name_in(&t.resource).and_then(|name| {
                    self.tables
                        .entry(name.to_string())
                        .or_insert_with(|| self.svc.catalog.table(name))
                        .clone()
                }),
            };
            // For sts:AssumeRole the role's trust policy fills the resource-based slot (and
            // must itself allow the caller); an unknown role is denied like an untrusting one.
            let assume = t.action.eq_ignore_ascii_case(ASSUME_ROLE);
            let trust = if assume {
                self.svc
                    .catalog
                    .principals()
                    .trust_policy_of(&t.resource, &self.svc.config.account_id)
            } else {
                None
            };
            let resource_policy = match &trust {
                Some(p) => Some(&**p),
                None => table
                    .as_ref()
                    .and_then(|e| e.def.resource_policy.as_ref())
                    .map(|p| &*p.compiled),
            };
            let decision = if assume && trust.is_none() {
                Decision {
                    decision: Effect::ImplicitDeny,
                    matched_statements: Vec::new(),
                    missing_context_keys: Vec::new(),
                    denied_by: Some(PolicyType::ResourceBased),
                }
            } else {
                evaluate(
                    &AuthzRequest {
                        principal: &self.principal.info,
                        action: &t.action,
                        resource: &t.resource,
                        // Operation keys count for this target only.
                        context: &t.keys,
                        facts: Some(&self.facts),
                    },
                    &PolicySet {
                        identity: &self.principal.policies,
                        boundary: self.principal.boundary.as_deref(),
                        resource: resource_policy,
                    },
                )
            };
            let label = match decision.decision {
                Effect::Allow => "Allow",
                Effect::ExplicitDeny => "ExplicitDeny",
                Effect::ImplicitDeny => "ImplicitDeny",
            };
            self.svc.audit.decision(
                self.request_id,
                &self.principal.info.arn,
                &t.action,
                &t.resource,
                label,
            );
            if decision.decision != Effect::Allow && assume {
                // STS's AccessDenied names no policy type.
                return Err(ApiError::AccessDenied(format!(
                    "User: {} is not authorized to perform: {ASSUME_ROLE} on resource: {}",
                    self.principal.info.arn, t.resource
                )));
            }
            if decision.decision != Effect::Allow {
                let reason = decision.denial_reason(&t.action).unwrap_or_else(|| {
                    format!(
                        "because no identity-based policy allows the {} action",
                        t.action
                    )
                });
                return Err(ApiError::AccessDenied(format!(
                    "User: {} is not authorized to perform: {} on resource: {} {reason}",
                    self.principal.info.arn, t.action, t.resource
                )));
            }
        }
        Ok(())
    }
}

/// Steps 4-6 for one operation. Each operation's future is boxed: unboxed, every request's
/// future would be as large as the largest operation's (5.7 KB, moved by value into hyper's
/// dispatcher per request); boxed, it is 2.4 KB plus one allocation of the operation's size.
async fn dispatch(
    svc: &Arc<Services>,
    authz: &mut Authorizer<'_>,
    op: Operation,
    body: &[u8],
    host: &str,
) -> Result<Routed, ApiError> {
    use crate::iam::targets::targets_for as t;
    use crate::protocol::input::*;
    match op {
        Operation::CreateTable => {
            let i: CreateTableInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::tables::create_table(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::DescribeTable => {
            let i: TableNameInput = decode(body)?;
            authz.check(&t(svc, &(op, &i))?)?;
            Box::pin(ops::tables::describe_table(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::DeleteTable => {
            let i: TableNameInput = decode(body)?;
            authz.check(&t(svc, &(op, &i))?)?;
            Box::pin(ops::tables::delete_table(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::ListTables => {
            let i: ListTablesInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::tables::list_tables(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::PutItem => {
            let i: PutItemInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::items::put_item(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::GetItem => {
            let i: GetItemInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::items::get_item(svc, i))
                .await
                .map(Routed::Encoded)
        }
        Operation::DeleteItem => {
            let i: DeleteItemInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::items::delete_item(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::UpdateItem => {
            let i: UpdateItemInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::update::update_item(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::Query => {
            let i: QueryInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::query::query(svc, i)).await.map(Routed::Json)
        }
        Operation::Scan => {
            let i: ScanInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::query::scan(svc, i)).await.map(Routed::Json)
        }
        Operation::BatchGetItem => {
            let i: BatchGetItemInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::batch::batch_get_item(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::BatchWriteItem => {
            let i: BatchWriteItemInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::batch::batch_write_item(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::TransactGetItems => {
            let i: TransactGetItemsInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::transact::transact_get_items(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::TransactWriteItems => {
            let i: TransactWriteItemsInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::transact::transact_write_items(svc, i, body))
                .await
                .map(Routed::Json)
        }
        Operation::UpdateTable => {
            let i: ops::update_table::UpdateTableInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::update_table::update_table(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::UpdateTimeToLive => {
            let i: ops::ttl::UpdateTimeToLiveInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::ttl::update_time_to_live(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::DescribeTimeToLive => {
            let i: TableNameInput = decode(body)?;
            authz.check(&crate::iam::targets::describe_ttl_targets(svc, &i)?)?;
            Box::pin(ops::ttl::describe_time_to_live(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::TagResource => {
            let i: ops::tags::TagResourceInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::tags::tag_resource(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::UntagResource => {
            let i: ops::tags::UntagResourceInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::tags::untag_resource(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::ListTagsOfResource => {
            let i: ops::tags::ListTagsOfResourceInput = decode(body)?;
            authz.check(&t(svc, &i)?)?;
            Box::pin(ops::tags::list_tags_of_resource(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::PutResourcePolicy => {
            let i: ops::resource_policy::ResourcePolicyInput = decode(body)?;
            authz.check(&t(svc, &(op, &i))?)?;
            Box::pin(ops::resource_policy::put_resource_policy(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::GetResourcePolicy => {
            let i: ops::resource_policy::ResourcePolicyInput = decode(body)?;
            authz.check(&t(svc, &(op, &i))?)?;
            Box::pin(ops::resource_policy::get_resource_policy(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::DeleteResourcePolicy => {
            let i: ops::resource_policy::ResourcePolicyInput = decode(body)?;
            authz.check(&t(svc, &(op, &i))?)?;
            Box::pin(ops::resource_policy::delete_resource_policy(svc, i))
                .await
                .map(Routed::Json)
        }
        Operation::DescribeLimits => {
            // IAM: DescribeLimits has no resource type; it is authorized on "*".
            authz.check(&[Target::new("dynamodb:DescribeLimits", "*")])?;
            Ok(Routed::Json(ops::tables::describe_limits()))
        }
        Operation::DescribeEndpoints => {
            authz.check(&[Target::new("dynamodb:DescribeEndpoints", "*")])?;
            Ok(Routed::Json(ops::tables::describe_endpoints(host)))
        }
        Operation::NotImplemented(name) => Err(ApiError::NotImplemented(format!(
            "sealdb does not implement the operation {name} yet"
        ))),
        Operation::Keys(k) => {
            let i: ops::key_admin::KeysInput = decode(body)?;
            let (action, resource) = i.target(k, &svc.config.region, &svc.config.account_id);
            authz.check(&[Target::new(action, resource)])?;
            Box::pin(ops::key_admin::run(svc, k, i))
                .await
                .map(Routed::Json)
        }
        Operation::Admin(a) => {
            let i: ops::admin::AdminInput = decode(body)?;
            let (action, resource) = i.target(a, &svc.config.account_id);
            authz.check(&[Target::new(action, resource)])?;
            Box::pin(ops::admin::run(&svc.catalog, a, i))
                .await
                .map(Routed::Json)
        }
    }
}

/// A request id shaped like DynamoDB's (52 upper-case alphanumerics): a random per-process
/// prefix and a counter. Ids must be unique, not secret, so no RNG call per request.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let bytes: [u8; 39] = crate::crypto::secret::random_bytes().unwrap_or([0u8; 39]);
        bytes
            .iter()
            .map(|b| ALPHABET[(*b as usize) % 32] as char)
            .collect()
    });
    let mut n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(52);
    id.push_str(prefix);
    let mut tail = [b'A'; 13];
    for c in tail.iter_mut().rev() {
        *c = ALPHABET[(n % 32) as usize];
        n /= 32;
    }
    id.extend(tail.iter().map(|b| *b as char));
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_dynamodb_shaped_and_unique() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_eq!(a.len(), 52);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_ne!(a, b);
        assert_eq!(a[..39], b[..39], "one per-process prefix");
    }
}
