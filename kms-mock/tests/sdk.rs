//! kms-mock driven through `aws-sdk-kms` (and raw HTTP for protocol details), against the
//! real binary started as a child process on port 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, IncludeKeyMaterial, KeyState, RotationType};
use aws_sdk_kms::Client;

const AKID: &str = "AKIDKMSMOCKTEST";
const SECRET: &str = "kms-mock-test-secret";

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kms-mock"))
            .args(["--listen", "127.0.0.1:0", "--enable-admin"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("kms-mock listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    fn verifying() -> Server {
        Server::start(&[
            "--verify-signatures",
            "--access-key",
            &format!("{AKID}:{SECRET}"),
        ])
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn client(&self) -> Client {
        self.client_with(AKID, SECRET, false)
    }

    fn client_with(&self, id: &str, secret: &str, retries: bool) -> Client {
        let retry = if retries {
            aws_sdk_kms::config::retry::RetryConfig::standard()
                .with_initial_backoff(std::time::Duration::from_millis(10))
        } else {
            aws_sdk_kms::config::retry::RetryConfig::disabled()
        };
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(id, secret, None, None, "kms-mock-tests"))
            .retry_config(retry)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        Client::from_conf(conf)
    }

    fn admin(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = raw(&self.addr, method, path, &[], body);
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 exchange: (status, headers lower-cased, body).
fn raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hdrs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, hdrs, body.to_string())
}

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test]
async fn main_operations_through_the_sdk() {
    let srv = Server::verifying();
    let kms = srv.client();

    let meta = kms
        .create_key()
        .description("sdk test")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let key_id = meta.key_id().to_string();
    let arn = meta.arn().unwrap().to_string();
    assert_eq!(
        arn,
        format!("arn:aws:kms:us-east-1:000000000000:key/{key_id}")
    );
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert!(meta.creation_date().is_some());

    kms.create_alias()
        .alias_name("alias/sdk")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let d = kms.describe_key().key_id("alias/sdk").send().await.unwrap();
    assert_eq!(d.key_metadata.unwrap().key_id(), key_id);
    let e = kms
        .create_alias()
        .alias_name("alias/sdk")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_already_exists_exception());
    let aliases = kms.list_aliases().key_id(&key_id).send().await.unwrap();
    assert_eq!(aliases.aliases().len(), 1);
    assert_eq!(aliases.aliases()[0].alias_name(), Some("alias/sdk"));

    // Encrypt / Decrypt with an encryption context.
    let enc = kms
        .encrypt()
        .key_id("alias/sdk")
        .plaintext(Blob::new(b"hello kms".to_vec()))
        .encryption_context("table", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob.unwrap();
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("table", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"hello kms");
    let e = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("table", "t2")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_invalid_ciphertext_exception(),
        "{e:?}"
    );

    let other = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id()
        .to_string();
    let e = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("table", "t1")
        .key_id(&other)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_incorrect_key_exception(),
        "{e:?}"
    );

    // Data keys and ReEncrypt.
    let dk = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("ks", "1")
        .send()
        .await
        .unwrap();
    let plain = dk.plaintext.unwrap();
    assert_eq!(plain.as_ref().len(), 32);
    let wrapped = dk.ciphertext_blob.unwrap();
    let re = kms
        .re_encrypt()
        .ciphertext_blob(wrapped.clone())
        .source_encryption_context("ks", "1")
        .destination_key_id(&other)
        .destination_encryption_context("ks", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(re.source_key_id(), Some(arn.as_str()));
    let back = kms
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob.unwrap())
        .encryption_context("ks", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext.unwrap().as_ref(), plain.as_ref());
    let wo = kms
        .generate_data_key_without_plaintext()
        .key_id(&key_id)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert!(wo.ciphertext_blob.is_some());
    let rnd = kms
        .generate_random()
        .number_of_bytes(48)
        .send()
        .await
        .unwrap();
    assert_eq!(rnd.plaintext.unwrap().as_ref().len(), 48);

    // Rotation: old blobs still decrypt.
    kms.enable_key_rotation()
        .key_id(&key_id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let st = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert!(st.key_rotation_enabled());
    assert_eq!(st.rotation_period_in_days(), Some(90));
    assert!(st.next_rotation_date().is_some());
    kms.rotate_key_on_demand()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let rots = kms
        .list_key_rotations()
        .key_id(&key_id)
        .include_key_material(IncludeKeyMaterial::RotationsOnly)
        .send()
        .await
        .unwrap();
    assert_eq!(rots.rotations().len(), 1);
    assert_eq!(
        rots.rotations()[0].rotation_type(),
        Some(&RotationType::OnDemand)
    );
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("table", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"hello kms");
    kms.disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();

    // Disable -> DisabledException; enable again.
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let e = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("table", "t1")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_disabled_exception(),
        "{e:?}"
    );
    assert_eq!(
        e.as_service_error().unwrap().message(),
        Some(format!("{arn} is disabled.").as_str())
    );
    kms.enable_key().key_id(&key_id).send().await.unwrap();

    // Deletion: pending -> KMSInvalidStateException; cancel -> Disabled.
    let sched = kms
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(sched.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(sched.pending_window_in_days(), Some(7));
    let e = kms
        .generate_data_key()
        .key_id(&key_id)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_kms_invalid_state_exception(),
        "{e:?}"
    );
    let e = kms
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    kms.cancel_key_deletion()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let d = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d.key_state(), Some(&KeyState::Disabled));

    // ListKeys pagination.
    for _ in 0..3 {
        kms.create_key().send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = kms
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        seen.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        if page.truncated() {
            marker = page.next_marker().map(String::from);
        } else {
            break;
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.contains(&key_id));

    let e = kms
        .describe_key()
        .key_id("alias/missing")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_not_found_exception());
    kms.update_alias()
        .alias_name("alias/sdk")
        .target_key_id(&other)
        .send()
        .await
        .unwrap();
    kms.delete_alias()
        .alias_name("alias/sdk")
        .send()
        .await
        .unwrap();
    let e = kms
        .delete_alias()
        .alias_name("alias/sdk")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_not_found_exception());
}

#[tokio::test]
async fn signatures_are_checked_when_enabled() {
    let srv = Server::verifying();
    let e = srv
        .client_with(AKID, "wrong-secret", false)
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidSignatureException");
    let e = srv
        .client_with("AKIDUNKNOWN", SECRET, false)
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "UnrecognizedClientException");
    srv.client().list_keys().send().await.unwrap();

    // Without --verify-signatures any well-formed signature passes.
    let open = Server::start(&[]);
    open.client_with("anything", "whatever", false)
        .list_keys()
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn protocol_errors() {
    let srv = Server::start(&[]);
    let target = |op: &str| format!("TrentService.{op}");
    let json = ("Content-Type", "application/x-amz-json-1.1");

    let t = target("ListKeys");
    let (status, hdrs, body) = raw(&srv.addr, "POST", "/", &[json, ("X-Amz-Target", &t)], "{}");
    assert_eq!(status, 400);
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
    assert!(hdrs.iter().any(|(k, _)| k == "x-amzn-requestid"));

    let (status, hdrs, body) = raw(
        &srv.addr,
        "POST",
        "/",
        &[json, ("X-Amz-Target", &t), ("Authorization", AUTH)],
        "{}",
    );
    assert_eq!(status, 200, "{body}");
    assert!(hdrs
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/x-amz-json-1.1"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Truncated"], false);

    let bad_auth = [
        json,
        ("X-Amz-Target", &t),
        ("Authorization", "AWS4-HMAC-SHA256 nonsense"),
    ];
    let (_, _, body) = raw(&srv.addr, "POST", "/", &bad_auth, "{}");
    assert!(body.contains("IncompleteSignatureException"), "{body}");

    let t = target("DoSomething");
    let (status, _, body) = raw(
        &srv.addr,
        "POST",
        "/",
        &[json, ("X-Amz-Target", &t), ("Authorization", AUTH)],
        "{}",
    );
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"), "{body}");

    let t = target("DescribeKey");
    let (_, _, body) = raw(
        &srv.addr,
        "POST",
        "/",
        &[json, ("X-Amz-Target", &t), ("Authorization", AUTH)],
        "{not json",
    );
    assert!(body.contains("SerializationException"), "{body}");
    let (_, _, body) = raw(
        &srv.addr,
        "POST",
        "/",
        &[json, ("X-Amz-Target", &t), ("Authorization", AUTH)],
        r#"{"KeyId": 5}"#,
    );
    assert!(body.contains("SerializationException"), "{body}");
    let (_, _, body) = raw(
        &srv.addr,
        "POST",
        "/",
        &[json, ("X-Amz-Target", &t), ("Authorization", AUTH)],
        "{}",
    );
    assert!(body.contains("ValidationException"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("keyId"));

    // Admin endpoints are off unless enabled.
    let plain = Server::start_without_admin();
    let (status, _) = plain.admin("GET", "/__admin/health", "");
    assert_eq!(status, 404);
    let (status, body) = srv.admin("GET", "/__admin/health", "");
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""));
}

impl Server {
    fn start_without_admin() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kms-mock"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit(' ').next().unwrap().to_string();
        Server { child, addr }
    }
}

#[tokio::test]
async fn faults_and_clock_through_admin() {
    let srv = Server::verifying();
    let kms = srv.client();
    let key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id()
        .to_string();

    let (status, _) = srv.admin(
        "POST",
        "/__admin/faults",
        r#"{"operation":"GenerateDataKey","error":"ThrottlingException","count":1}"#,
    );
    assert_eq!(status, 200);
    let e = kms
        .generate_data_key()
        .key_id(&key)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ThrottlingException");
    kms.generate_data_key()
        .key_id(&key)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();

    // A retrying client gets through a single injected 500.
    srv.admin(
        "POST",
        "/__admin/faults",
        r#"{"operation":"*","error":"KMSInternalException","count":1}"#,
    );
    srv.client_with(AKID, SECRET, true)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();

    srv.admin(
        "POST",
        "/__admin/faults",
        r#"{"operation":"Encrypt","error":"KMSInternalException"}"#,
    );
    for _ in 0..2 {
        let e = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "KMSInternalException");
    }
    let (status, _) = srv.admin("DELETE", "/__admin/faults", "");
    assert_eq!(status, 200);
    kms.encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let (status, _) = srv.admin(
        "POST",
        "/__admin/faults",
        r#"{"operation":"*","error":"NoSuchError"}"#,
    );
    assert_eq!(status, 400);

    // A timeout fault: the client's own timeout fires.
    srv.admin(
        "POST",
        "/__admin/faults",
        r#"{"operation":"ListKeys","timeout":true,"count":1}"#,
    );
    let impatient = aws_sdk_kms::Client::from_conf(
        kms.config()
            .to_builder()
            .timeout_config(
                aws_sdk_kms::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(std::time::Duration::from_millis(300))
                    .build(),
            )
            .build(),
    );
    let e = impatient.list_keys().send().await.unwrap_err();
    assert!(
        matches!(e, aws_sdk_kms::error::SdkError::TimeoutError(_)),
        "{e:?}"
    );

    // The mock clock drives deletion.
    kms.schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let (status, _) = srv.admin("POST", "/__admin/clock", r#"{"advance_secs": 604801}"#);
    assert_eq!(status, 200);
    let e = kms.describe_key().key_id(&key).send().await.unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_not_found_exception(),
        "{e:?}"
    );
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("kms.state");
    let args = |state: &Path| vec!["--state-file".to_string(), state.display().to_string()];
    let a: Vec<String> = args(&state);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();

    let (key, blob) = {
        let srv = Server::start(&a);
        let kms = srv.client();
        let key = kms
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id()
            .to_string();
        kms.create_alias()
            .alias_name("alias/keep")
            .target_key_id(&key)
            .send()
            .await
            .unwrap();
        let blob = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"durable".to_vec()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap();
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        kms.disable_key().key_id(&key).send().await.unwrap();
        (key, blob)
    };
    let srv = Server::start(&a);
    let kms = srv.client();
    let d = kms
        .describe_key()
        .key_id("alias/keep")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d.key_id(), key);
    assert_eq!(d.key_state(), Some(&KeyState::Disabled));
    kms.enable_key().key_id(&key).send().await.unwrap();
    let dec = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"durable");
    let rots = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(rots.rotations().len(), 1);
}

#[tokio::test]
async fn seeded_keys_are_usable() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    let id = "0d4c2a57-1e0b-4d0a-9b1c-2f6b7a1c3e55";
    let material = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    std::fs::write(
        &seed,
        format!(r#"{{"keys":[{{"id":"{id}","alias":"alias/seeded","material":"{material}"}}]}}"#),
    )
    .unwrap();
    let srv = Server::start(&["--seed-file", seed.to_str().unwrap()]);
    let kms = srv.client();
    let d = kms
        .describe_key()
        .key_id("alias/seeded")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d.key_id(), id);
    let enc = kms
        .encrypt()
        .key_id("alias/seeded")
        .plaintext(Blob::new(b"p".to_vec()))
        .send()
        .await
        .unwrap();
    let dec = kms
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"p");
}
