//! Unit tests of the verifier: every error path with its AWS type and message, presigned URLs,
//! session tokens, and property tests (no panic on arbitrary bytes; sign -> verify round trip).

use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::HeaderMap;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::parse::{ascii_tokens, parse_amz_date};
use super::*;

const AKID: &str = "AKIDTEST";
const SECRET: &str = "secret/Key+ForTests0123456789abcdefghij";
const TOKEN_AKID: &str = "ASIATEST";
const TOKEN: &str = "session-token-value//==";

const CFG: VerifyConfig<'static> = VerifyConfig {
    region: "us-east-1",
    service: "dynamodb",
    max_skew: Duration::from_secs(15 * 60),
};

struct Keys;

impl KeyLookup for Keys {
    fn lookup(&self, id: &str) -> Option<KeyMaterial> {
        match id {
            AKID => Some(KeyMaterial {
                secret: Zeroizing::new(SECRET.to_owned()),
                session_token: None,
            }),
            TOKEN_AKID => Some(KeyMaterial {
                secret: Zeroizing::new(SECRET.to_owned()),
                session_token: Some(TOKEN.to_owned()),
            }),
            _ => None,
        }
    }
}

fn at(s: &str) -> OffsetDateTime {
    parse_amz_date(s).unwrap()
}

struct Req {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new(body: &[u8]) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("localhost:8000"));
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.GetItem"),
        );
        Req {
            method: "POST".into(),
            path: "/".into(),
            query: None,
            headers,
            body: body.to_vec(),
        }
    }

    fn header_list(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect()
    }

    /// Signs with our signer (Authorization header form) and adds the resulting headers.
    fn signed_as(mut self, akid: &str, token: Option<&str>, region: &str, when: &str) -> Self {
        let added = sign(
            &self.method,
            &self.path,
            self.query.as_deref(),
            &self.header_list(),
            &self.body,
            akid,
            SECRET,
            token,
            region,
            "dynamodb",
            at(when),
        );
        for (n, v) in added {
            self.set(&n, &v);
        }
        self
    }

    fn signed(self, when: &str) -> Self {
        self.signed_as(AKID, None, "us-east-1", when)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }

    fn get(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }

    /// Rewrites the Authorization header textually.
    fn edit_auth(&mut self, from: &str, to: &str) {
        let auth = self.get("authorization");
        assert!(auth.contains(from), "{auth} lacks {from}");
        self.set("authorization", &auth.replacen(from, to, 1));
    }

    fn verify_at(&self, now: &str) -> Result<Verified, AuthError> {
        let parts = RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        };
        verify(&parts, &CFG, at(now), &Keys)
    }
}

const T0: &str = "20240101T000000Z";

#[track_caller]
fn assert_err(result: Result<Verified, AuthError>, aws_type: &str, message: &str) {
    let err = result.expect_err("verification should fail");
    assert_eq!(err.aws_type(), aws_type, "{err:?}");
    assert_eq!(err.message(), message);
    assert!(!err.to_string().contains(SECRET));
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you \
     provided. Check your AWS Secret Access Key and signing method. Consult the service \
     documentation for details.";

#[test]
fn signed_request_verifies() {
    let req = Req::new(br#"{"TableName":"t"}"#).signed(T0);
    let v = req.verify_at("20240101T000500Z").unwrap();
    assert_eq!(
        v,
        Verified {
            access_key_id: AKID.into(),
            region: "us-east-1".into(),
            service: "dynamodb".into(),
            signed_at: at(T0),
            presigned: false,
        }
    );
}

#[test]
fn aws_test_suite_get_vanilla() {
    // AWS SigV4 test suite, "get-vanilla" (also what botocore computes).
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    );
    struct Example;
    impl KeyLookup for Example {
        fn lookup(&self, id: &str) -> Option<KeyMaterial> {
            (id == "AKIDEXAMPLE").then(|| KeyMaterial {
                secret: Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
                session_token: None,
            })
        }
    }
    let parts = RequestParts {
        method: "GET",
        path: "/",
        query: None,
        headers: &headers,
        body: b"",
    };
    let cfg = VerifyConfig {
        service: "service",
        ..CFG
    };
    assert!(verify(&parts, &cfg, at("20150830T123600Z"), &Example).is_ok());
}

#[test]
fn no_authentication_at_all() {
    let req = Req::new(b"{}");
    assert_err(
        req.verify_at(T0),
        "MissingAuthenticationTokenException",
        "Request is missing Authentication Token",
    );
    let mut other_scheme = Req::new(b"{}");
    other_scheme.set("authorization", "Bearer abc");
    assert_err(
        other_scheme.verify_at(T0),
        "MissingAuthenticationTokenException",
        "Request is missing Authentication Token",
    );
}

#[test]
fn incomplete_authorization_header() {
    let mut req = Req::new(b"{}");
    req.set("authorization", "AWS4-HMAC-SHA256 Signature=abc");
    assert_err(
        req.verify_at(T0),
        "IncompleteSignatureException",
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'SignedHeaders' parameter. Authorization header requires existence of either a \
         'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Signature=abc",
    );
}

#[test]
fn pair_without_equal_sign() {
    let mut req = Req::new(b"{}").signed(T0);
    req.edit_auth("Credential=AKIDTEST", "Credential=AKIDTEST ");
    let auth = req.get("authorization");
    let err = req.verify_at(T0).unwrap_err();
    assert_eq!(err.aws_type(), "IncompleteSignatureException");
    assert_eq!(
        err.message(),
        format!(
            "'/20240101/us-east-1/dynamodb/aws4_request' not a valid key=value pair (missing \
             equal-sign) in Authorization header: '{auth}'."
        )
    );
}

#[test]
fn malformed_date() {
    let mut req = Req::new(b"{}").signed(T0);
    req.set("x-amz-date", "2024-01-01T00:00:00Z");
    assert_err(
        req.verify_at(T0),
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. See \
         http://en.wikipedia.org/wiki/ISO_8601",
    );
}

#[test]
fn clock_skew_both_ways() {
    let req = Req::new(b"{}").signed(T0);
    assert!(req.verify_at("20240101T001500Z").is_ok());
    assert!(req.verify_at("20231231T234500Z").is_ok());
    assert_err(
        req.verify_at("20240101T001600Z"),
        "InvalidSignatureException",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000100Z \
         (20240101T001600Z - 15 min.)",
    );
    assert_err(
        req.verify_at("20231231T234400Z"),
        "InvalidSignatureException",
        "Signature not yet current: 20240101T000000Z is still later than 20231231T235900Z \
         (20231231T234400Z + 15 min.)",
    );
}

#[test]
fn host_must_be_signed() {
    let mut req = Req::new(b"{}");
    req.headers.remove("host");
    let mut req = req.signed(T0);
    req.set("host", "localhost:8000");
    assert_err(
        req.verify_at(T0),
        "InvalidSignatureException",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
}

#[test]
fn x_amz_date_must_be_signed() {
    let mut req = Req::new(b"{}").signed(T0);
    req.edit_auth(";x-amz-date", "");
    assert_err(
        req.verify_at(T0),
        "InvalidSignatureException",
        "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
    );
}

#[test]
fn date_header_form_without_x_amz_date() {
    // Signed by hand: the `date` header carries the time, x-amz-date is absent.
    let date = "Mon, 01 Jan 2024 00:00:00 GMT";
    let mut req = Req::new(b"{}");
    req.set("date", date);
    let canonical = canonical_request(
        "POST",
        "/",
        "",
        &[
            HeaderValues {
                name: "date",
                values: vec![date.as_bytes()],
            },
            HeaderValues {
                name: "host",
                values: vec![b"localhost:8000"],
            },
        ],
        &sha256_hex(b"{}"),
    );
    let scope = scope("20240101", "us-east-1", "dynamodb");
    let sts = string_to_sign(T0, &scope, &canonical);
    let sig = hex::encode(hmac::sign(
        &signing_key(SECRET, "20240101", "us-east-1", "dynamodb"),
        sts.as_bytes(),
    ));
    req.set(
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders=date;host, Signature={sig}"
        ),
    );
    assert_eq!(req.verify_at(T0).unwrap().signed_at, at(T0));
}

#[test]
fn unsupported_algorithm() {
    let mut req = Req::new(b"{}").signed(T0);
    req.edit_auth("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    assert_err(
        req.verify_at(T0),
        "IncompleteSignatureException",
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ",
    );
}

#[test]
fn credential_shape() {
    let mut req = Req::new(b"{}").signed(T0);
    req.edit_auth("/dynamodb/aws4_request", "/dynamodb");
    assert_err(
        req.verify_at(T0),
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got 'AKIDTEST/20240101/us-east-1/dynamodb'",
    );
}

#[test]
fn credential_scope_region_service_terminator() {
    let req = Req::new(b"{}").signed_as(AKID, None, "eu-west-1", T0);
    assert_err(
        req.verify_at(T0),
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    );
    let mut req = Req::new(b"{}").signed(T0);
    req.edit_auth("/dynamodb/", "/s3/");
    assert_err(
        req.verify_at(T0),
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'dynamodb'. ",
    );
    let mut req = Req::new(b"{}").signed(T0);
    req.edit_auth("/aws4_request", "/aws5_request");
    assert_err(
        req.verify_at(T0),
        "InvalidSignatureException",
        "Credential should be scoped with a valid terminator: 'aws4_request', not \
         'aws5_request'. ",
    );
}

#[test]
fn credential_scope_date() {
    let mut req = Req::new(b"{}").signed("20240101T235959Z");
    req.set("x-amz-date", "20240102T000100Z");
    assert_err(
        req.verify_at("20240102T000100Z"),
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20240101' != '20240102', from '20240102T000100Z'.",
    );
}

#[test]
fn unknown_access_key() {
    let req = Req::new(b"{}").signed_as("AKIDUNKNOWN", None, "us-east-1", T0);
    assert_err(
        req.verify_at(T0),
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
}

#[test]
fn wrong_secret_or_tampering() {
    let mut req = Req::new(b"{}");
    let added = sign(
        "POST",
        "/",
        None,
        &req.header_list(),
        b"{}",
        AKID,
        "not-the-secret",
        None,
        "us-east-1",
        "dynamodb",
        at(T0),
    );
    for (n, v) in added {
        req.set(&n, &v);
    }
    assert_err(req.verify_at(T0), "InvalidSignatureException", MISMATCH);

    let mut body = Req::new(b"{}").signed(T0);
    body.body = b"{ }".to_vec();
    body.headers.remove("x-amz-content-sha256");
    assert_err(body.verify_at(T0), "InvalidSignatureException", MISMATCH);

    let mut header = Req::new(b"{}").signed(T0);
    header.set("x-amz-target", "DynamoDB_20120810.DeleteTable");
    assert_err(header.verify_at(T0), "InvalidSignatureException", MISMATCH);

    let mut method = Req::new(b"{}").signed(T0);
    method.method = "PUT".into();
    assert_err(method.verify_at(T0), "InvalidSignatureException", MISMATCH);

    let mut sig = Req::new(b"{}").signed(T0);
    let auth = sig.get("authorization");
    sig.set("authorization", &(auth[..auth.len() - 1].to_owned() + "X"));
    assert_err(sig.verify_at(T0), "InvalidSignatureException", MISMATCH);
}

#[test]
fn content_sha256_header_is_checked_against_body() {
    let mut req = Req::new(b"{}").signed(T0);
    req.body = b"{\"x\":1}".to_vec();
    assert_err(
        req.verify_at(T0),
        "InvalidSignatureException",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
    let mut unsigned = Req::new(b"{}").signed(T0);
    unsigned.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    let err = unsigned.verify_at(T0).unwrap_err();
    assert_eq!(err.aws_type(), "InvalidSignatureException");
}

#[test]
fn session_tokens() {
    let ok = Req::new(b"{}").signed_as(TOKEN_AKID, Some(TOKEN), "us-east-1", T0);
    assert!(ok.verify_at(T0).is_ok());

    let unrecognized = "The security token included in the request is invalid.";
    let missing = Req::new(b"{}").signed_as(TOKEN_AKID, None, "us-east-1", T0);
    assert_err(
        missing.verify_at(T0),
        "UnrecognizedClientException",
        unrecognized,
    );

    let wrong = Req::new(b"{}").signed_as(TOKEN_AKID, Some("other"), "us-east-1", T0);
    assert_err(
        wrong.verify_at(T0),
        "UnrecognizedClientException",
        unrecognized,
    );

    let extra = Req::new(b"{}").signed_as(AKID, Some(TOKEN), "us-east-1", T0);
    assert_err(
        extra.verify_at(T0),
        "UnrecognizedClientException",
        unrecognized,
    );

    // Right token value, but not covered by the signature.
    let mut unsigned = Req::new(b"{}").signed_as(TOKEN_AKID, None, "us-east-1", T0);
    unsigned.set("x-amz-security-token", TOKEN);
    assert_err(
        unsigned.verify_at(T0),
        "UnrecognizedClientException",
        unrecognized,
    );
}

#[test]
fn repeated_headers_are_rejected_or_joined() {
    let mut req = Req::new(b"{}").signed(T0);
    let auth = req.headers["authorization"].clone();
    req.headers.append("authorization", auth);
    let err = req.verify_at(T0).unwrap_err();
    assert_eq!(err.aws_type(), "IncompleteSignatureException");

    let mut dup = Req::new(b"{}").signed(T0);
    dup.edit_auth("SignedHeaders=", "SignedHeaders=host;");
    let err = dup.verify_at(T0).unwrap_err();
    assert_eq!(err.aws_type(), "IncompleteSignatureException");

    // Two values of one signed header are joined with ',' on both sides.
    let mut multi = Req::new(b"{}");
    multi.set("x-custom", "a");
    let mut list = multi.header_list();
    list.push(("x-custom".into(), "  b  c ".into()));
    let added = sign(
        "POST",
        "/",
        None,
        &list,
        b"{}",
        AKID,
        SECRET,
        None,
        "us-east-1",
        "dynamodb",
        at(T0),
    );
    multi
        .headers
        .append("x-custom", HeaderValue::from_static("  b  c "));
    for (n, v) in added {
        multi.set(&n, &v);
    }
    assert!(multi.verify_at(T0).is_ok());
}

fn presigned(expires: u64, token: Option<&str>, body: Option<&[u8]>) -> Req {
    let mut req = Req::new(body.unwrap_or_default());
    req.method = "GET".into();
    req.path = "/admin/a%20b".into();
    req.query = Some(presign(
        "GET",
        &req.path,
        Some("z=1&a=x+y"),
        &[("host".into(), "localhost:8000".into())],
        body,
        if token.is_some() { TOKEN_AKID } else { AKID },
        SECRET,
        token,
        "us-east-1",
        "dynamodb",
        at(T0),
        Duration::from_secs(expires),
    ));
    req
}

#[test]
fn presigned_accepted_and_expired() {
    let req = presigned(300, None, None);
    let v = req.verify_at("20240101T000500Z").unwrap();
    assert!(v.presigned);
    assert_err(
        req.verify_at("20240101T000501Z"),
        "InvalidSignatureException",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000001Z \
         (20240101T000501Z - 5 min.)",
    );
    assert_err(
        req.verify_at("20231231T234400Z"),
        "InvalidSignatureException",
        "Signature not yet current: 20240101T000000Z is still later than 20231231T235900Z \
         (20231231T234400Z + 15 min.)",
    );
    // A week-long URL is still good six days later.
    let long = presigned(604_800, None, None);
    assert!(long.verify_at("20240107T000000Z").is_ok());
}

#[test]
fn presigned_body_hash_token_and_tampering() {
    let with_body = presigned(60, None, Some(b"{}"));
    assert!(with_body.verify_at(T0).is_ok());
    let mut tampered = presigned(60, None, Some(b"{}"));
    tampered.body = b"{ }".to_vec();
    assert_err(
        tampered.verify_at(T0),
        "InvalidSignatureException",
        MISMATCH,
    );

    let token = presigned(60, Some(TOKEN), None);
    assert!(token.verify_at(T0).is_ok());

    let mut query = presigned(60, None, None);
    query.query = query.query.map(|q| q.replace("z=1", "z=2"));
    assert_err(query.verify_at(T0), "InvalidSignatureException", MISMATCH);
}

#[test]
fn presigned_parameter_errors() {
    let mut req = presigned(60, None, None);
    let q = req.query.clone().unwrap();
    req.query = Some(
        q.split('&')
            .filter(|p| !p.starts_with("X-Amz-Credential") && !p.starts_with("X-Amz-Date"))
            .collect::<Vec<_>>()
            .join("&"),
    );
    assert_err(
        req.verify_at(T0),
        "IncompleteSignatureException",
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string \
         parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.",
    );

    let mut long = presigned(60, None, None);
    long.query = long
        .query
        .map(|q| q.replace("X-Amz-Expires=60", "X-Amz-Expires=604801"));
    assert_eq!(
        long.verify_at(T0).unwrap_err().aws_type(),
        "IncompleteSignatureException"
    );
    let mut zero = presigned(60, None, None);
    zero.query = zero
        .query
        .map(|q| q.replace("X-Amz-Expires=60", "X-Amz-Expires=x"));
    assert_err(
        zero.verify_at(T0),
        "IncompleteSignatureException",
        "X-Amz-Expires should be a number",
    );

    let mut both = presigned(60, None, None);
    both.set(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
    );
    assert_eq!(
        both.verify_at(T0).unwrap_err().aws_type(),
        "IncompleteSignatureException"
    );

    // Only unrelated parameters: not a presigned request at all.
    let mut plain = Req::new(b"");
    plain.query = Some("X-Amz-Expires=60&a=b".into());
    assert_eq!(
        plain.verify_at(T0).unwrap_err().aws_type(),
        "MissingAuthenticationTokenException"
    );
}

/// The per-thread signing key cache must follow the secret, not just the access key id: a key
/// pair re-imported under the same id with a new secret invalidates signatures made with the
/// old one, even right after the old one was verified (and cached) on this thread.
#[test]
fn signing_key_cache_follows_the_secret() {
    struct Rotating(&'static str);
    impl KeyLookup for Rotating {
        fn lookup(&self, id: &str) -> Option<KeyMaterial> {
            (id == AKID).then(|| KeyMaterial {
                secret: Zeroizing::new(self.0.to_owned()),
                session_token: None,
            })
        }
    }
    let req = Req::new(b"{}").signed(T0);
    let parts = RequestParts {
        method: &req.method,
        path: &req.path,
        query: None,
        headers: &req.headers,
        body: &req.body,
    };
    for _ in 0..2 {
        assert!(verify(&parts, &CFG, at(T0), &Rotating(SECRET)).is_ok());
        assert_err(
            verify(&parts, &CFG, at(T0), &Rotating("another-secret")),
            "InvalidSignatureException",
            MSG_SIGNATURE_MISMATCH,
        );
    }
    let cached = CachedSigningKey {
        secret_digest: [1; 32],
        k_signing: Zeroizing::new([7; 32]),
    };
    assert_eq!(format!("{cached:?}"), "CachedSigningKey([redacted])");
}

#[test]
fn secrets_are_redacted() {
    let key = Keys.lookup(TOKEN_AKID).unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("[redacted]"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The Authorization header's byte-wise tokenizer cuts exactly where splitting the text on
    /// commas and ASCII whitespace does, for any text (multi-byte characters included).
    #[test]
    fn ascii_tokens_match_splitting_on_separators(s in "[ ,\t\n\x0c\ra-zA-Z0-9=/é€😀]{0,60}") {
        let expected: Vec<&str> = s
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .collect();
        prop_assert_eq!(ascii_tokens(&s).collect::<Vec<_>>(), expected);
    }

    /// Arbitrary bytes in the headers the verifier parses, and arbitrary paths and queries,
    /// give an error or a result, never a panic.
    #[test]
    fn never_panics_on_arbitrary_input(
        auth in proptest::collection::vec(any::<u8>(), 0..200),
        auth_prefix in prop::sample::select(vec!["", "AWS4-HMAC-SHA256 ", "AWS4-"]),
        date in proptest::collection::vec(any::<u8>(), 0..40),
        token in proptest::collection::vec(any::<u8>(), 0..40),
        sha in proptest::collection::vec(any::<u8>(), 0..70),
        path in "[ -~]{0,40}",
        query in proptest::option::of("[ -~]{0,80}"),
        presign_like in any::<bool>(),
    ) {
        let mut headers = HeaderMap::new();
        let mut auth_bytes = auth_prefix.as_bytes().to_vec();
        auth_bytes.extend_from_slice(&auth);
        for (name, value) in [
            ("authorization", auth_bytes),
            ("x-amz-date", date.clone()),
            ("date", date),
            ("x-amz-security-token", token),
            ("x-amz-content-sha256", sha),
        ] {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                headers.append(name, v);
            }
        }
        let query = if presign_like {
            query.map(|q| format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={q}"))
        } else {
            query
        };
        let parts = RequestParts {
            method: "POST",
            path: &path,
            query: query.as_deref(),
            headers: &headers,
            body: b"{}",
        };
        let result = verify(&parts, &CFG, at(T0), &Keys);
        if let Err(e) = result {
            prop_assert!(!e.message().contains(SECRET));
        }
    }

    /// Whatever the path, query, header values and body, `sign` and `verify` agree, and a
    /// changed body byte is caught.
    #[test]
    fn sign_verify_round_trip(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        path in "(/[A-Za-z0-9%._~+=-]{0,8}){0,4}",
        query in proptest::option::of("[A-Za-z0-9%=&+._~-]{0,40}"),
        custom in "[ -~]{0,30}",
        body in proptest::collection::vec(any::<u8>(), 1..100),
        flip in any::<prop::sample::Index>(),
    ) {
        let mut req = Req::new(&body);
        req.method = method.into();
        req.path = if path.is_empty() { "/".into() } else { path };
        req.query = query;
        req.set("x-custom", &custom);
        let req = req.signed(T0);
        prop_assert!(req.verify_at(T0).is_ok());

        let mut tampered = req;
        let i = flip.index(tampered.body.len());
        tampered.body[i] ^= 0x01;
        prop_assert_eq!(
            tampered.verify_at(T0).unwrap_err().aws_type(),
            "InvalidSignatureException"
        );
    }
}

#[test]
fn signed_headers_lowercased_and_repeats_refused_in_short_and_long_lists() {
    use super::parse::SignedHeaders;
    let mixed = SignedHeaders::parse("Host;X-Amz-Date;content-type").unwrap();
    let names: Vec<&str> = mixed.names().iter().map(|n| n.as_ref()).collect();
    assert_eq!(names, ["host", "x-amz-date", "content-type"]);
    // A repeat differing only in case is still a repeat.
    let err = SignedHeaders::parse("host;Host").unwrap_err();
    assert!(err.message().contains("more than once"), "{err:?}");
    // Past the pairwise bound the sorted check runs: a repeat at either end is found, and a
    // long list of distinct names passes.
    let long: Vec<String> = (0..40).map(|i| format!("x-h{i}")).collect();
    assert_eq!(
        SignedHeaders::parse(&long.join(";")).unwrap().names().len(),
        40
    );
    for repeated in [
        format!("{};x-h0", long.join(";")),
        format!("x-h39;{}", long.join(";")),
    ] {
        let err = SignedHeaders::parse(&repeated).unwrap_err();
        assert!(err.message().contains("more than once"), "{err:?}");
    }
    // An invalid name is reported as such even when the list also repeats a name.
    let err = SignedHeaders::parse("host;host;bad name").unwrap_err();
    assert!(
        err.message().contains("not a ';'-separated list"),
        "{err:?}"
    );
}

proptest! {
    /// The x-amz-date text, kept as sent for the string to sign, is exactly what formatting
    /// its parsed instant gives (so keeping it cannot change what is signed): for any text the
    /// parser accepts, and for every instant's formatted text.
    #[test]
    fn amz_date_as_sent_is_its_canonical_form(
        text in "[0-9]{4}[01][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-6][0-9]Z",
        secs in 0i64..=253_402_300_799,
    ) {
        if let Some(parsed) = parse_amz_date(&text) {
            prop_assert_eq!(canonical::format_amz_date(parsed), text);
        }
        let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let formatted = canonical::format_amz_date(t);
        prop_assert_eq!(parse_amz_date(&formatted), Some(t));
    }
}
