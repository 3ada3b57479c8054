//! The `aws` KMS provider (aws-sdk-kms) against two KMS implementations it did not come with:
//! kms-mock (as a child process when its binary is built, else in-process on its own runtime)
//! and moto's server (from PyPI, in the project-local venv that scripts/python-venv.sh makes),
//! and a sealdb server using it end to end through aws-sdk-dynamodb.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue as Av, SseSpecification, SseType};
use aws_sdk_kms::types::KeyState as AwsKeyState;
use common::*;
use sealdb::kms::aws::{AwsKms, AwsKmsSettings, Credentials};
use sealdb::kms::{keyspace_context, KeyState, KmsError, KmsProvider};

const KMS_REGION: &str = "us-east-1";
const KMS_ACCOUNT: &str = "000000000000";

fn test_credentials() -> Credentials {
    Credentials::new(
        "AKIDKMSAWSTEST",
        "kms-aws-test-secret",
        None,
        None,
        "kms-aws-tests",
    )
}

/// A provider with short timeouts and back-off so outage cases finish quickly.
async fn provider(endpoint: &str) -> AwsKms {
    let mut s = AwsKmsSettings::new(KMS_REGION)
        .endpoint_url(endpoint)
        .credentials(test_credentials());
    s.attempt_timeout = std::time::Duration::from_millis(800);
    s.operation_timeout = std::time::Duration::from_secs(3);
    s.initial_backoff = std::time::Duration::from_millis(20);
    AwsKms::new(s).await
}

// ---------------------------------------------------------------------------------------
// kms-mock

enum MockRun {
    Child(Child),
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

struct KmsMock {
    addr: String,
    run: MockRun,
}

/// kms-mock's binary sits beside sealdb's in the target dir when the workspace was built
/// (`make test` builds every workspace binary); `cargo test --test kms_aws` alone does not
/// build it, and then the same server runs in-process on a runtime of its own.
fn kms_mock_binary() -> Option<PathBuf> {
    let p = Path::new(sealdb_bin()).with_file_name("kms-mock");
    p.is_file().then_some(p)
}

impl KmsMock {
    /// `SEALDB_TEST_KMS_MOCK=in-process` forces the in-process server (to test that path).
    fn start() -> KmsMock {
        if std::env::var("SEALDB_TEST_KMS_MOCK").as_deref() == Ok("in-process") {
            return Self::start_in_process();
        }
        match kms_mock_binary() {
            Some(bin) => Self::start_child(&bin),
            None => Self::start_in_process(),
        }
    }

    fn start_child(bin: &Path) -> KmsMock {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--enable-admin"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kms-mock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("kms-mock's first line");
        let addr = line
            .trim()
            .strip_prefix("kms-mock listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        KmsMock {
            addr,
            run: MockRun::Child(child),
        }
    }

    fn start_in_process() -> KmsMock {
        eprintln!("kms-mock in-process on its own runtime (binary not built, or forced)");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let store = Arc::new(kms_mock::KeyStore::in_memory(KMS_ACCOUNT, KMS_REGION));
                let config = kms_mock::server::ServerConfig {
                    enable_admin: true,
                    ..Default::default()
                };
                let _ = kms_mock::server::serve(listener, store, config, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
            // Dropping the runtime ends every open connection, as a process exit would.
            drop(rt);
        });
        let addr = addr_rx.recv().expect("kms-mock address").to_string();
        KmsMock {
            addr,
            run: MockRun::InProcess {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(&mut self) {
        match &mut self.run {
            MockRun::Child(c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            MockRun::InProcess { stop, thread } => {
                if let Some(tx) = stop.take() {
                    let _ = tx.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }

    /// POST/DELETE on kms-mock's admin endpoints (fault injection).
    async fn admin(&self, method: reqwest::Method, path: &str, body: &str) -> u16 {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.endpoint()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("admin call")
            .status()
            .as_u16()
    }
}

impl Drop for KmsMock {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A new symmetric key: (key id, key ARN).
async fn create_key(kms: &AwsKms, alias: Option<&str>) -> (String, String) {
    let meta = kms
        .client()
        .create_key()
        .description("sealdb kms_aws test key")
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("KeyMetadata");
    if let Some(a) = alias {
        kms.client()
            .create_alias()
            .alias_name(a)
            .target_key_id(meta.key_id())
            .send()
            .await
            .expect("CreateAlias");
    }
    (
        meta.key_id().to_string(),
        meta.arn().expect("arn").to_string(),
    )
}

fn assert_kind(r: Result<impl Sized, KmsError>, want: &str, revocation: bool) {
    match r {
        Ok(_) => panic!("expected {want}, got success"),
        Err(e) => {
            let got = format!("{e:?}");
            assert!(got.starts_with(want), "expected {want}, got {got}");
            assert_eq!(e.is_revocation(), revocation, "{got}");
        }
    }
}

#[tokio::test]
async fn aws_provider_against_kms_mock() {
    let mut mock = KmsMock::start();
    let kms = provider(&mock.endpoint()).await;
    assert_eq!(kms.name(), "aws");
    let (key_a, arn_a) = create_key(&kms, Some("alias/sealdb-a")).await;
    let (_key_b, arn_b) = create_key(&kms, None).await;

    // Key id, ARN and alias all resolve to the ARN.
    for id in [key_a.as_str(), arn_a.as_str(), "alias/sealdb-a"] {
        let info = kms.describe_key(id).await.expect("describe");
        assert_eq!(info.arn, arn_a);
        assert_eq!(info.state, KeyState::Enabled);
    }

    // Round trip: the data key comes back only under its own key and context.
    let ctx = keyspace_context("00112233445566778899aabbccddeeff");
    let generated = kms
        .generate_data_key("alias/sealdb-a", &ctx)
        .await
        .expect("generate");
    assert_eq!(generated.key_arn, arn_a);
    assert!(!generated.blob.is_empty());
    let unwrapped = kms
        .decrypt(&arn_a, &generated.blob, &ctx)
        .await
        .expect("decrypt");
    assert_eq!(unwrapped.expose(), generated.plaintext.expose());
    let second = kms.generate_data_key(&arn_a, &ctx).await.expect("generate");
    assert_ne!(second.plaintext.expose(), generated.plaintext.expose());

    let other_ctx = keyspace_context("ffeeddccbbaa99887766554433221100");
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &other_ctx).await,
        "InvalidCiphertext",
        false,
    );
    assert_kind(
        kms.decrypt(&arn_b, &generated.blob, &ctx).await,
        "InvalidCiphertext",
        false,
    );
    let mut tampered = generated.blob.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 1;
    }
    assert_kind(
        kms.decrypt(&arn_a, &tampered, &ctx).await,
        "InvalidCiphertext",
        false,
    );
    assert_kind(
        kms.describe_key("11111111-2222-3333-4444-555555555555")
            .await,
        "NotFound",
        true,
    );

    // Disabled: a revocation on every operation; re-enabled: back.
    kms.client()
        .disable_key()
        .key_id(&key_a)
        .send()
        .await
        .expect("DisableKey");
    assert_eq!(
        kms.describe_key(&arn_a).await.expect("describe").state,
        KeyState::Disabled
    );
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "Disabled",
        true,
    );
    assert_kind(kms.generate_data_key(&arn_a, &ctx).await, "Disabled", true);
    kms.client()
        .enable_key()
        .key_id(&key_a)
        .send()
        .await
        .expect("EnableKey");
    kms.decrypt(&arn_a, &generated.blob, &ctx)
        .await
        .expect("decrypt after re-enable");

    // Pending deletion: KMSInvalidStateException, a revocation.
    kms.client()
        .schedule_key_deletion()
        .key_id(&key_a)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("ScheduleKeyDeletion");
    assert_eq!(
        kms.describe_key(&arn_a).await.expect("describe").state,
        KeyState::PendingDeletion
    );
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "InvalidState",
        true,
    );
    kms.client()
        .cancel_key_deletion()
        .key_id(&key_a)
        .send()
        .await
        .expect("CancelKeyDeletion");
    let state = kms
        .client()
        .describe_key()
        .key_id(&key_a)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata
        .and_then(|m| m.key_state);
    assert_eq!(state, Some(AwsKeyState::Disabled));
    kms.client()
        .enable_key()
        .key_id(&key_a)
        .send()
        .await
        .expect("EnableKey");

    // One throttle is retried away; persistent throttling is an outage, not a revocation.
    let post = reqwest::Method::POST;
    assert_eq!(
        mock.admin(
            post.clone(),
            "/__admin/faults",
            r#"{"operation":"Decrypt","error":"ThrottlingException","count":1}"#,
        )
        .await,
        200
    );
    kms.decrypt(&arn_a, &generated.blob, &ctx)
        .await
        .expect("a single throttle is retried");
    mock.admin(
        post.clone(),
        "/__admin/faults",
        r#"{"operation":"Decrypt","error":"ThrottlingException"}"#,
    )
    .await;
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "Unavailable",
        false,
    );
    mock.admin(reqwest::Method::DELETE, "/__admin/faults", "")
        .await;
    mock.admin(
        post.clone(),
        "/__admin/faults",
        r#"{"operation":"Decrypt","error":"KMSInternalException"}"#,
    )
    .await;
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "Unavailable",
        false,
    );
    mock.admin(reqwest::Method::DELETE, "/__admin/faults", "")
        .await;

    // A non-transient error is not retried: one planted DisabledException is what we see,
    // although a second attempt would have succeeded.
    mock.admin(
        post.clone(),
        "/__admin/faults",
        r#"{"operation":"Decrypt","error":"DisabledException","count":1}"#,
    )
    .await;
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "Disabled",
        true,
    );
    kms.decrypt(&arn_a, &generated.blob, &ctx)
        .await
        .expect("the planted fault was used up by one attempt");

    // A KMS that hangs: the client's own timeout fires; an outage.
    mock.admin(
        post.clone(),
        "/__admin/faults",
        r#"{"operation":"Decrypt","timeout":true}"#,
    )
    .await;
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "Unavailable",
        false,
    );
    mock.admin(reqwest::Method::DELETE, "/__admin/faults", "")
        .await;

    // kms-mock gone: an outage, not a revocation.
    mock.stop();
    assert_kind(
        kms.decrypt(&arn_a, &generated.blob, &ctx).await,
        "Unavailable",
        false,
    );
    assert_kind(kms.describe_key(&arn_a).await, "Unavailable", false);
    assert_kind(
        kms.generate_data_key(&arn_a, &ctx).await,
        "Unavailable",
        false,
    );
}

// ---------------------------------------------------------------------------------------
// moto

/// The venv made by scripts/python-venv.sh (which the harness runs itself when needed).
/// `None` only when it cannot be installed outside CI; in CI that is a failure.
fn moto_server_bin() -> Option<PathBuf> {
    let script = source_path("scripts/python-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output();
    let venv = match out {
        Ok(o) if o.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string())
        }
        other => {
            let why = format!("scripts/python-venv.sh failed: {other:?}");
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("SKIPPED: moto's server is not installable here ({why})");
            return None;
        }
    };
    let bin = venv.join("bin/moto_server");
    assert!(bin.is_file(), "{} missing after install", bin.display());
    Some(bin)
}

struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Port 0: werkzeug binds a free port and names it on stderr (" * Running on URL").
    fn start(bin: &Path) -> Moto {
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moto_server");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let endpoint = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("moto_server exited before listening: {seen:?}");
            };
            if let Some(i) = line.find("Running on http://") {
                let url = line[i + "Running on ".len()..].trim();
                // Strip any colour codes werkzeug may add.
                break url
                    .split(|c: char| c.is_whitespace() || c == '\u{1b}')
                    .next()
                    .unwrap_or(url)
                    .to_string();
            }
            seen.push(line);
        };
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Moto { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn aws_provider_against_moto_server() {
    let Some(bin) = moto_server_bin() else {
        return;
    };
    let moto = Moto::start(&bin);
    let kms = provider(&moto.endpoint).await;
    let (key, arn) = create_key(&kms, Some("alias/sealdb-moto")).await;
    let info = kms
        .describe_key("alias/sealdb-moto")
        .await
        .expect("describe");
    assert_eq!(info.arn, arn);
    assert_eq!(info.state, KeyState::Enabled);

    let ctx = keyspace_context("0123456789abcdef0123456789abcdef");
    let generated = kms.generate_data_key(&key, &ctx).await.expect("generate");
    assert_eq!(generated.key_arn, arn);
    let unwrapped = kms
        .decrypt(&arn, &generated.blob, &ctx)
        .await
        .expect("decrypt");
    assert_eq!(unwrapped.expose(), generated.plaintext.expose());
    assert_kind(
        kms.decrypt(&arn, &generated.blob, &keyspace_context("other"))
            .await,
        "InvalidCiphertext",
        false,
    );
    assert_kind(
        kms.describe_key("11111111-2222-3333-4444-555555555555")
            .await,
        "NotFound",
        true,
    );
    kms.client()
        .disable_key()
        .key_id(&key)
        .send()
        .await
        .expect("DisableKey");
    assert_eq!(
        kms.describe_key(&arn).await.expect("describe").state,
        KeyState::Disabled
    );
}

// ---------------------------------------------------------------------------------------
// sealdb end to end

async fn create_table_on_key(c: &aws_sdk_dynamodb::Client, name: &str, kms_key: Option<&str>) {
    let mut b = table_request(c, name, None);
    if let Some(k) = kms_key {
        b = b.sse_specification(
            SseSpecification::builder()
                .enabled(true)
                .sse_type(SseType::Kms)
                .kms_master_key_id(k)
                .build(),
        );
    }
    b.send().await.expect("create table");
}

async fn put_get(c: &aws_sdk_dynamodb::Client, table: &str, pk: &str, v: &str) {
    c.put_item()
        .table_name(table)
        .item("pk", Av::S(pk.into()))
        .item("v", Av::S(v.into()))
        .send()
        .await
        .expect("put");
    let got = c
        .get_item()
        .table_name(table)
        .key("pk", Av::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.item().and_then(|i| i.get("v")),
        Some(&Av::S(v.into())),
        "{table}/{pk}"
    );
}

fn sealdb_env<'a>(mock: &'a str, default_key: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SEALDB_KMS_PROVIDER", "aws"),
        ("SEALDB_KMS_ENDPOINT_URL", mock),
        ("SEALDB_KMS_REGION", KMS_REGION),
        ("SEALDB_KMS_DEFAULT_KEY", default_key),
        // The server's standard AWS credential chain: the environment comes first.
        ("AWS_ACCESS_KEY_ID", "AKIDSEALDBSERVER"),
        ("AWS_SECRET_ACCESS_KEY", "sealdb-server-secret"),
        // Nothing from this machine's AWS setup, and no instance-metadata probes.
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/sealdb-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/sealdb-test/credentials",
        ),
    ]
}

const CLEARED_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

#[tokio::test]
async fn sealdb_with_the_aws_provider_end_to_end() {
    let mock = KmsMock::start();
    let kms = provider(&mock.endpoint()).await;
    let (_default_id, default_arn) = create_key(&kms, Some("alias/sealdb-e2e-default")).await;
    let (_table_id, table_arn) = create_key(&kms, None).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = mock.endpoint();
    let env = sealdb_env(&endpoint, "alias/sealdb-e2e-default");
    let server = ChildServer::start_with_env(dir.path(), &env, CLEARED_ENV);
    let db = server.client();

    create_table_on_key(&db, "plain", None).await;
    create_table_on_key(&db, "named", Some(&table_arn)).await;
    let desc = db
        .describe_table()
        .table_name("named")
        .send()
        .await
        .expect("describe");
    let sse = desc
        .table()
        .and_then(|t| t.sse_description())
        .expect("SSEDescription");
    assert_eq!(sse.kms_master_key_arn(), Some(table_arn.as_str()));
    for i in 0..20 {
        put_get(&db, "plain", &format!("p{i}"), &format!("plain {i}")).await;
        put_get(&db, "named", &format!("n{i}"), &format!("named {i}")).await;
    }

    // Restart: the catalog key and both table keys are unwrapped again through kms-mock.
    server.terminate();
    let server = ChildServer::start_with_env(dir.path(), &env, CLEARED_ENV);
    let db = server.client();
    let got = db
        .get_item()
        .table_name("named")
        .key("pk", Av::S("n7".into()))
        .send()
        .await
        .expect("get after restart");
    assert_eq!(
        got.item().and_then(|i| i.get("v")),
        Some(&Av::S("named 7".into()))
    );
    put_get(&db, "plain", "after-restart", "yes").await;
    server.terminate();

    // Every KMS call went through the audit decorator to the aws provider, naming both keys.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).expect("audit log");
    let kms_lines: Vec<serde_json::Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.to_string().contains("\"provider\":\"aws\""))
        .collect();
    assert!(!kms_lines.is_empty(), "no aws-provider KMS calls audited");
    let text = kms_lines
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("Decrypt") && text.contains("GenerateDataKey"));
    assert!(text.contains(&table_arn), "table key not in the audit log");
    assert!(
        text.contains(&default_arn) || text.contains("alias/sealdb-e2e-default"),
        "default key not in the audit log"
    );
}

#[tokio::test]
async fn aws_provider_without_a_default_key_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.kms.provider = "aws".into();
    config.kms.endpoint_url = Some("http://127.0.0.1:9".into());
    let err = match sealdb::app::start(config).await {
        Ok(_) => panic!("started without a default key"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("SEALDB_KMS_DEFAULT_KEY"), "{err}");
    assert!(err.contains("default_key"), "{err}");
}

/// kms-mock as a child on a fixed address with a state file, so it can be stopped and
/// brought back as the same KMS.
fn spawn_kms_mock_at(bin: &Path, addr: &str, state: &Path) -> std::process::Child {
    let mut child = Command::new(bin)
        .args(["--listen", addr, "--state-file"])
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kms-mock");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("kms-mock's first line");
    assert!(line.starts_with("kms-mock listening on "), "{line:?}");
    child
}

#[tokio::test]
async fn a_kms_outage_serves_from_cache_then_fails_retryably_and_recovers() {
    let bin = kms_mock_binary().expect("kms-mock is built next to sealdb (make test builds it)");
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state = state_dir.path().join("kms.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let endpoint = format!("http://{addr}");
    let mut kms_child = spawn_kms_mock_at(&bin, &addr, &state);
    let kms = provider(&endpoint).await;
    create_key(&kms, Some("alias/sealdb-outage")).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sealdb_env(&endpoint, "alias/sealdb-outage");
    env.extend([
        ("SEALDB_KMS_KEY_CACHE_TTL_SECS", "2"),
        ("SEALDB_KMS_PROBE_INTERVAL_SECS", "1"),
        ("SEALDB_KMS_MAX_STALE_SECS", "6"),
    ]);
    let server = ChildServer::start_with_env(dir.path(), &env, CLEARED_ENV);
    let db = server.client();
    create_table_on_key(&db, "steady", None).await;
    put_get(&db, "steady", "k", "v").await;
    let read = |db: aws_sdk_dynamodb::Client| async move {
        db.get_item()
            .table_name("steady")
            .key("pk", Av::S("k".into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code(&e))
    };
    let status = |db: aws_sdk_dynamodb::Client| async move {
        db.describe_table()
            .table_name("steady")
            .send()
            .await
            .unwrap()
            .table()
            .unwrap()
            .table_status()
            .unwrap()
            .as_str()
            .to_string()
    };

    // The KMS process stops: cached keys keep serving (for up to max_stale).
    let _ = kms_child.kill();
    let _ = kms_child.wait();
    let stopped = std::time::Instant::now();
    assert_eq!(
        read(db.clone()).await,
        Ok(()),
        "served from cache right after the outage began"
    );
    // Then reads fail with a retryable error, and the table is never marked inaccessible.
    let mut failed = None;
    while stopped.elapsed() < std::time::Duration::from_secs(20) {
        match read(db.clone()).await {
            Ok(()) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            Err(code) => {
                failed = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        failed.as_deref(),
        Some("ServiceUnavailable"),
        "after max_stale the error is retryable"
    );
    assert!(
        stopped.elapsed() >= std::time::Duration::from_secs(3),
        "cache served for a while: {:?}",
        stopped.elapsed()
    );
    assert_eq!(
        status(db.clone()).await,
        "ACTIVE",
        "an outage is not a revocation"
    );

    // The KMS comes back: the table recovers by itself.
    let mut kms_child = spawn_kms_mock_at(&bin, &addr, &state);
    let back = std::time::Instant::now();
    let mut ok = false;
    while back.elapsed() < std::time::Duration::from_secs(20) {
        if read(db.clone()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ok, "reads recover once the KMS is back");
    assert_eq!(status(db.clone()).await, "ACTIVE");
    server.terminate();
    let _ = kms_child.kill();
    let _ = kms_child.wait();
}
