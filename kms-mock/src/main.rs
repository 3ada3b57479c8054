//! `kms-mock`: serves a KeyStore over the AWS KMS JSON protocol.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use kms_mock::server::{self, Credentials, ServerConfig};
use kms_mock::KeyStore;

#[derive(Parser, Debug)]
#[command(
    name = "kms-mock",
    version,
    about = "A KMS-compatible key service for tests and drills"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the first stdout line names it).
    #[arg(long, default_value = "127.0.0.1:4599", env = "KMS_MOCK_LISTEN")]
    listen: SocketAddr,
    /// Persist state here (sealed, atomic writes). Without it the store is in memory only.
    #[arg(long, env = "KMS_MOCK_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// 32-byte master key sealing the state file; created when missing.
    /// Default: the state file's path with `.master-key` appended.
    #[arg(long, env = "KMS_MOCK_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    #[arg(long, default_value = "000000000000", env = "KMS_MOCK_ACCOUNT")]
    account: String,
    #[arg(long, default_value = "us-east-1", env = "KMS_MOCK_REGION")]
    region: String,
    /// JSON file of keys to load at start (`{"keys":[{"id","alias","material"}]}`).
    #[arg(long, env = "KMS_MOCK_SEED_FILE")]
    seed_file: Option<PathBuf>,
    /// Verify SigV4 signatures against the --access-key pairs.
    #[arg(long)]
    verify_signatures: bool,
    /// ACCESS_KEY_ID:SECRET accepted with --verify-signatures (repeatable).
    #[arg(long = "access-key", value_name = "ID:SECRET")]
    access_keys: Vec<String>,
    /// Serve the /__admin/ endpoints (fault injection, mock clock, health).
    #[arg(long)]
    enable_admin: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KMS_MOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("kms-mock: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut credentials = Credentials::default();
    for pair in &args.access_keys {
        credentials
            .insert_pair(pair)
            .map_err(|e| format!("--access-key: {e}"))?;
    }
    if args.verify_signatures && credentials.is_empty() {
        return Err("--verify-signatures needs at least one --access-key ID:SECRET".into());
    }
    let store = match &args.state_file {
        Some(state) => {
            let master = args.master_key_file.clone().unwrap_or_else(|| {
                let mut p = state.clone().into_os_string();
                p.push(".master-key");
                PathBuf::from(p)
            });
            KeyStore::open(state, &master, &args.account, &args.region)
                .map_err(|e| e.to_string())?
        }
        None => KeyStore::in_memory(&args.account, &args.region),
    };
    if let Some(seed) = &args.seed_file {
        store.seed_from_file(seed).map_err(|e| e.to_string())?;
    }
    let config = ServerConfig {
        verify_signatures: args.verify_signatures,
        credentials,
        enable_admin: args.enable_admin,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        // Tests start with port 0 and read this line: keep it first and flushed.
        let mut out = std::io::stdout().lock();
        writeln!(out, "kms-mock listening on {local}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        drop(out);
        // Every change is persisted before its response, so stopping needs no cleanup.
        server::serve(listener, Arc::new(store), config, shutdown_signal())
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
