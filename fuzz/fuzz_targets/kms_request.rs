//! kms-mock's request decoding and operations: a sequence of KMS JSON requests (with fault
//! rules, clock moves and Authorization headers mixed in) against a fresh in-memory key store
//! holding one key, `alias/fuzz`. Nothing may panic, and what Encrypt or GenerateDataKey
//! returns must decrypt to the same plaintext.
//!
//! Input layout: commands separated by 0xFF (which never occurs in UTF-8 JSON). A command's
//! first byte picks it: an index into `OPERATIONS` (the rest is the body), 0xF0 a fault rule
//! (JSON), 0xF1 a clock move (up to 4 bytes, seconds), 0xF2 an Authorization header value.
#![no_main]

use std::time::{Duration, SystemTime};

use kms_mock::fault::FaultRule;
use kms_mock::server::api::{dispatch, OPERATIONS};
use kms_mock::server::sigv4::{parse_authorization, verify, Credentials, SignedRequest};
use kms_mock::{CreateKeyRequest, KeyStore};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const ALIAS: &str = "alias/fuzz";
// 2024-01-01T00:00:00Z, so signatures are checked against a fixed clock.
const NOW_UNIX: u64 = 1_704_067_200;
const AMZ_DATE: &str = "20240101T000000Z";
// Fault injection and clock moves are operator-only (the admin endpoint); bound them so a
// single input cannot run for minutes.
const MAX_CLOCK_MOVE_SECS: u64 = 1 << 32;
const MAX_COMMANDS: usize = 32;

fn fresh_store() -> KeyStore {
    let store = KeyStore::in_memory("111122223333", "us-east-1");
    let meta = store
        .create_key(CreateKeyRequest {
            description: Some("fuzz".into()),
            key_usage: None,
            key_spec: None,
            origin: None,
            multi_region: None,
        })
        .expect("create key");
    store
        .create_alias(ALIAS, &meta.key_id)
        .expect("create alias");
    store
}

fuzz_target!(|data: &[u8]| {
    let store = fresh_store();
    let mut faulted = false;
    for command in data.split(|&b| b == 0xFF).take(MAX_COMMANDS) {
        let Some((&sel, rest)) = command.split_first() else {
            continue;
        };
        match sel {
            0xF0 => {
                if let Ok(mut rule) = serde_json::from_slice::<FaultRule>(rest) {
                    rule.latency_ms = 0;
                    faulted |= store.add_fault(rule).is_ok();
                }
            }
            0xF1 => {
                let secs = rest
                    .iter()
                    .take(4)
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                let _ = store.advance_clock(secs.min(MAX_CLOCK_MOVE_SECS));
                let _ = store.now_epoch_secs();
            }
            0xF2 => auth(rest),
            _ => {
                if let Some(op) = OPERATIONS.get(usize::from(sel)) {
                    run(&store, op, rest, faulted);
                }
            }
        }
    }
});

fn run(store: &KeyStore, op: &str, body: &[u8], faulted: bool) {
    let out = match dispatch(store, op, body) {
        Ok(out) => out,
        Err(e) => {
            let _ = (e.aws_type(), e.http_status(), e.to_string());
            return;
        }
    };
    let _ = out.to_string();
    // Round trip: the ciphertext just produced opens under the same context and key.
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let expected = match op {
        "Encrypt" => input.get("Plaintext").cloned(),
        "GenerateDataKey" => out.get("Plaintext").cloned(),
        _ => None,
    };
    let (Some(expected), Some(blob)) = (expected, out.get("CiphertextBlob")) else {
        return;
    };
    let mut decrypt = json!({ "CiphertextBlob": blob });
    for member in ["EncryptionContext", "KeyId"] {
        if let Some(v) = input.get(member) {
            decrypt[member] = v.clone();
        }
    }
    match dispatch(store, "Decrypt", decrypt.to_string().as_bytes()) {
        Ok(d) => assert_eq!(
            base64_norm(d.get("Plaintext")),
            base64_norm(Some(&expected)),
            "{op} output does not decrypt to its plaintext"
        ),
        // An injected fault may fail the Decrypt itself.
        Err(_) if faulted => {}
        Err(e) => panic!("{op} output does not decrypt: {} {e}", e.aws_type()),
    }
}

/// Base64 as the KMS JSON protocol carries it may differ in padding; compare the bytes.
fn base64_norm(v: Option<&Value>) -> Option<Vec<u8>> {
    use base64_lite::decode;
    v.and_then(Value::as_str).and_then(decode)
}

mod base64_lite {
    /// Standard alphabet, padding optional; `None` on anything else.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len() / 4 * 3);
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.trim_end_matches('=').bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        Some(out)
    }
}

fn auth(header: &[u8]) {
    let Ok(value) = std::str::from_utf8(header) else {
        return;
    };
    let Ok(parsed) = parse_authorization(value) else {
        return;
    };
    let mut creds = Credentials::default();
    creds.insert("AKIDFUZZ", "fuzz-secret");
    let mut headers = hyper::HeaderMap::new();
    headers.insert(
        "host",
        hyper::header::HeaderValue::from_static("localhost:8080"),
    );
    headers.insert(
        "x-amz-date",
        hyper::header::HeaderValue::from_static(AMZ_DATE),
    );
    headers.insert(
        "x-amz-target",
        hyper::header::HeaderValue::from_static("TrentService.Encrypt"),
    );
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"{}",
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX);
    if let Err(e) = verify(&req, &parsed, &creds, "us-east-1", now) {
        assert!(!e.to_string().contains("fuzz-secret"));
    }
}
