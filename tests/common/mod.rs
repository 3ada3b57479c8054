//! Test harness: a real sealdb server (in-process on port 0, or the binary as a child
//! process), its dev credentials, and `aws-sdk-dynamodb` clients pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use sealdb::app::{self, Running};
use sealdb::config::Config;

pub const REGION: &str = "us-east-1";

pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

pub fn client_for(endpoint: &str, id: &str, secret: &str) -> Client {
    client_at_time(endpoint, id, secret, None)
}

/// A client whose clock is `skew` away from now (to sign stale requests).
pub fn client_at_time(endpoint: &str, id: &str, secret: &str, at: Option<SystemTime>) -> Client {
    let mut b = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(id, secret, None, None, "sealdb-tests"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .http_client(http_client());
    if let Some(t) = at {
        b = b.time_source(aws_smithy_async::time::StaticTimeSource::new(t));
    }
    Client::from_conf(b.build())
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

/// A server running inside the test process.
pub struct TestServer {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub access_key: String,
    pub secret: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> TestServer {
        Self::start_with(dir, |_| {}).await
    }

    /// Starts with the test configuration adjusted by `adjust`.
    pub async fn start_with(
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let running = app::start(config).await.expect("server starts");
        let creds = running
            .dev_credentials
            .clone()
            .unwrap_or_else(|| dir.path().join(app::DEV_CREDENTIALS_FILE));
        let (id, secret) =
            app::read_credentials_profile(&creds, app::DEV_PROFILE).expect("dev credentials");
        TestServer {
            endpoint: format!("http://{}", running.addr),
            running: Some(running),
            dir,
            access_key: id,
            secret: secret.to_string(),
        }
    }

    pub fn client(&self) -> Client {
        client_for(&self.endpoint, &self.access_key, &self.secret)
    }

    pub fn services(&self) -> &std::sync::Arc<sealdb::ops::Services> {
        &self.running.as_ref().expect("running").services
    }

    /// Graceful stop; keeps the data dir.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        // Let the last references to the store drop.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.dir
    }
}

/// The sealdb binary as a child process (SIGKILL tests).
pub struct ChildServer {
    pub child: Child,
    pub endpoint: String,
    pub data_dir: PathBuf,
}

/// A path inside this checkout (policies/, scripts/, test data), found at run time: cargo runs
/// tests with `CARGO_MANIFEST_DIR` set to the checkout being tested, while the value compiled
/// into a test binary names whichever clone built it first (the target dir is a shared cache,
/// and cargo does not rebuild a test only because the clone moved).
pub fn source_path(rel: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join(rel)
}

pub fn sealdb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealdb")
}

impl ChildServer {
    pub fn start(data_dir: &Path) -> ChildServer {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(sealdb_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sealdb");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a line").expect("utf-8");
        let endpoint = first
            .strip_prefix("sealdb listening on ")
            .expect("listening line")
            .to_string();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ChildServer {
            child,
            endpoint,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn credentials(&self) -> (String, String) {
        let (id, s) = app::read_credentials_profile(
            &self.data_dir.join(app::DEV_CREDENTIALS_FILE),
            app::DEV_PROFILE,
        )
        .expect("dev credentials");
        (id, s.to_string())
    }

    pub fn client(&self) -> Client {
        let (id, s) = self.credentials();
        client_for(&self.endpoint, &id, &s)
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The AWS error code of a failed SDK call.
pub fn code<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => e.code().unwrap_or("<no code>").to_string(),
        None => format!("<not a service error: {err:?}>"),
    }
}

pub fn message<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or("")
        .to_string()
}

/// Signs and sends a raw request (for bodies no SDK would send).
pub async fn raw_request(
    endpoint: &str,
    id: &str,
    secret: &str,
    target: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let url: reqwest::Url = endpoint.parse().unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut headers = vec![
        ("host".to_string(), host),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        ),
    ];
    if let Some(t) = target {
        headers.push(("x-amz-target".to_string(), t.to_string()));
    }
    let signed = sealdb::auth::sigv4::sign(
        "POST",
        "/",
        None,
        &headers,
        &body,
        id,
        secret,
        None,
        REGION,
        "dynamodb",
        time::OffsetDateTime::now_utc(),
    );
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers.iter().skip(1).chain(signed.iter()) {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

impl ChildServer {
    /// Like [`ChildServer::start`], with extra environment variables for the child only
    /// (configuration overrides, the AWS credential chain of the server process). Variables
    /// named in `remove` are cleared from the child's environment. Panics with the child's
    /// stderr when it does not come up.
    pub fn start_with_env(data_dir: &Path, env: &[(&str, &str)], remove: &[&str]) -> ChildServer {
        use std::io::{BufRead, BufReader, Read};
        let mut cmd = Command::new(sealdb_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in remove {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sealdb");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(endpoint) = first.strip_prefix("sealdb listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!("sealdb did not start: stdout {first:?}, stderr {err}");
        };
        let endpoint = endpoint.to_string();
        std::thread::spawn(move || for _ in lines {});
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        ChildServer {
            child,
            endpoint,
            data_dir: data_dir.to_path_buf(),
        }
    }
}

/// CreateTable (on-demand) with partition key `pk` (S) and, when given, sort key `sk`.
pub fn table_request(
    c: &Client,
    name: &str,
    sort: Option<ScalarAttributeType>,
) -> CreateTableFluentBuilder {
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let attr = |n: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let mut b = c
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .attribute_definitions(attr("pk", ScalarAttributeType::S));
    if let Some(t) = sort {
        b = b
            .key_schema(key("sk", KeyType::Range))
            .attribute_definitions(attr("sk", t));
    }
    b
}

pub async fn create_table(c: &Client, name: &str, sort: Option<ScalarAttributeType>) {
    table_request(c, name, sort)
        .send()
        .await
        .expect("create table");
}
