//! Query with Limit 10 on a 200,000-item partition versus a 100-item partition, cold (after a
//! restart), through the real server with SigV4, IAM and sealing on. Prints p50/p99 per size.
//! Run: `cargo bench --bench query` (loads 200k items first; takes about a minute).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use sealdb::app;
use sealdb::config::Config;
use sealdb::loadgen::Signer;
use serde_json::json;

const BIG: usize = 200_000;
const SMALL: usize = 100;
const QUERIES: usize = 300;

async fn send(signer: &Signer, op: &str, body: serde_json::Value) -> serde_json::Value {
    let req: Request<Full<Bytes>> = signer.request(op, serde_json::to_vec(&body).unwrap());
    let stream = tokio::net::TcpStream::connect(signer.addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(status.is_success(), "{op}: {v}");
    v
}

async fn start(dir: &std::path::Path) -> (app::Running, Arc<Signer>) {
    let running = app::start(Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    })
    .await
    .unwrap();
    let (id, secret) =
        app::read_credentials_profile(&dir.join(app::DEV_CREDENTIALS_FILE), app::DEV_PROFILE)
            .unwrap();
    let signer = Arc::new(Signer {
        addr: running.addr,
        access_key: id,
        secret,
        region: "us-east-1".into(),
    });
    (running, signer)
}

async fn load(signer: Arc<Signer>, pk: &'static str, n: usize) {
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w * 25;
            while i < n {
                let reqs: Vec<_> = (i..(i + 25).min(n))
                    .map(|k| json!({"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"N": k.to_string()}, "v": {"S": "x".repeat(100)}}}}))
                    .collect();
                send(&signer, "BatchWriteItem", json!({"RequestItems": {"QueryBench": reqs}})).await;
                i += 8 * 25;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn measure(signer: &Signer, pk: &str, n: usize) -> (Duration, Duration) {
    let mut lat = Vec::with_capacity(QUERIES);
    for q in 0..QUERIES {
        let start_at = (q * 7919) % (n - 10);
        let mut body = json!({"TableName": "QueryBench", "Limit": 10,
            "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": pk}}});
        if start_at > 0 {
            body["ExclusiveStartKey"] = json!({"pk": {"S": pk}, "sk": {"N": start_at.to_string()}});
        }
        let t = Instant::now();
        let v = send(signer, "Query", body).await;
        lat.push(t.elapsed());
        assert!(v["Count"].as_u64().unwrap() > 0);
    }
    lat.sort();
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (running, signer) = start(dir.path()).await;
        send(&signer, "CreateTable", json!({"TableName": "QueryBench", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]})).await;
        let t = Instant::now();
        load(signer.clone(), "small", SMALL).await;
        load(signer.clone(), "big", BIG).await;
        println!("loaded {} items in {:.1} s", BIG + SMALL, t.elapsed().as_secs_f64());
        running.services.store.flush_and_compact().unwrap();
        running.stop().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;

        // Cold: a fresh process state (caches empty) over the same data dir.
        let (running, signer) = start(dir.path()).await;
        let (s50, s99) = measure(&signer, "small", SMALL).await;
        let (b50, b99) = measure(&signer, "big", BIG).await;
        println!("Query Limit 10, {SMALL}-item partition:   p50 {:>7.0} µs  p99 {:>7.0} µs", s50.as_secs_f64() * 1e6, s99.as_secs_f64() * 1e6);
        println!("Query Limit 10, {BIG}-item partition: p50 {:>7.0} µs  p99 {:>7.0} µs", b50.as_secs_f64() * 1e6, b99.as_secs_f64() * 1e6);
        println!("ratio (p50 big / small): {:.2}x", b50.as_secs_f64() / s50.as_secs_f64());
        running.stop().await.unwrap();
    });
}
