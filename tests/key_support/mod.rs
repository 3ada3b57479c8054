//! Shared by the key lifecycle tests: kms-mock as a child process (seeded keys, state file),
//! sealdb as a child process on the `aws` KMS provider with its log captured, checksums.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aws_sdk_dynamodb::types::AttributeValue as Av;
use sealdb::kms::aws::{AwsKms, AwsKmsSettings, Credentials};

pub const KMS_REGION: &str = "us-east-1";

pub fn sealdb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sealdb")
}

/// kms-mock's binary sits beside sealdb's when the workspace was built (`make test`, or
/// `cargo build --release -p kms-mock`).
pub fn kms_mock_bin() -> PathBuf {
    let p = Path::new(sealdb_bin()).with_file_name("kms-mock");
    assert!(
        p.is_file(),
        "kms-mock is not built next to sealdb: run `cargo build --release -p kms-mock` first"
    );
    p
}

pub struct KmsMock {
    pub child: Child,
    pub endpoint: String,
}

impl KmsMock {
    pub fn start(state: &Path, seed: Option<&Path>) -> KmsMock {
        let mut cmd = Command::new(kms_mock_bin());
        cmd.args(["--listen", "127.0.0.1:0", "--state-file"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(s) = seed {
            cmd.arg("--seed-file").arg(s);
        }
        let mut child = cmd.spawn().expect("spawn kms-mock");
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
            child,
            endpoint: format!("http://{addr}"),
        }
    }

    pub async fn client(&self) -> aws_sdk_kms::Client {
        let s = AwsKmsSettings::new(KMS_REGION)
            .endpoint_url(&self.endpoint)
            .credentials(Credentials::new(
                "AKIDKEYDRILL",
                "key-drill-secret",
                None,
                None,
                "key-drill",
            ));
        AwsKms::new(s).await.client().clone()
    }
}

impl Drop for KmsMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new key with an alias; returns its ARN.
pub async fn create_key(kms: &aws_sdk_kms::Client, alias: &str) -> String {
    let meta = kms
        .create_key()
        .description("sealdb key drill")
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("KeyMetadata");
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(meta.key_id())
        .send()
        .await
        .expect("CreateAlias");
    meta.arn().expect("arn").to_string()
}

/// The environment of a sealdb child on the `aws` provider against kms-mock.
pub fn sealdb_env(kms_endpoint: &str, default_key: &str) -> Vec<(String, String)> {
    [
        ("SEALDB_KMS_PROVIDER", "aws"),
        ("SEALDB_KMS_ENDPOINT_URL", kms_endpoint),
        ("SEALDB_KMS_REGION", KMS_REGION),
        ("SEALDB_KMS_DEFAULT_KEY", default_key),
        ("AWS_ACCESS_KEY_ID", "AKIDSEALDBSERVER"),
        ("AWS_SECRET_ACCESS_KEY", "sealdb-server-secret"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/sealdb-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/sealdb-test/credentials",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub const CLEARED_ENV: &[&str] = &[
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

/// sealdb as a child process; its log (stderr) appended to `log`.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, env: &[(String, String)], log: &Path) -> Server {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("server log");
        let mut cmd = Command::new(sealdb_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        for k in CLEARED_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sealdb");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(endpoint) = first.strip_prefix("sealdb listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("sealdb did not start: {first:?}\n{text}");
        };
        let endpoint = endpoint.to_string();
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            endpoint,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn credentials(&self) -> (String, String) {
        let (id, s) = sealdb::app::read_credentials_profile(
            &self.data_dir.join(sealdb::app::DEV_CREDENTIALS_FILE),
            sealdb::app::DEV_PROFILE,
        )
        .expect("dev credentials");
        (id, s.to_string())
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        let (id, s) = self.credentials();
        crate::common::client_for(&self.endpoint, &id, &s)
    }

    /// `sealdb keys ARGS --endpoint ...` signed with the dev credentials: (success, stdout).
    pub fn keys_cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(sealdb_bin())
            .arg("keys")
            .args(args)
            .args([
                "--endpoint",
                &self.endpoint,
                "--profile",
                sealdb::app::DEV_PROFILE,
            ])
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.data_dir.join(sealdb::app::DEV_CREDENTIALS_FILE),
            )
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_REGION", crate::common::REGION)
            .output()
            .expect("run sealdb keys");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// A signed admin API call (`SealDBAdmin_20261101.<op>`).
    pub async fn admin(&self, op: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (id, s) = self.credentials();
        admin_call(&self.endpoint, &id, &s, op, body).await
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
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

/// A signed key administration API call (`SealDBAdmin_20261101.<op>`) to any server
/// (a child process or one in the test process).
pub async fn admin_call(
    endpoint: &str,
    id: &str,
    secret: &str,
    op: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    crate::common::raw_request(
        endpoint,
        id,
        secret,
        Some(&format!("SealDBAdmin_20261101.{op}")),
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// SHA-256 over every item of the table (full Scan, items in canonical order).
pub async fn checksum(c: &aws_sdk_dynamodb::Client, table: &str) -> (usize, String) {
    let mut lines = Vec::new();
    let mut start = None;
    loop {
        let out = c
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in out.items() {
            let mut attrs: Vec<String> = item
                .iter()
                .map(|(k, v)| format!("{k}={}", av_text(v)))
                .collect();
            attrs.sort();
            lines.push(attrs.join("|"));
        }
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    lines.sort();
    let digest = ring::digest::digest(&ring::digest::SHA256, lines.join("\n").as_bytes());
    (lines.len(), hex::encode(digest.as_ref()))
}

fn av_text(v: &Av) -> String {
    match v {
        Av::S(s) => format!("S:{s}"),
        Av::N(n) => format!("N:{n}"),
        Av::B(b) => format!("B:{}", hex::encode(b.as_ref())),
        Av::Bool(b) => format!("BOOL:{b}"),
        other => format!("{other:?}"),
    }
}
