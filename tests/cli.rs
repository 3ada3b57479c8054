//! The `sealdb` binary as a user runs it: `serve` prints what the README promises, `iam`
//! works against a running server (signed admin API) and a stopped server's data dir.

mod common;

use std::process::{Command, Stdio};

use aws_sdk_dynamodb::types::AttributeValue as Av;
use common::*;

fn sealdb(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(sealdb_bin());
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_commands_online_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path());
    let creds = dir.path().join("dev-credentials");
    let creds_s = creds.to_str().unwrap().to_string();
    let env = [("AWS_SHARED_CREDENTIALS_FILE", creds_s.as_str())];
    let ep = server.endpoint.clone();
    // The credentials file is private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let remote = |extra: &[&str]| {
        let mut a: Vec<&str> = extra.to_vec();
        a.extend(["--endpoint", ep.as_str(), "--profile", "sealdb-dev"]);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: Option<&str>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sealdb(&refs, &env, stdin)
    };
    let (ok, out, err) = run(remote(&["iam", "create-user", "--user", "alice"]), None);
    assert!(ok, "{out}{err}");
    let policy = dir.path().join("p.json");
    std::fs::write(&policy, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:ListTables","Resource":"*"}]}"#).unwrap();
    let (ok, out, err) = run(
        remote(&[
            "iam",
            "attach-policy",
            "--user",
            "alice",
            "--policy-name",
            "lt",
            "--file",
            policy.to_str().unwrap(),
        ]),
        None,
    );
    assert!(ok, "{out}{err}");
    // Import a fixed key pair through stdin.
    let (ok, out, err) = run(
        remote(&[
            "iam",
            "create-access-key",
            "--user",
            "alice",
            "--access-key-id",
            "AKIAFIXEDFORTESTS001",
            "--secret-stdin",
        ]),
        Some("fixed-secret-for-tests-0123456789abcdef\n"),
    );
    assert!(ok, "{out}{err}");
    let alice = client_for(
        &ep,
        "AKIAFIXEDFORTESTS001",
        "fixed-secret-for-tests-0123456789abcdef",
    );
    alice.list_tables().send().await.unwrap();
    let e = alice
        .get_item()
        .table_name("x_table")
        .key("pk", Av::S("a".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    // A malformed policy is refused with its JSON path.
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
    )
    .unwrap();
    let (ok, _, err) = run(
        remote(&[
            "iam",
            "attach-policy",
            "--user",
            "alice",
            "--policy-name",
            "bad",
            "--file",
            policy.to_str().unwrap(),
        ]),
        None,
    );
    assert!(!ok);
    assert!(err.contains("Effect"), "{err}");
    // Alice cannot administer.
    let (ok, _, err) = sealdb(
        &["iam", "create-user", "--user", "mallory", "--endpoint", &ep],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAFIXEDFORTESTS001"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "fixed-secret-for-tests-0123456789abcdef",
            ),
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("AccessDeniedException"), "{err}");
    server.terminate();

    // Offline, on the stopped server's data dir.
    let d = dir.path().to_str().unwrap();
    let (ok, out, err) = sealdb(&["iam", "list-users", "--data-dir", d], &[], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("alice") && out.contains("dev"), "{out}");
    let (ok, out, err) = sealdb(
        &[
            "iam",
            "delete-access-key",
            "--access-key-id",
            "AKIAFIXEDFORTESTS001",
            "--data-dir",
            d,
        ],
        &[],
        None,
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = sealdb(
        &[
            "iam",
            "create-access-key",
            "--user",
            "alice",
            "--data-dir",
            d,
        ],
        &[],
        None,
    );
    assert!(ok);
    assert!(
        out.contains("SecretAccessKey"),
        "the secret is shown once, at creation"
    );
    // The change holds at the next start: the deleted key no longer works.
    let server = ChildServer::start(dir.path());
    let alice = client_for(
        &server.endpoint,
        "AKIAFIXEDFORTESTS001",
        "fixed-secret-for-tests-0123456789abcdef",
    );
    let e = alice.list_tables().send().await.unwrap_err();
    assert_eq!(code(&e), "UnrecognizedClientException");
    // The dev credentials were reused, not regenerated.
    server.client().list_tables().send().await.unwrap();
    server.terminate();
}

#[test]
fn serve_refuses_plaintext_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = sealdb(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(!ok);
    assert!(err.contains("--allow-insecure-network"), "{err}");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    // `sealdb ... | head -1`: more output than a pipe buffer holds (64 KiB on Linux), read by
    // nobody, so a write fails with EPIPE whenever the read end closes.
    let policy = source_path("policies/read-only.json").display().to_string();
    let mut args = vec!["policy".to_string(), "validate".to_string()];
    args.extend(std::iter::repeat_n(policy, 3000));
    let mut child = Command::new(sealdb_bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed")
        .success();
    assert!(ok, "openssl could not make a test certificate");
    let mut config = test_config(&dir.path().join("data"));
    config.tls_cert = Some(cert.clone());
    config.tls_key = Some(key);
    let running = sealdb::app::start(config).await.unwrap();
    let url = format!("https://{}/", running.addr);
    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("healthy: {}", running.addr)
    );
    // Plain HTTP to the TLS port does not get an answer.
    let plain = reqwest::get(format!("http://{}/", running.addr)).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    running.stop().await.unwrap();
}

#[test]
fn the_server_runs_without_core_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(dir.path());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    server.terminate();
}
