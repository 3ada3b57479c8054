//! SigV4 verification (Authorization header and presigned query forms) on attacker-shaped
//! requests. Nothing may panic, and no error message may contain the secret.
//!
//! Byte 0 picks the mode:
//! - raw: the rest is `METHOD \n PATH \n QUERY \n (NAME: VALUE \n)* \n BODY`; an empty QUERY
//!   line means no query. Every header that `http` accepts is passed to the verifier.
//! - signed / presigned: the rest describes a well-formed request (method, path, query, one
//!   custom header, body, session token on/off), which our signer signs. The verifier must
//!   accept it, and must reject it again after one body byte or one signature character changed.
#![no_main]

use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::HeaderMap;
use libfuzzer_sys::fuzz_target;
use sealdb::auth::sigv4::{
    presign, sign, verify, AuthError, KeyLookup, KeyMaterial, RequestParts, VerifyConfig,
};
use time::OffsetDateTime;

const AKID: &str = "AKIDFUZZ";
const TOKEN_AKID: &str = "ASIAFUZZ";
const SECRET: &str = "fuzzSecretKey/0123456789+abcdefghijklmnop";
const TOKEN: &str = "fuzz-session-token//==";
const REGION: &str = "us-east-1";
const SERVICE: &str = "dynamodb";
// 2024-01-01T00:00:00Z: a fixed clock keeps every input reproducible.
const NOW_UNIX: i64 = 1_704_067_200;

struct Keys;

impl KeyLookup for Keys {
    fn lookup(&self, id: &str) -> Option<KeyMaterial> {
        let token = match id {
            AKID => None,
            TOKEN_AKID => Some(TOKEN.to_owned()),
            _ => return None,
        };
        Some(KeyMaterial {
            secret: SECRET.to_owned().into(),
            session_token: token,
        })
    }
}

fn cfg() -> VerifyConfig<'static> {
    VerifyConfig {
        region: REGION,
        service: SERVICE,
        max_skew: Duration::from_secs(15 * 60),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW_UNIX).expect("fixed timestamp is valid")
}

fn check(result: &Result<sealdb::auth::sigv4::Verified, AuthError>) {
    if let Err(e) = result {
        assert!(!e.message().contains(SECRET), "secret in error message");
        let _ = e.aws_type();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => raw(rest),
        m => round_trip(rest, m == 2),
    }
});

/// Splits off the first line (without its `\n`); the rest follows the newline.
fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let all: &'a [u8] = rest;
    match all.iter().position(|&b| b == b'\n') {
        Some(i) => {
            *rest = all.get(i + 1..).unwrap_or_default();
            all.get(..i).unwrap_or_default()
        }
        None => {
            *rest = &[];
            all
        }
    }
}

fn raw(mut data: &[u8]) {
    let method = String::from_utf8_lossy(next_line(&mut data)).into_owned();
    let path = String::from_utf8_lossy(next_line(&mut data)).into_owned();
    let query = Some(next_line(&mut data))
        .filter(|q| !q.is_empty())
        .map(|q| String::from_utf8_lossy(q).into_owned());
    let mut headers = HeaderMap::new();
    while !data.is_empty() {
        let line = next_line(&mut data);
        if line.is_empty() {
            break;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let parts = RequestParts {
        method: &method,
        path: &path,
        query: query.as_deref(),
        headers: &headers,
        body: data,
    };
    check(&verify(&parts, &cfg(), now(), &Keys));
}

/// Keeps only bytes in `allowed`, as a String.
fn only(bytes: &[u8], allowed: impl Fn(u8) -> bool) -> String {
    bytes
        .iter()
        .copied()
        .filter(|&b| allowed(b))
        .map(char::from)
        .collect()
}

fn round_trip(data: &[u8], presigned: bool) {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let mut fields = data.splitn(5, |&b| b == b'\n');
    let method = ["GET", "POST", "PUT", "DELETE"][usize::from(flags & 3)];
    let with_token = flags & 4 != 0;
    let unsigned_body = flags & 8 != 0;
    // The characters a client sends unescaped or percent-escaped in a path and a query.
    let mut path = only(fields.next().unwrap_or_default(), |b| {
        b.is_ascii_alphanumeric() || b"/%._~+=-".contains(&b)
    });
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let raw_query = only(fields.next().unwrap_or_default(), |b| {
        b.is_ascii_alphanumeric() || b"%=&+._~-".contains(&b)
    });
    // Presign parameters (also percent-encoded ones) are the signer's to set, not the caller's.
    let query: Option<String> = (!raw_query.is_empty()).then(|| {
        raw_query
            .split('&')
            .filter(|p| {
                let name = p.split('=').next().unwrap_or_default();
                !name.contains('%') && !name.to_ascii_lowercase().contains("amz")
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let custom = only(fields.next().unwrap_or_default(), |b| {
        (b' '..=b'~').contains(&b)
    });
    let expires_raw = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default().to_vec();

    let mut signed_headers = vec![
        ("host".to_owned(), "localhost:8000".to_owned()),
        ("x-custom".to_owned(), custom),
    ];
    if !presigned {
        signed_headers.push((
            "x-amz-target".to_owned(),
            "DynamoDB_20120810.GetItem".to_owned(),
        ));
    }
    let (akid, token) = if with_token {
        (TOKEN_AKID, Some(TOKEN))
    } else {
        (AKID, None)
    };
    let mut headers = HeaderMap::new();
    for (n, v) in &signed_headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            return;
        };
        headers.append(n, v);
    }
    let query = if presigned {
        // 1 s to 7 days, the range SigV4 allows.
        let secs = expires_raw.iter().fold(0u64, |acc, &b| {
            acc.wrapping_mul(31).wrapping_add(u64::from(b))
        }) % 604_800
            + 1;
        Some(presign(
            method,
            &path,
            query.as_deref(),
            &signed_headers,
            (!unsigned_body).then_some(body.as_slice()),
            akid,
            SECRET,
            token,
            REGION,
            SERVICE,
            now(),
            Duration::from_secs(secs),
        ))
    } else {
        for (n, v) in sign(
            method,
            &path,
            query.as_deref(),
            &signed_headers,
            &body,
            akid,
            SECRET,
            token,
            REGION,
            SERVICE,
            now(),
        ) {
            let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_str(&v),
            ) else {
                panic!("signer produced an invalid header {n:?}");
            };
            headers.insert(n, v);
        }
        query
    };
    let verify_with = |headers: &HeaderMap, query: Option<&str>, body: &[u8]| {
        let parts = RequestParts {
            method,
            path: &path,
            query,
            headers,
            body,
        };
        let r = verify(&parts, &cfg(), now(), &Keys);
        check(&r);
        r
    };
    let ok = verify_with(&headers, query.as_deref(), &body);
    match &ok {
        Ok(v) => {
            assert_eq!(v.access_key_id, akid);
            assert_eq!(v.presigned, presigned);
        }
        Err(e) => panic!(
            "verifier rejects what the signer signed: {}: {} (method {method}, path {path:?}, query {query:?})",
            e.aws_type(),
            e.message()
        ),
    }

    // One changed body byte: only an UNSIGNED-PAYLOAD presigned request may still verify.
    if !body.is_empty() && !(presigned && unsigned_body) {
        let mut tampered = body.clone();
        let i = usize::from(flags >> 4) % tampered.len();
        tampered[i] ^= 0x01;
        assert!(
            verify_with(&headers, query.as_deref(), &tampered).is_err(),
            "tampered body accepted"
        );
    }

    // One changed signature character must be rejected.
    if presigned {
        let q = query.unwrap_or_default();
        let flipped = flip_last_hex(&q);
        assert!(
            verify_with(&headers, Some(&flipped), &body).is_err(),
            "tampered presigned signature accepted"
        );
    } else if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let flipped = flip_last_hex(auth);
        let mut h = headers.clone();
        h.insert(
            "authorization",
            HeaderValue::from_str(&flipped).expect("ASCII header stays valid"),
        );
        assert!(
            verify_with(&h, query.as_deref(), &body).is_err(),
            "tampered signature accepted"
        );
    }
}

/// The signature is the last 64 hex digits of the query or header; change its last digit.
fn flip_last_hex(s: &str) -> String {
    let mut out = s.to_owned();
    if let Some(last) = out.pop() {
        out.push(if last == '0' { '1' } else { '0' });
    }
    out
}
