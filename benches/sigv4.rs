//! SigV4 verification of a GetItem-shaped request as the AWS SDKs send it (the headers of
//! aws-sdk-dynamodb's requests, all signed but the user agent), with the access key found.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealdb::auth::sigv4::{self, KeyLookup, KeyMaterial, RequestParts, VerifyConfig};

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct OneKey;

impl KeyLookup for OneKey {
    fn lookup(&self, access_key_id: &str) -> Option<KeyMaterial> {
        (access_key_id == ACCESS_KEY).then(|| KeyMaterial {
            secret: zeroize::Zeroizing::new(SECRET.to_owned()),
            session_token: None,
        })
    }
}

fn verify(c: &mut Criterion) {
    let body = br#"{"TableName":"bench","Key":{"pk":{"S":"user#00000042"}}}"#.to_vec();
    let now = time::OffsetDateTime::now_utc();
    let headers: Vec<(String, String)> = [
        ("host", "127.0.0.1:8000"),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.GetItem"),
        ("content-length", "56"),
        (
            "amz-sdk-invocation-id",
            "5b0f1c2e-8d6a-4e7b-9c1d-2f3a4b5c6d7e",
        ),
        ("amz-sdk-request", "attempt=1; max=3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let added = sigv4::sign(
        "POST",
        "/",
        None,
        &headers,
        &body,
        ACCESS_KEY,
        SECRET,
        None,
        "us-east-1",
        "dynamodb",
        now,
    );
    let mut map = hyper::HeaderMap::new();
    for (k, v) in headers.iter().chain(&added) {
        map.append(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            hyper::header::HeaderValue::from_str(v).unwrap(),
        );
    }
    map.append(
        "user-agent",
        "aws-sdk-rust/1.3.9 os/linux lang/rust/1.90.0"
            .parse()
            .unwrap(),
    );
    let cfg = VerifyConfig {
        region: "us-east-1",
        service: "dynamodb",
        max_skew: std::time::Duration::from_secs(900),
    };
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: None,
        headers: &map,
        body: &body,
    };
    // The request must verify, or the bench would time the error path.
    sigv4::verify(&parts, &cfg, now, &OneKey).unwrap();
    let mut g = c.benchmark_group("sigv4");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_getitem", |b| {
        b.iter(|| sigv4::verify(&parts, &cfg, now, &OneKey).unwrap())
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
