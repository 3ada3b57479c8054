//! What is on disk: the canary scan (no plaintext anywhere under the data dir), tampering
//! detection, and durability of acknowledged writes across SIGKILL.

mod common;

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as Av, ScalarAttributeType};
use aws_sdk_dynamodb::Client;
use base64::Engine;
use common::*;
use rand_markers::*;
use sealdb::storage::{RocksStore, Space, Store, Write};

mod rand_markers {
    /// A unique marker: 20 upper-case alphanumerics from the OS RNG.
    pub fn marker() -> String {
        const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let bytes: [u8; 20] = sealdb::crypto::secret::random_bytes().unwrap();
        bytes
            .iter()
            .map(|b| A[(*b as usize) % A.len()] as char)
            .collect()
    }

    /// A unique number marker: 20 random digits (no leading zero).
    pub fn number_marker() -> String {
        let bytes: [u8; 20] = sealdb::crypto::secret::random_bytes().unwrap();
        let mut s: String = bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
        s.replace_range(0..1, "7");
        s
    }
}

/// Every encoding of a marker the scan looks for.
fn needles(marker: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut all = vec![
        marker.to_vec(),
        hex::encode(marker).into_bytes(),
        hex::encode_upper(marker).into_bytes(),
        b64.encode(marker).trim_end_matches('=').as_bytes().to_vec(),
    ];
    // A marker whose hex has no letter a-f encodes the same in both cases: one needle, so
    // that one planted copy is one hit.
    all.sort();
    all.dedup();
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Files under `dir` containing any encoding of any marker.
fn scan_dir(dir: &Path, markers: &[Vec<u8>]) -> Vec<String> {
    let mut hits = Vec::new();
    let all: Vec<(usize, Vec<u8>)> = markers
        .iter()
        .enumerate()
        .flat_map(|(i, m)| needles(m).into_iter().map(move |n| (i, n)))
        .collect();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for (i, n) in &all {
                if contains(&bytes, n) {
                    hits.push(format!("{} contains marker #{i}", p.display()));
                }
            }
        }
    }
    assert!(files > 0, "scanned no files");
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_markers_never_reach_the_disk() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Canary", Some(ScalarAttributeType::B)).await;
    let mut markers: Vec<Vec<u8>> = Vec::new();
    for _ in 0..25 {
        let (pk, sk, s, n, nested, set, listed) = (
            marker(),
            marker(),
            marker(),
            number_marker(),
            marker(),
            marker(),
            marker(),
        );
        for m in [&pk, &sk, &s, &n, &nested, &set, &listed] {
            markers.push(m.as_bytes().to_vec());
        }
        let item = HashMap::from([
            ("pk".to_string(), Av::S(pk.clone())),
            ("sk".to_string(), Av::B(Blob::new(sk.as_bytes().to_vec()))),
            ("s".to_string(), Av::S(s)),
            ("n".to_string(), Av::N(n)),
            (
                "m".to_string(),
                Av::M(HashMap::from([("inner".to_string(), Av::S(nested))])),
            ),
            ("ss".to_string(), Av::Ss(vec![set])),
            ("l".to_string(), Av::L(vec![Av::S(listed)])),
        ]);
        c.put_item()
            .table_name("Canary")
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
        // Read it back so reads are in the mix too.
        let got = c
            .get_item()
            .table_name("Canary")
            .key("pk", Av::S(pk))
            .key("sk", Av::B(Blob::new(sk.into_bytes())))
            .send()
            .await
            .unwrap();
        assert!(got.item().is_some());
    }
    srv.services().store.flush_and_compact().unwrap();
    let dir = srv.stop().await;

    let hits = scan_dir(dir.path(), &markers);
    assert!(hits.is_empty(), "plaintext found on disk: {hits:?}");

    // The scanner itself works: a marker planted in a plain file, in each encoding, is found.
    let plant = tempfile::tempdir().unwrap();
    let m = marker();
    for (i, n) in needles(m.as_bytes()).iter().enumerate() {
        let d = plant.path().join(format!("p{i}"));
        std::fs::create_dir(&d).unwrap();
        let mut bytes = b"some prefix ".to_vec();
        bytes.extend_from_slice(n);
        std::fs::write(d.join("plain.txt"), bytes).unwrap();
        assert_eq!(
            scan_dir(&d, &[m.as_bytes().to_vec()]).len(),
            1,
            "needle {i} not found"
        );
    }
}

async fn put_two(c: &Client) {
    for (pk, v) in [("a", "alpha"), ("b", "bravo")] {
        c.put_item()
            .table_name("Tamper")
            .item("pk", Av::S(pk.into()))
            .item("sk", Av::N("1".into()))
            .item("v", Av::S(v.into()))
            .send()
            .await
            .unwrap();
    }
}

async fn get(c: &Client, pk: &str) -> Result<Option<String>, String> {
    match c
        .get_item()
        .table_name("Tamper")
        .key("pk", Av::S(pk.into()))
        .key("sk", Av::N("1".into()))
        .send()
        .await
    {
        Ok(o) => Ok(o
            .item()
            .and_then(|i| i.get("v"))
            .and_then(|v| v.as_s().ok())
            .cloned()),
        Err(e) => Err(code(&e)),
    }
}

fn items_rows(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let store = RocksStore::open(&dir.join("db")).unwrap();
    let page = store.scan(Space::Items, &[], None, false, 1000).unwrap();
    page.entries
}

fn rewrite(dir: &Path, writes: Vec<Write>) {
    let store = RocksStore::open(&dir.join("db")).unwrap();
    store.commit(&[], &writes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_moved_values_are_integrity_errors() {
    let srv = TestServer::start().await;
    let c = srv.client();
    create_table(&c, "Tamper", Some(ScalarAttributeType::N)).await;
    put_two(&c).await;
    let dir = srv.stop().await;

    // Identify the two rows by opening the server again later; here they are opaque.
    let rows = items_rows(dir.path());
    assert_eq!(rows.len(), 2);

    // 1. Flip one byte in the middle of the first row's ciphertext.
    let (k0, mut v0) = rows[0].clone();
    let mid = v0.len() / 2;
    v0[mid] ^= 0x01;
    rewrite(
        dir.path(),
        vec![Write::Put {
            space: Space::Items,
            key: k0.clone(),
            value: v0,
        }],
    );
    let srv = TestServer::start_in(dir).await;
    let c = srv.client();
    let results = [get(&c, "a").await, get(&c, "b").await];
    assert_eq!(
        results
            .iter()
            .filter(|r| *r == &Err("InternalServerError".to_string()))
            .count(),
        1,
        "exactly the tampered item fails: {results:?}"
    );
    assert!(
        results.iter().any(|r| matches!(r, Ok(Some(_)))),
        "{results:?}"
    );
    let dir = srv.stop().await;
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"kind\":\"integrity\""),
        "integrity failure is audited"
    );

    // 2. Copy the second row's (intact) value under the first row's key.
    rewrite(
        dir.path(),
        vec![Write::Put {
            space: Space::Items,
            key: k0,
            value: rows[1].1.clone(),
        }],
    );
    let srv = TestServer::start_in(dir).await;
    let c = srv.client();
    let results = [get(&c, "a").await, get(&c, "b").await];
    assert_eq!(
        results
            .iter()
            .filter(|r| *r == &Err("InternalServerError".to_string()))
            .count(),
        1,
        "the moved value never opens under another key: {results:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path());
    let c = server.client();
    create_table(&c, "Durable", Some(ScalarAttributeType::N)).await;
    const N: usize = 300;
    // Concurrent writers, so the WAL group commit is exercised too.
    let mut tasks = Vec::new();
    for w in 0..6 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..N).step_by(6) {
                c.put_item()
                    .table_name("Durable")
                    .item("pk", Av::S(format!("p{}", i % 7)))
                    .item("sk", Av::N(i.to_string()))
                    .item("payload", Av::S(format!("value-{i}")))
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.kill9();

    let server = ChildServer::start(dir.path());
    let c = server.client();
    for i in 0..N {
        let got = c
            .get_item()
            .table_name("Durable")
            .key("pk", Av::S(format!("p{}", i % 7)))
            .key("sk", Av::N(i.to_string()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.item()
                .and_then(|it| it.get("payload"))
                .and_then(|v| v.as_s().ok())
                .map(String::as_str),
            Some(format!("value-{i}").as_str()),
            "item {i} lost"
        );
    }
    let t = c
        .describe_table()
        .table_name("Durable")
        .send()
        .await
        .unwrap();
    assert_eq!(t.table().unwrap().item_count(), Some(N as i64));
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path());
    let c = server.client();
    create_table(&c, "Drain", Some(ScalarAttributeType::N)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let (c, stop) = (c.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 10_000 {
                let sk = w * 100_000 + i;
                i += 1;
                match c
                    .put_item()
                    .table_name("Drain")
                    .item("pk", Av::S(format!("w{w}")))
                    .item("sk", Av::N(sk.to_string()))
                    .send()
                    .await
                {
                    Ok(_) => acked.push(sk),
                    Err(e) => {
                        // After the signal a request may find the listener closed, but the
                        // server never answers one it accepted with an error.
                        assert!(
                            e.as_service_error().is_none(),
                            "server error during shutdown: {e:?}"
                        );
                        assert!(
                            e.raw_response().is_none(),
                            "HTTP error during shutdown: {e:?}"
                        );
                        break;
                    }
                }
            }
            (w, acked)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let pid = server.child.id();
    let mut child = server.child;
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let total: usize = all.iter().map(|(_, a)| a.len()).sum();
    assert!(total > 0, "some writes were acknowledged before the signal");

    let server = ChildServer::start(dir.path());
    let c = server.client();
    for (w, acked) in &all {
        for sk in acked {
            let got = c
                .get_item()
                .table_name("Drain")
                .key("pk", Av::S(format!("w{w}")))
                .key("sk", Av::N(sk.to_string()))
                .send()
                .await
                .unwrap();
            assert!(got.item().is_some(), "acknowledged write w{w}/{sk} lost");
        }
    }
    server.terminate();
}
