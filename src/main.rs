//! The `sealdb` command line: `serve`, and `iam ...` administration against a running server
//! (`--endpoint`) or a stopped server's data dir (`--data-dir`).
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// `println!` that does not panic when stdout is gone (`sealdb iam list-users | head -1`):
/// a closed pipe ends the process quietly with 141 (128 + SIGPIPE, as a shell reports a
/// tool killed by SIGPIPE); any other write error ends it with 1 and a message.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
            eprintln!("sealdb: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }};
}

mod cli_iam;
mod cli_keys;
mod cli_remote;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use sealdb::config::Config;
use sealdb::ops::admin::{self, AdminInput};
use sealdb::protocol::AdminOp;

/// mimalloc instead of glibc malloc: the request path allocates small, short-lived buffers on
/// every worker thread, and glibc's per-arena locks showed up as futex waits in the GetItem
/// profile (`sealdb bench`, numbers in the issue 2 notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sealdb",
    version,
    about = "A DynamoDB-compatible database with SigV4, IAM and encryption at rest"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage IAM users, access keys and policies.
    #[command(subcommand)]
    Iam(IamCommand),
    /// Table keys: status, data-key rotation, re-encryption, retiring generations.
    #[command(subcommand)]
    Keys(cli_keys::KeysCommand),
    /// Load test: bare hyper vs sealdb PutItem/GetItem, in one run on this machine.
    Bench(BenchArgs),
    /// Validate policy documents or simulate a decision (no server, no data dir).
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Exit 0 when every document is valid, 1 otherwise; one line per problem with its JSON path.
    Validate {
        /// identity (also for boundaries) or resource (a table's resource-based policy).
        #[arg(long = "type", default_value = "identity")]
        kind: String,
        files: Vec<PathBuf>,
    },
    /// Read a simulation request (JSON) from --input or stdin; print the decision as JSON.
    Simulate {
        #[arg(long)]
        input: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per scenario (over all rounds).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds: the scenarios take turns, each running `seconds / rounds` per round; "vs bare"
    /// is the median over rounds of the ratio to the bare row of the same round.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Item size in bytes.
    #[arg(long, default_value_t = 1024)]
    item_bytes: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Measure a running server instead of a throw-away one (credentials from the usual AWS
    /// environment or --profile, as for `sealdb iam`).
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long, requires = "endpoint")]
    profile: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// HOST:PORT to listen on [default: 127.0.0.1:8000].
    #[arg(long)]
    listen: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Allow plaintext HTTP on a non-loopback address.
    #[arg(long)]
    allow_insecure_network: bool,
}

#[derive(Args, Clone)]
struct Target {
    /// Administer a running server at this URL (signed with your AWS credentials).
    #[arg(long, conflicts_with = "data_dir")]
    endpoint: Option<String>,
    /// Administer a stopped server's data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration file (offline mode: account and region).
    #[arg(long)]
    config: Option<PathBuf>,
    /// AWS profile for --endpoint (default: AWS_PROFILE, then "default").
    #[arg(long)]
    profile: Option<String>,
    /// Region to sign for with --endpoint (default: AWS_REGION, then us-east-1).
    #[arg(long)]
    region: Option<String>,
}

#[derive(Subcommand)]
enum IamCommand {
    CreateUser {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    DeleteUser {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    ListUsers {
        #[command(flatten)]
        target: Target,
    },
    /// Create an access key (the secret is shown once), or import one with
    /// --access-key-id and --secret-stdin.
    CreateAccessKey {
        #[arg(long)]
        user: String,
        #[arg(long, requires = "secret_stdin")]
        access_key_id: Option<String>,
        /// Read the secret access key from standard input.
        #[arg(long, requires = "access_key_id")]
        secret_stdin: bool,
        #[command(flatten)]
        target: Target,
    },
    DeleteAccessKey {
        #[arg(long)]
        access_key_id: String,
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    ListAccessKeys {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    /// Attach a policy document (JSON file) to a user under a name.
    #[command(alias = "put-user-policy")]
    AttachPolicy {
        #[arg(long)]
        user: String,
        #[arg(long)]
        policy_name: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Detach (delete) a user's named policy.
    #[command(alias = "delete-user-policy")]
    DetachPolicy {
        #[arg(long)]
        user: String,
        #[arg(long)]
        policy_name: String,
        #[command(flatten)]
        target: Target,
    },
    #[command(flatten)]
    Directory(cli_iam::IamDirectoryCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sealdb: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Iam(cmd) => iam(cmd).await,
            Command::Keys(cmd) => cli_keys::run(cmd).await,
            Command::Bench(args) => bench(args).await,
            Command::Policy(cmd) => policy(cmd),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e == POLICY_INVALID => ExitCode::from(1),
        Err(e) => {
            eprintln!("sealdb: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEALDB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Key hygiene: a crash must not write the process's memory (plaintext table keys) to disk.
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0) {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert;
    }
    if args.tls_key.is_some() {
        config.tls_key = args.tls_key;
    }
    config.allow_insecure_network |= args.allow_insecure_network;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let region = config.region.clone();
    let running = sealdb::app::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let endpoint = format!("{scheme}://{}", running.addr);
    outln!("sealdb listening on {endpoint}");
    match &running.dev_credentials {
        Some(path) => {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            outln!("dev credentials: {} (profile {})", path.display(), sealdb::app::DEV_PROFILE);
            outln!(
                "try: AWS_SHARED_CREDENTIALS_FILE={} aws --profile {} --region {region} --endpoint-url {endpoint} dynamodb list-tables",
                path.display(),
                sealdb::app::DEV_PROFILE
            );
        }
        None => outln!("dev credentials: not present (the dev user exists; create a key with `sealdb iam create-access-key --user dev`)"),
    }
    wait_for_signal().await;
    eprintln!("sealdb: shutting down");
    running.stop().await.map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn iam(cmd: IamCommand) -> Result<(), String> {
    let (op, input, target) = match cmd {
        IamCommand::CreateUser { user, target } => (AdminOp::CreateUser, user_input(user), target),
        IamCommand::DeleteUser { user, target } => (AdminOp::DeleteUser, user_input(user), target),
        IamCommand::ListUsers { target } => (AdminOp::ListUsers, AdminInput::default(), target),
        IamCommand::CreateAccessKey {
            user,
            access_key_id,
            secret_stdin,
            target,
        } => {
            let mut input = user_input(user);
            if secret_stdin {
                let mut secret = zeroize::Zeroizing::new(String::new());
                std::io::stdin()
                    .read_to_string(&mut secret)
                    .map_err(|e| format!("reading the secret from stdin: {e}"))?;
                input.secret_access_key = Some(zeroize::Zeroizing::new(secret.trim().to_string()));
                input.access_key_id = access_key_id;
            }
            (AdminOp::CreateAccessKey, input, target)
        }
        IamCommand::DeleteAccessKey {
            access_key_id,
            user,
            target,
        } => (
            AdminOp::DeleteAccessKey,
            AdminInput {
                access_key_id: Some(access_key_id),
                user_name: user,
                ..Default::default()
            },
            target,
        ),
        IamCommand::ListAccessKeys { user, target } => {
            (AdminOp::ListAccessKeys, user_input(user), target)
        }
        IamCommand::AttachPolicy {
            user,
            policy_name,
            file,
            target,
        } => {
            let doc =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let mut input = user_input(user);
            input.policy_name = Some(policy_name);
            input.policy_document = Some(doc);
            (AdminOp::PutUserPolicy, input, target)
        }
        IamCommand::DetachPolicy {
            user,
            policy_name,
            target,
        } => {
            let mut input = user_input(user);
            input.policy_name = Some(policy_name);
            (AdminOp::DeleteUserPolicy, input, target)
        }
        IamCommand::Directory(cmd) => cli_iam::request(cmd)?,
    };
    let out = match (&target.endpoint, &target.data_dir) {
        (Some(endpoint), _) => remote(endpoint, &target, op, &input).await?,
        (None, Some(dir)) => offline(dir, &target, op, input).await?,
        (None, None) => {
            return Err(
                "give --endpoint URL (running server) or --data-dir DIR (stopped server)".into(),
            )
        }
    };
    outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

fn user_input(user: String) -> AdminInput {
    AdminInput {
        user_name: Some(user),
        ..Default::default()
    }
}

async fn offline(
    dir: &std::path::Path,
    target: &Target,
    op: AdminOp,
    input: AdminInput,
) -> Result<Value, String> {
    if !dir.join("db").exists() {
        return Err(format!(
            "{} is not a sealdb data directory (no db/ inside)",
            dir.display()
        ));
    }
    let mut config = Config::load(target.config.as_deref()).map_err(|e| e.to_string())?;
    config.data_dir = dir.to_path_buf();
    let svc = sealdb::app::open_services(config)
        .await
        .map_err(|e| format!("{e} (is the server still running on this data dir?)"))?;
    admin::run(&svc.catalog, op, input)
        .await
        .map_err(|e| e.to_string())
}

async fn remote(
    endpoint: &str,
    target: &Target,
    op: AdminOp,
    input: &AdminInput,
) -> Result<Value, String> {
    // Every member that is set, under its wire name (the admin input's serde names).
    let body = zeroize::Zeroizing::new(serde_json::to_vec(input).map_err(|e| e.to_string())?);
    cli_remote::admin_call(
        endpoint,
        target.profile.as_deref(),
        target.region.as_deref(),
        op.name(),
        &body,
    )
    .await
}

/// Starts a throw-away server (temp data dir, the default configuration) and measures it.
async fn bench(args: BenchArgs) -> Result<(), String> {
    let opts = sealdb::loadgen::BenchOptions {
        connections: args.connections,
        duration: std::time::Duration::from_secs(args.seconds),
        item_bytes: args.item_bytes,
        keys: args.keys,
        rounds: args.rounds.clamp(1, sealdb::loadgen::MAX_ROUNDS),
    };
    outln!(
        "sealdb bench: {} connections, {} s per scenario in {} rounds, {} B items, {} keys, {} cores",
        opts.connections,
        args.seconds,
        opts.rounds,
        opts.item_bytes,
        opts.keys,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if let Some(endpoint) = &args.endpoint {
        let (id, secret) = cli_remote::credentials(args.profile.as_deref())?;
        let addr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("--endpoint must be http://HOST:PORT with an IP address: {e}"))?;
        let signer = std::sync::Arc::new(sealdb::loadgen::Signer {
            addr,
            access_key: id,
            secret,
            region: std::env::var("AWS_DEFAULT_REGION").unwrap_or_else(|_| "us-east-1".into()),
        });
        let results = sealdb::loadgen::run(&opts, signer, "sealdb_bench").await?;
        print!("{}", sealdb::loadgen::report(&results));
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("sealdb-bench-{}", std::process::id()));
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.clone(),
        ..Config::default()
    };
    let running = sealdb::app::start(config)
        .await
        .map_err(|e| e.to_string())?;
    let creds = running
        .dev_credentials
        .clone()
        .ok_or("no dev credentials")?;
    let (id, secret) = sealdb::app::read_credentials_profile(&creds, sealdb::app::DEV_PROFILE)
        .ok_or("unreadable dev credentials")?;
    let signer = std::sync::Arc::new(sealdb::loadgen::Signer {
        addr: running.addr,
        access_key: id,
        secret,
        region: running.services.config.region.clone(),
    });
    let results = sealdb::loadgen::run(&opts, signer, "bench").await;
    let _ = running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", sealdb::loadgen::report(&results?));
    Ok(())
}

/// The error text `policy validate` returns when a document is invalid (its lines are printed).
const POLICY_INVALID: &str = "one or more policy documents are invalid";

fn policy(cmd: PolicyCommand) -> Result<(), String> {
    use sealdb::iam::policy::{Policy, PolicyKind};
    match cmd {
        PolicyCommand::Validate { kind, files } => {
            let kind = match kind.as_str() {
                "identity" => PolicyKind::Identity,
                "resource" => PolicyKind::Resource,
                "boundary" => PolicyKind::Boundary,
                other => {
                    return Err(format!(
                        "unknown --type {other} (identity, resource, boundary)"
                    ))
                }
            };
            if files.is_empty() {
                return Err("give one or more policy files".into());
            }
            let mut ok = true;
            for f in files {
                let text =
                    std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                match Policy::parse(&f.display().to_string(), &text, kind) {
                    Ok(_) => outln!("{}: valid", f.display()),
                    Err(problems) => {
                        ok = false;
                        for p in problems {
                            outln!("{}: {}: {}", f.display(), p.path, p.message);
                        }
                    }
                }
            }
            if ok {
                Ok(())
            } else {
                Err(POLICY_INVALID.into())
            }
        }
        PolicyCommand::Simulate { input } => {
            let text = match input {
                Some(f) => {
                    std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?
                }
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| e.to_string())?;
                    s
                }
            };
            let decision = simulate(&text)?;
            outln!(
                "{}",
                serde_json::to_string_pretty(&decision).map_err(|e| e.to_string())?
            );
            Ok(())
        }
    }
}

/// Evaluates a simulation request: policies, principal, action, resource and a complete context.
fn simulate(text: &str) -> Result<sealdb::iam::eval::Decision, String> {
    use sealdb::iam::eval::{evaluate, AuthzRequest, ContextValue, PolicySet, PrincipalInfo};
    use sealdb::iam::policy::{Policy, PolicyKind};
    let req: Value = serde_json::from_str(text).map_err(|e| format!("input is not JSON: {e}"))?;
    let doc = |v: &Value, name: &str, kind: PolicyKind| -> Result<Policy, String> {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Policy::parse(name, &text, kind).map_err(|problems| {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{name}: {}: {}", p.path, p.message))
                .collect();
            lines.join("\n")
        })
    };
    let mut identity = Vec::new();
    for (i, d) in req["identity_policies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        identity.push(std::sync::Arc::new(doc(
            d,
            &format!("identity_policies[{i}]"),
            PolicyKind::Identity,
        )?));
    }
    let boundary = match &req["permissions_boundary"] {
        Value::Null => None,
        d => Some(doc(d, "permissions_boundary", PolicyKind::Boundary)?),
    };
    let resource_policy = match &req["resource_policy"] {
        Value::Null => None,
        d => Some(doc(d, "resource_policy", PolicyKind::Resource)?),
    };
    let principal: PrincipalInfo =
        serde_json::from_value(req["principal"].clone()).map_err(|e| format!("principal: {e}"))?;
    let action = req["action"]
        .as_str()
        .ok_or("action: a string is required")?;
    let resource = req["resource"]
        .as_str()
        .ok_or("resource: a string is required")?;
    let mut context = Vec::new();
    if let Some(m) = req["context"].as_object() {
        for (k, v) in m {
            let cv = ContextValue::from_json(v)
                .ok_or_else(|| format!("context.{k}: unsupported value {v}"))?;
            context.push((k.clone(), cv));
        }
    }
    Ok(evaluate(
        &AuthzRequest {
            principal: &principal,
            action,
            resource,
            context: &context,
            facts: None,
        },
        &PolicySet {
            identity: &identity,
            boundary: boundary.as_ref(),
            resource: resource_policy.as_ref(),
        },
    ))
}
