//! `sealdb bench`: the built-in load generator. It measures, in one run and on the same
//! machine, a bare hyper server answering a fixed JSON body (the ceiling of this HTTP stack
//! here) and sealdb's PutItem and GetItem of items of a given size with SigV4, IAM and
//! encryption all on, over the same number of keep-alive HTTP/1.1 connections. A fourth row
//! replays the signed GetItem requests against a hyper server that answers a fixed body of
//! GetItem's response size: what the exchange costs with no work behind it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub connections: usize,
    pub duration: Duration,
    pub item_bytes: usize,
    /// Distinct items written (and then read).
    pub keys: usize,
}

#[derive(Debug, Clone)]
pub struct BenchResult {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// CPU time (user + system) of this whole process per successful request, in µs: client
    /// and server together when the server runs in-process. Less sensitive than req/s to
    /// other load on a shared machine; `None` where /proc is unavailable.
    pub cpu_us_per_req: Option<f64>,
}

impl BenchResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }
}

/// Builds request `i` of a connection's sequence.
pub type RequestFactory = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Drives `connections` keep-alive connections for `duration`, each sending requests back to
/// back; counts non-2xx responses as errors.
pub async fn drive(
    name: &str,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    factory: RequestFactory,
) -> Result<BenchResult, String> {
    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let factory = factory.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut lat = Vec::with_capacity(1 << 16);
            let (mut ok, mut err) = (0u64, 0u64);
            let mut i = c as u64;
            while Instant::now() < deadline {
                let req = factory(i);
                i += connections as u64;
                let t = Instant::now();
                let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let _ = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                lat.push(t.elapsed().as_micros() as u64);
                if status.is_success() {
                    ok += 1;
                } else {
                    err += 1;
                }
            }
            Ok::<_, String>((ok, err, lat))
        }));
    }
    let (mut ok, mut err, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        let (o, e, l) = t.await.map_err(|e| e.to_string())??;
        ok += o;
        err += e;
        lat.extend(l);
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_us_per_req = match (cpu_start, process_cpu_seconds()) {
        (Some(a), Some(b)) if ok > 0 => Some((b - a) * 1e6 / ok as f64),
        _ => None,
    };
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize]
        }
    };
    Ok(BenchResult {
        name: name.to_string(),
        requests: ok,
        errors: err,
        seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us_per_req,
    })
}

// Linux reports /proc times in USER_HZ, which is 100 on every mainstream distribution.
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of this process so far (Linux: /proc/self/stat fields 14 and 15).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces and parentheses; the fields after the last ')' are
    // fixed, starting with field 3 (state), so fields 14 and 15 are the 12th and 13th.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user.saturating_add(system) as f64 / USER_HZ)
}

/// Sends one request on a fresh connection and returns its status.
async fn send_once(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<hyper::StatusCode, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// A bare hyper server answering every request with a fixed DynamoDB-shaped JSON body.
pub async fn start_bare_hyper() -> Result<SocketAddr, String> {
    start_fixed_hyper(Bytes::from_static(b"{\"TableNames\":[]}"), false).await
}

const FIXED_REQUEST_ID: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEF";

/// A hyper server that does no work but answers every request with `body` and, when
/// `dynamo_headers`, the two headers sealdb adds (request id and CRC32): with sealdb's own
/// requests replayed against it, it measures what the exchange's sizes alone cost here.
pub async fn start_fixed_hyper(body: Bytes, dynamo_headers: bool) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        let mut b = Response::builder()
                            .header("content-type", "application/x-amz-json-1.0");
                        if dynamo_headers {
                            // Same lengths as sealdb's values (52-character id, u32).
                            b = b
                                .header("x-amzn-requestid", FIXED_REQUEST_ID)
                                .header("x-amz-crc32", "1234567890");
                        }
                        Ok::<_, Infallible>(b.body(Full::new(body)).unwrap_or_default())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Requests signed once, before the timed run, and replayed: SigV4 allows replay within the
/// 15-minute window, and a lean load generator should not spend the shared cores on signing
/// (the bare hyper baseline does not sign either). The server still verifies every request.
pub struct Presigned {
    /// Header maps are built once: parsing and hashing header names per request cost the
    /// shared cores ~4% of a GetItem run (perf), which the bare baseline does not pay.
    requests: Vec<(hyper::HeaderMap, Bytes)>,
}

impl Presigned {
    pub fn new(signer: &Signer, op: &str, bodies: impl Iterator<Item = Vec<u8>>) -> Presigned {
        Presigned {
            requests: bodies
                .map(|b| {
                    let (headers, body) = signer.signed_parts(op, b);
                    (header_map(&headers), body)
                })
                .collect(),
        }
    }

    pub fn request(&self, i: u64) -> Request<Full<Bytes>> {
        let n = self.requests.len().max(1);
        let Some((headers, body)) = self.requests.get((i as usize) % n) else {
            return Request::new(Full::new(Bytes::new()));
        };
        // The default URI is "/".
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = hyper::Method::POST;
        *req.headers_mut() = headers.clone();
        req
    }
}

/// A header map of `(name, value)` pairs; a pair that is not a valid header is left out (the
/// server then refuses the request, which the run counts as an error).
fn header_map(headers: &[(String, String)]) -> hyper::HeaderMap {
    let mut map = hyper::HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Signed DynamoDB requests against `addr`.
pub struct Signer {
    pub addr: SocketAddr,
    pub access_key: String,
    pub secret: zeroize::Zeroizing<String>,
    pub region: String,
}

impl Signer {
    /// The headers (host, content type, target and the SigV4 ones) and body of a signed request.
    pub fn signed_parts(&self, op: &str, body: Vec<u8>) -> (Vec<(String, String)>, Bytes) {
        let host = self.addr.to_string();
        let target = format!("DynamoDB_20120810.{op}");
        let mut headers = vec![
            ("host".to_string(), host),
            (
                "content-type".to_string(),
                "application/x-amz-json-1.0".to_string(),
            ),
            ("x-amz-target".to_string(), target),
        ];
        let signed = crate::auth::sigv4::sign(
            "POST",
            "/",
            None,
            &headers,
            &body,
            &self.access_key,
            &self.secret,
            None,
            &self.region,
            "dynamodb",
            time::OffsetDateTime::now_utc(),
        );
        headers.extend(signed);
        (headers, Bytes::from(body))
    }

    pub fn request(&self, op: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
        let (headers, body) = self.signed_parts(op, body);
        let mut b = Request::builder().method("POST").uri("/");
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(Full::new(body))
            .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
    }
}

fn item_body(table: &str, i: u64, keys: usize, item_bytes: usize) -> Vec<u8> {
    let pk = format!("user#{:08}", i % keys.max(1) as u64);
    let pad = item_bytes.saturating_sub(pk.len() + 2 + 7);
    serde_json::to_vec(&json!({
        "TableName": table,
        "Item": {"pk": {"S": pk}, "payload": {"S": "x".repeat(pad)}}
    }))
    .unwrap_or_default()
}

/// A GetItem response of the shape and size sealdb sends for `item_body`'s items.
fn get_response_body(item_bytes: usize) -> Vec<u8> {
    let pk = format!("user#{:08}", 0);
    let pad = item_bytes.saturating_sub(pk.len() + 2 + 7);
    serde_json::to_vec(&json!({"Item": {"payload": {"S": "x".repeat(pad)}, "pk": {"S": pk}}}))
        .unwrap_or_default()
}

fn key_body(table: &str, i: u64, keys: usize) -> Vec<u8> {
    let pk = format!("user#{:08}", i % keys.max(1) as u64);
    serde_json::to_vec(&json!({"TableName": table, "Key": {"pk": {"S": pk}}})).unwrap_or_default()
}

/// The whole comparison: bare hyper, then PutItem, then GetItem against `signer.addr`.
pub async fn run(
    opts: &BenchOptions,
    signer: Arc<Signer>,
    table: &str,
) -> Result<Vec<BenchResult>, String> {
    let mut out = Vec::new();
    let bare = start_bare_hyper().await?;
    // Built once, like the presigned requests below, so both sides pay the same per request.
    let bare_headers = header_map(&[("host".to_string(), bare.to_string())]);
    let bare_factory: RequestFactory = Arc::new(move |_| {
        let mut req = Request::new(Full::new(Bytes::from_static(b"{}")));
        *req.method_mut() = hyper::Method::POST;
        *req.headers_mut() = bare_headers.clone();
        req
    });
    out.push(
        drive(
            "bare hyper (fixed JSON)",
            bare,
            opts.connections,
            opts.duration,
            bare_factory,
        )
        .await?,
    );

    // Create the table (ignore "already exists").
    let create = json!({"TableName": table, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]});
    let status = send_once(
        signer.addr,
        signer.request(
            "CreateTable",
            serde_json::to_vec(&create).unwrap_or_default(),
        ),
    )
    .await?;
    if !(status.is_success() || status == hyper::StatusCode::BAD_REQUEST) {
        return Err(format!("CreateTable failed with HTTP {status}"));
    }

    let (keys, size) = (opts.keys.max(1), opts.item_bytes);
    let puts = Arc::new(Presigned::new(
        &signer,
        "PutItem",
        (0..keys as u64).map(|i| item_body(table, i, keys, size)),
    ));
    let put: RequestFactory = Arc::new(move |i| puts.request(i));
    out.push(
        drive(
            &format!("sealdb PutItem ({size} B items)"),
            signer.addr,
            opts.connections,
            opts.duration,
            put,
        )
        .await?,
    );
    let gets = Arc::new(Presigned::new(
        &signer,
        "GetItem",
        (0..keys as u64).map(|i| key_body(table, i, keys)),
    ));
    // The HTTP exchange of a GetItem (its signed request, a response of the same size and
    // headers) with no work behind it: how much of GetItem's cost is the exchange itself.
    let sized = start_fixed_hyper(Bytes::from(get_response_body(size)), true).await?;
    let ceiling_gets = gets.clone();
    out.push(
        drive(
            "hyper, GetItem-sized exchange",
            sized,
            opts.connections,
            opts.duration,
            Arc::new(move |i| ceiling_gets.request(i)),
        )
        .await?,
    );
    let get: RequestFactory = Arc::new(move |i| gets.request(i));
    out.push(
        drive(
            &format!("sealdb GetItem ({size} B items)"),
            signer.addr,
            opts.connections,
            opts.duration,
            get,
        )
        .await?,
    );
    Ok(out)
}

pub fn report(results: &[BenchResult]) -> String {
    let base = results.first().map(|r| r.rps()).unwrap_or(1.0);
    let mut s = format!(
        "{:<34} {:>10} {:>8} {:>9} {:>9} {:>9} {:>12}\n",
        "scenario", "req/s", "errors", "p50 µs", "p99 µs", "vs bare", "CPU µs/req"
    );
    for r in results {
        let cpu = r
            .cpu_us_per_req
            .map(|c| format!("{c:.1}"))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<34} {:>10.0} {:>8} {:>9} {:>9} {:>8.0}% {:>12}\n",
            r.name,
            r.rps(),
            r.errors,
            r.p50_us,
            r.p99_us,
            100.0 * r.rps() / base,
            cpu
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_time_is_read_and_grows_with_work() {
        let before = process_cpu_seconds().unwrap();
        // Burn a little CPU (more than one 10 ms clock tick).
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = process_cpu_seconds().unwrap();
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn report_shows_ratio_and_cpu_per_request() {
        let r = |name: &str, requests, cpu| BenchResult {
            name: name.into(),
            requests,
            errors: 0,
            seconds: 1.0,
            p50_us: 1,
            p99_us: 2,
            cpu_us_per_req: cpu,
        };
        let text = report(&[r("bare", 1000, Some(12.34)), r("get", 500, None)]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("CPU µs/req"));
        assert!(lines[1].contains("100%") && lines[1].ends_with("12.3"));
        assert!(lines[2].contains("50%") && lines[2].ends_with('-'));
    }
}
