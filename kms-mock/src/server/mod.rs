//! The HTTP front end: AWS KMS JSON protocol on `POST /`, admin endpoints under `/__admin/`.

pub mod api;
pub mod sigv4;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::error::KmsError;
use crate::fault::FaultRule;
use crate::material::random_uuid;
use crate::KeyStore;
pub use sigv4::Credentials;

/// Largest request body accepted. KMS's largest input member is a key policy of 32 KiB
/// (service model: PolicyType max 131072 characters); 1 MiB leaves ample room.
const MAX_BODY_BYTES: usize = 1 << 20;
/// How long an injected `timeout` fault holds a request before answering with
/// DependencyTimeoutException (clients are expected to give up long before).
const INJECTED_TIMEOUT: Duration = Duration::from_secs(3600);
const JSON_1_1: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "TrentService.";

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Verify SigV4 signatures against `credentials`; otherwise any well-formed
    /// Authorization header is accepted.
    pub verify_signatures: bool,
    pub credentials: Credentials,
    /// Serve `/__admin/*` (faults, clock, health).
    pub enable_admin: bool,
}

struct Shared {
    store: Arc<KeyStore>,
    config: ServerConfig,
}

/// Serves connections from `listener` until `shutdown` completes. The store's faults are
/// applied here (asynchronously) rather than inside the store.
pub async fn serve<F>(
    listener: TcpListener,
    store: Arc<KeyStore>,
    config: ServerConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    store.set_inline_faults(false);
    let shared = Arc::new(Shared { store, config });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Per-connection accept errors (EMFILE, aborted handshakes) are not fatal.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Binds `addr` and serves in a background task; returns the bound address (use port 0
/// in tests) and a handle whose drop does not stop the server (abort it to stop).
pub async fn spawn(
    addr: SocketAddr,
    store: Arc<KeyStore>,
    config: ServerConfig,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(serve(listener, store, config, std::future::pending()));
    Ok((local, handle))
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: Vec<u8>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    resp
}

fn error_response(e: &KmsError, request_id: &str) -> Response<Full<Bytes>> {
    let body = json!({ "__type": e.aws_type(), "message": e.to_string() });
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    response(status, JSON_1_1, body.to_string().into_bytes(), request_id)
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let request_id = random_uuid(&ring::rand::SystemRandom::new()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = KmsError::Validation(format!(
                "Request body is larger than {MAX_BODY_BYTES} bytes or could not be read"
            ));
            return error_response(&e, &request_id);
        }
    };
    let path = parts.uri.path();
    if let Some(admin_path) = path.strip_prefix("/__admin/") {
        if !shared.config.enable_admin {
            return response(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"not found\n".to_vec(),
                &request_id,
            );
        }
        return admin(shared, &parts.method, admin_path, &body, &request_id).await;
    }
    if parts.method == Method::GET && path == "/" {
        return response(
            StatusCode::OK,
            "text/plain",
            b"healthy: kms-mock\n".to_vec(),
            &request_id,
        );
    }
    if parts.method != Method::POST || path != "/" {
        let e = KmsError::UnknownOperation(format!("No operation at {} {path}", parts.method));
        let mut r = error_response(&e, &request_id);
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }

    let op = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .map(str::to_string);
    let result = async {
        authenticate(shared, &parts, &body)?;
        let op = op.ok_or_else(|| {
            KmsError::UnknownOperation(
                "Missing or unknown X-Amz-Target (expected TrentService.<Operation>)".into(),
            )
        })?;
        if !api::OPERATIONS.contains(&op.as_str()) {
            return Err(KmsError::UnknownOperation(format!(
                "Unknown operation {op}"
            )));
        }
        if let Some(fault) = shared.store.take_fault(&op) {
            if !fault.latency.is_zero() {
                tokio::time::sleep(fault.latency).await;
            }
            if fault.timeout {
                tokio::time::sleep(INJECTED_TIMEOUT).await;
                return Err(KmsError::DependencyTimeout(format!(
                    "Injected timeout for {op}"
                )));
            }
            if let Some(e) = fault.error {
                return Err(e);
            }
        }
        let store = shared.store.clone();
        let op_for_task = op.clone();
        let body = body.clone();
        // The store may fsync its state file: keep that off the async workers.
        let out = tokio::task::spawn_blocking(move || api::dispatch(&store, &op_for_task, &body))
            .await
            .map_err(|_| KmsError::Internal("operation task failed".into()))??;
        Ok((op, out))
    }
    .await;
    match result {
        Ok((op, out)) => {
            tracing::info!(operation = %op, status = 200, request_id = %request_id, "request");
            response(
                StatusCode::OK,
                JSON_1_1,
                out.to_string().into_bytes(),
                &request_id,
            )
        }
        Err(e) => {
            tracing::info!(error = e.aws_type(), status = e.http_status(), request_id = %request_id, "request failed");
            error_response(&e, &request_id)
        }
    }
}

fn authenticate(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: &[u8],
) -> Result<(), KmsError> {
    let header = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .ok_or_else(|| {
            KmsError::MissingAuthenticationToken("Missing Authentication Token".into())
        })?;
    let header = header
        .to_str()
        .map_err(|_| KmsError::IncompleteSignature("Authorization header is not ASCII".into()))?;
    let auth = sigv4::parse_authorization(header)?;
    if !shared.config.verify_signatures {
        return Ok(());
    }
    let req = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    };
    sigv4::verify(
        &req,
        &auth,
        &shared.config.credentials,
        shared.store.region(),
        SystemTime::now(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockInput {
    advance_secs: u64,
}

async fn admin(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: &[u8],
    request_id: &str,
) -> Response<Full<Bytes>> {
    let ok = |v: Value| {
        response(
            StatusCode::OK,
            "application/json",
            v.to_string().into_bytes(),
            request_id,
        )
    };
    let bad = |msg: String| {
        response(
            StatusCode::BAD_REQUEST,
            "application/json",
            json!({ "error": msg }).to_string().into_bytes(),
            request_id,
        )
    };
    let store = &shared.store;
    match (method.clone(), path) {
        (Method::GET, "health") => ok(json!({ "status": "ok", "now": store.now_epoch_secs() })),
        (Method::GET, "faults") => ok(json!({ "faults": store.faults() })),
        (Method::POST, "faults") => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => match store.add_fault(rule) {
                Ok(()) => ok(json!({ "faults": store.faults() })),
                Err(e) => bad(e.to_string()),
            },
            Err(e) => bad(format!("bad fault rule: {e}")),
        },
        (Method::DELETE, "faults") => {
            store.clear_faults();
            ok(json!({ "faults": [] }))
        }
        (Method::POST, "clock") => match serde_json::from_slice::<ClockInput>(body) {
            Ok(c) => {
                let store = store.clone();
                let res = tokio::task::spawn_blocking(move || {
                    store
                        .advance_clock(c.advance_secs)
                        .map(|()| store.now_epoch_secs())
                })
                .await;
                match res {
                    Ok(Ok(now)) => ok(json!({ "now": now })),
                    Ok(Err(e)) => bad(e.to_string()),
                    Err(_) => bad("clock task failed".into()),
                }
            }
            Err(e) => bad(format!("bad clock request: {e}")),
        },
        _ => response(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"not found\n".to_vec(),
            request_id,
        ),
    }
}
