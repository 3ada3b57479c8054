//! `sealdb bench`: the built-in load generator. It measures, in one run and on the same
//! machine, a bare hyper server answering a fixed JSON body (the ceiling of this HTTP stack
//! here) and sealdb's PutItem and GetItem of items of a given size with SigV4, IAM and
//! encryption all on, over the same number of keep-alive HTTP/1.1 connections. Two more rows
//! replay the signed PutItem and GetItem requests against a hyper server that reads the request
//! and answers a fixed body of the operation's response size: what each exchange costs with no
//! work behind it, the ceiling for the operation on this machine and this client.
//!
//! The scenarios take turns in short slices (`rounds`), and each row's "vs bare" is the median
//! of its per-round ratio to the bare row: on a shared VM the bare figure alone moves by a
//! third within minutes, which one long phase per row would credit to a single row.

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
    /// Every scenario runs `rounds` times for `duration / rounds`, the scenarios taking turns,
    /// so that a slow spell of a shared machine hits every row alike.
    pub rounds: usize,
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
    /// This row's rate as a fraction of the bare hyper row's in the same round, the median
    /// over the rounds (1.0 for the bare row itself).
    pub vs_bare: f64,
}

impl BenchResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }
}

/// More rounds than this would make slices too short to mean anything.
pub const MAX_ROUNDS: usize = 1000;

/// Builds request `i` of a connection's sequence.
pub type RequestFactory = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// What one timed slice of one scenario measured.
struct Slice {
    ok: u64,
    err: u64,
    seconds: f64,
    cpu_seconds: Option<f64>,
    /// Latency of every request, in µs.
    lat: Vec<u64>,
}

impl Slice {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.seconds.max(1e-9)
    }
}

/// Drives `connections` keep-alive connections for `duration`, each sending requests back to
/// back; counts non-2xx responses as errors.
async fn drive_slice(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    factory: &RequestFactory,
) -> Result<Slice, String> {
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
    let cpu_seconds = match (cpu_start, process_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(Slice {
        ok,
        err,
        seconds,
        cpu_seconds,
        lat,
    })
}

/// One scenario's slices (one per round) as one result; `vs_bare` is the median over rounds of
/// this scenario's rate divided by the bare row's rate in the same round.
fn summarize(name: &str, slices: Vec<Slice>, bare: Option<&[Slice]>) -> BenchResult {
    let (mut requests, mut errors, mut seconds) = (0u64, 0u64, 0f64);
    let mut cpu = Some(0f64);
    let mut lat = Vec::new();
    let mut ratios = Vec::new();
    for (i, s) in slices.into_iter().enumerate() {
        if let Some(b) = bare.and_then(|b| b.get(i)) {
            ratios.push(s.rps() / b.rps().max(1e-9));
        }
        requests += s.ok;
        errors += s.err;
        seconds += s.seconds;
        cpu = cpu.zip(s.cpu_seconds).map(|(a, b)| a + b);
        lat.extend(s.lat);
    }
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize]
        }
    };
    BenchResult {
        name: name.to_string(),
        requests,
        errors,
        seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us_per_req: cpu
            .filter(|_| requests > 0)
            .map(|c| c * 1e6 / requests as f64),
        vs_bare: bare.map(|_| median(&mut ratios)).unwrap_or(1.0),
    }
}

/// The median of `v` (the mean of the middle two for an even count); 0 when empty.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
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
/// `dynamo_headers`, reads the whole request body (as sealdb does) and adds the two headers
/// sealdb adds (request id and CRC32): with sealdb's own requests replayed against it, it
/// measures what the exchange's sizes alone cost here.
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
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        if dynamo_headers {
                            let _ = req.into_body().collect().await;
                        }
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

/// The whole comparison against `signer.addr`: bare hyper, a PutItem-sized exchange, PutItem,
/// a GetItem-sized exchange and GetItem, in that order in every round.
pub async fn run(
    opts: &BenchOptions,
    signer: Arc<Signer>,
    table: &str,
) -> Result<Vec<BenchResult>, String> {
    let bare = start_bare_hyper().await?;
    // Built once, like the presigned requests below, so both sides pay the same per request.
    let bare_headers = header_map(&[("host".to_string(), bare.to_string())]);
    let bare_factory: RequestFactory = Arc::new(move |_| {
        let mut req = Request::new(Full::new(Bytes::from_static(b"{}")));
        *req.method_mut() = hyper::Method::POST;
        *req.headers_mut() = bare_headers.clone();
        req
    });

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
    let gets = Arc::new(Presigned::new(
        &signer,
        "GetItem",
        (0..keys as u64).map(|i| key_body(table, i, keys)),
    ));
    // The HTTP exchanges of a PutItem and a GetItem (the signed requests, responses of the same
    // size and headers) with no work behind them: how much of each operation's cost is the
    // exchange itself.
    let put_sized = start_fixed_hyper(Bytes::from_static(b"{}"), true).await?;
    let sized = start_fixed_hyper(Bytes::from(get_response_body(size)), true).await?;
    let ceiling_puts = puts.clone();
    let ceiling_gets = gets.clone();
    // PutItem precedes GetItem in every round, so the first round's reads find their items.
    let scenarios: [(String, SocketAddr, RequestFactory); 5] = [
        ("bare hyper (fixed JSON)".into(), bare, bare_factory),
        (
            "hyper, PutItem-sized exchange".into(),
            put_sized,
            Arc::new(move |i| ceiling_puts.request(i)),
        ),
        (
            format!("sealdb PutItem ({size} B items)"),
            signer.addr,
            Arc::new(move |i| puts.request(i)),
        ),
        (
            "hyper, GetItem-sized exchange".into(),
            sized,
            Arc::new(move |i| ceiling_gets.request(i)),
        ),
        (
            format!("sealdb GetItem ({size} B items)"),
            signer.addr,
            Arc::new(move |i| gets.request(i)),
        ),
    ];
    // Bounded so the division below can neither truncate the count nor divide by zero.
    let rounds = opts.rounds.clamp(1, MAX_ROUNDS);
    let slice = opts.duration / u32::try_from(rounds).unwrap_or(1);
    let mut slices: [Vec<Slice>; 5] = Default::default();
    for _ in 0..rounds {
        for (k, (_, addr, factory)) in scenarios.iter().enumerate() {
            slices[k].push(drive_slice(*addr, opts.connections, slice, factory).await?);
        }
    }
    let [bare_slices, rest @ ..] = slices;
    let mut out = Vec::with_capacity(scenarios.len());
    for ((name, _, _), s) in scenarios.iter().skip(1).zip(rest) {
        out.push(summarize(name, s, Some(&bare_slices)));
    }
    out.insert(0, summarize(&scenarios[0].0, bare_slices, None));
    Ok(out)
}

pub fn report(results: &[BenchResult]) -> String {
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
            100.0 * r.vs_bare,
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
            vs_bare: requests as f64 / 1000.0,
        };
        let text = report(&[r("bare", 1000, Some(12.34)), r("get", 500, None)]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("CPU µs/req"));
        assert!(lines[1].contains("100%") && lines[1].ends_with("12.3"));
        assert!(lines[2].contains("50%") && lines[2].ends_with('-'));
    }

    fn slice(ok: u64, seconds: f64, cpu: Option<f64>, lat: &[u64]) -> Slice {
        Slice {
            ok,
            err: 0,
            seconds,
            cpu_seconds: cpu,
            lat: lat.to_vec(),
        }
    }

    #[test]
    fn rounds_are_compared_with_the_bare_row_of_the_same_round() {
        // Round 2 is a slow spell of the machine for the bare row only: its ratio (0.8) is an
        // outlier that the median drops, where a ratio of totals would give 135/250 = 0.54.
        let bare = [
            slice(100, 1.0, Some(0.5), &[1]),
            slice(50, 1.0, Some(0.5), &[2]),
            slice(100, 1.0, Some(0.5), &[3]),
        ];
        let get = vec![
            slice(50, 1.0, Some(0.25), &[10, 30]),
            slice(40, 1.0, Some(0.25), &[20]),
            slice(45, 1.0, Some(0.5), &[40]),
        ];
        let r = summarize("get", get, Some(&bare));
        assert_eq!(r.requests, 135);
        assert!((r.vs_bare - 0.5).abs() < 1e-9, "{}", r.vs_bare);
        assert!((r.rps() - 45.0).abs() < 1e-9);
        assert_eq!((r.p50_us, r.p99_us), (20, 30));
        let cpu = r.cpu_us_per_req.unwrap();
        assert!((cpu - 1e6 / 135.0).abs() < 1e-6, "{cpu}");
        let b = summarize("bare", bare.into_iter().collect(), None);
        assert_eq!(b.vs_bare, 1.0);
        // One round without a CPU reading: no CPU figure rather than a wrong one.
        let partial = summarize("x", vec![slice(1, 1.0, None, &[1])], None);
        assert_eq!(partial.cpu_us_per_req, None);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
