//! `sealdb keys ...`: key status, data-key rotation, re-encryption and retiring generations,
//! against a running server (`--endpoint`, signed admin API calls authorized as
//! `sealdb:KeysStatus`, `sealdb:RotateDataKey`, `sealdb:ReencryptTable`,
//! `sealdb:RetireGeneration`) or a stopped server's data dir (`--data-dir`).

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use sealdb::config::Config;
use sealdb::keyjob::{self, Progress};
use sealdb::ops::key_admin::{self, KeysInput};
use sealdb::ops::Services;
use sealdb::protocol::KeysOp;

/// How often `--wait` polls the job's progress.
const POLL: Duration = Duration::from_millis(500);
const BAR_WIDTH: usize = 30;

#[derive(Args, Clone)]
pub struct KeysTarget {
    /// Administer a running server at this URL (signed with your AWS credentials).
    #[arg(long, conflicts_with = "data_dir")]
    endpoint: Option<String>,
    /// Administer a stopped server's data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Configuration file (offline mode: KMS provider, account and region).
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
pub enum KeysCommand {
    /// KMS key ARN and state, data-key generations with row counts, key cache age,
    /// re-encryption progress and inaccessible-since, per table.
    Status {
        #[arg(long)]
        table: Option<String>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: KeysTarget,
    },
    /// Add a data-key generation and make it active for writes.
    RotateDataKey {
        #[arg(long)]
        table: String,
        #[command(flatten)]
        target: KeysTarget,
    },
    /// Re-seal rows of older generations under the active one (a resumable background job).
    Reencrypt {
        #[arg(long)]
        table: String,
        /// Wait for the job to finish, showing its progress.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        target: KeysTarget,
    },
    /// Destroy a generation's data key; refused while any row still uses it.
    RetireGeneration {
        #[arg(long)]
        table: String,
        #[arg(long)]
        generation: u32,
        #[command(flatten)]
        target: KeysTarget,
    },
}

enum Conn {
    Remote {
        endpoint: String,
        target: KeysTarget,
    },
    Offline(Arc<Services>),
}

impl Conn {
    async fn open(target: &KeysTarget) -> Result<Conn, String> {
        match (&target.endpoint, &target.data_dir) {
            (Some(e), _) => Ok(Conn::Remote {
                endpoint: e.clone(),
                target: target.clone(),
            }),
            (None, Some(dir)) => {
                if !dir.join("db").exists() {
                    return Err(format!(
                        "{} is not a sealdb data directory (no db/ inside)",
                        dir.display()
                    ));
                }
                let mut config =
                    Config::load(target.config.as_deref()).map_err(|e| e.to_string())?;
                config.data_dir = dir.clone();
                let svc = sealdb::app::open_services(config)
                    .await
                    .map_err(|e| format!("{e} (is the server still running on this data dir?)"))?;
                Ok(Conn::Offline(svc))
            }
            (None, None) => Err(
                "give --endpoint URL (running server) or --data-dir DIR (stopped server)".into(),
            ),
        }
    }

    async fn call(&self, op: KeysOp, input: KeysInput) -> Result<Value, String> {
        match self {
            Conn::Remote { endpoint, target } => remote(endpoint, target, op, &input).await,
            Conn::Offline(svc) => key_admin::run(svc, op, input)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

pub async fn run(cmd: KeysCommand) -> Result<(), String> {
    match cmd {
        KeysCommand::Status {
            table,
            json,
            target,
        } => {
            let conn = Conn::open(&target).await?;
            let out = conn
                .call(
                    KeysOp::KeysStatus,
                    KeysInput {
                        table_name: table,
                        ..Default::default()
                    },
                )
                .await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                print!("{}", render_status(&out));
            }
            Ok(())
        }
        KeysCommand::RotateDataKey { table, target } => {
            let conn = Conn::open(&target).await?;
            let out = conn
                .call(KeysOp::RotateDataKey, table_input(&table))
                .await?;
            outln!(
                "table {table}: data key generation {} is now active",
                out["ActiveGeneration"]
            );
            Ok(())
        }
        KeysCommand::RetireGeneration {
            table,
            generation,
            target,
        } => {
            let conn = Conn::open(&target).await?;
            let mut input = table_input(&table);
            input.generation = Some(generation);
            conn.call(KeysOp::RetireGeneration, input).await?;
            outln!("table {table}: generation {generation} retired (its data key destroyed)");
            Ok(())
        }
        KeysCommand::Reencrypt {
            table,
            wait,
            target,
        } => {
            let conn = Conn::open(&target).await?;
            match &conn {
                Conn::Offline(svc) => reencrypt_offline(svc, &table).await,
                Conn::Remote { .. } => {
                    let out = conn
                        .call(KeysOp::ReencryptTable, table_input(&table))
                        .await?;
                    if !wait {
                        outln!("table {table}: re-encryption started");
                        outln!("{}", progress_line(&parse_progress(&out["Reencrypt"])));
                        return Ok(());
                    }
                    let mut bar = Bar::new();
                    loop {
                        let mut input = table_input(&table);
                        input.progress_only = Some(true);
                        let out = conn.call(KeysOp::KeysStatus, input).await?;
                        let p = parse_progress(&out["Reencrypt"]);
                        bar.draw(&p);
                        if !p.running {
                            bar.finish(&p);
                            return finished(&table, &p);
                        }
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
        }
    }
}

fn table_input(table: &str) -> KeysInput {
    KeysInput {
        table_name: Some(table.to_string()),
        ..Default::default()
    }
}

fn parse_progress(v: &Value) -> Progress {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn finished(table: &str, p: &Progress) -> Result<(), String> {
    if p.finished.is_none() {
        return Err(format!(
            "table {table}: the re-encryption job stopped before finishing (see the server log); run the command again to resume it"
        ));
    }
    outln!(
        "table {table}: re-encryption finished: {}",
        progress_line(p)
    );
    if p.failed > 0 {
        return Err(format!(
            "{} rows could not be re-sealed (integrity failures; see the server log)",
            p.failed
        ));
    }
    Ok(())
}

/// Offline: the job runs in this process; a second task draws its progress.
async fn reencrypt_offline(svc: &Arc<Services>, table: &str) -> Result<(), String> {
    // The `[keys]` table of --config, then the SEALDB_KEYS_* environment.
    let config = svc.config.keys.clone();
    let watcher = {
        let svc = svc.clone();
        let table = table.to_string();
        tokio::spawn(async move {
            let mut bar = Bar::new();
            loop {
                tokio::time::sleep(POLL).await;
                if let Some(p) = keyjob::progress(&svc, &table) {
                    bar.draw(&p);
                }
            }
        })
    };
    let result = keyjob::run_reencrypt(svc, table, config).await;
    watcher.abort();
    let p = result.map_err(|e| key_admin::api_error(e).to_string())?;
    Bar::new().finish(&p);
    finished(table, &p)
}

fn progress_line(p: &Progress) -> String {
    format!(
        "scanned {}, re-sealed {}, changed by writers {}, failed {}, remaining {}, {:.0} rows/s{}",
        p.scanned,
        p.resealed,
        p.changed,
        p.failed,
        p.remaining,
        p.rows_per_second,
        p.waiting
            .as_deref()
            .map(|w| format!(" (waiting: {w})"))
            .unwrap_or_default()
    )
}

/// A one-line progress bar on a terminal; a line every few seconds otherwise (logs, CI).
struct Bar {
    tty: bool,
    last_plain: Option<Instant>,
}

impl Bar {
    fn new() -> Bar {
        Bar {
            tty: std::io::stderr().is_terminal(),
            last_plain: None,
        }
    }

    fn draw(&mut self, p: &Progress) {
        let done = p.resealed + p.changed + p.failed;
        let total = done + p.remaining;
        let frac = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        if self.tty {
            let filled = ((frac * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
            eprint!(
                "\r[{}{}] {:>3.0}% {}/{} rows, {:.0}/s, failed {}   ",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                frac * 100.0,
                done,
                total,
                p.rows_per_second,
                p.failed
            );
            let _ = std::io::stderr().flush();
        } else if self
            .last_plain
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            self.last_plain = Some(Instant::now());
            eprintln!("{:.0}% {}", frac * 100.0, progress_line(p));
        }
    }

    fn finish(&mut self, p: &Progress) {
        if self.tty {
            self.draw(p);
            eprintln!();
        }
    }
}

fn render_status(v: &Value) -> String {
    let mut s = String::new();
    let t = |v: &Value| -> String {
        match v {
            Value::Null => "-".into(),
            Value::String(x) => x.clone(),
            other => other.to_string(),
        }
    };
    for table in v["Tables"].as_array().cloned().unwrap_or_default() {
        s.push_str(&format!("table {}\n", t(&table["TableName"])));
        s.push_str(&format!(
            "  KMS key            {} ({})\n",
            t(&table["KmsKeyArn"]),
            t(&table["KmsKeyState"])
        ));
        s.push_str(&format!(
            "  inaccessible since {}\n",
            t(&table["InaccessibleSince"])
        ));
        let age = table["CacheAgeSeconds"]
            .as_f64()
            .map(|a| format!("{a:.1} s"))
            .unwrap_or_else(|| "not cached".into());
        s.push_str(&format!("  key cache age      {age}\n"));
        s.push_str("  generations\n");
        for g in table["Generations"].as_array().cloned().unwrap_or_default() {
            s.push_str(&format!(
                "    {:>4}{} items {} index entries {} sort-index pages {} encryptions ~{}\n",
                t(&g["Generation"]),
                if g["Active"] == json!(true) {
                    " (active)"
                } else {
                    "         "
                },
                t(&g["Items"]),
                t(&g["IndexRows"]),
                t(&g["Pages"]),
                t(&g["Encryptions"])
            ));
        }
        if table["UnknownGenerationRows"].as_u64().unwrap_or(0) > 0 {
            s.push_str(&format!(
                "  rows of unknown generations: {}\n",
                t(&table["UnknownGenerationRows"])
            ));
        }
        match &table["Reencrypt"] {
            Value::Null => s.push_str("  re-encryption      never run\n"),
            r => {
                let p = parse_progress(r);
                let state = if p.running {
                    "running"
                } else if p.finished.is_some() {
                    "finished"
                } else {
                    "interrupted"
                };
                s.push_str(&format!(
                    "  re-encryption      {state} (target generation {}): {}\n",
                    p.target_generation,
                    progress_line(&p)
                ));
            }
        }
    }
    let m = &v["KeyMemory"];
    if m["AllLocked"] == json!(true) {
        s.push_str(&format!(
            "key memory: locked in RAM ({} pages)\n",
            t(&m["LockedPages"])
        ));
    } else {
        s.push_str(&format!(
            "key memory: NOT fully locked in RAM ({} pages could not be locked; RLIMIT_MEMLOCK {} bytes): raise `ulimit -l`\n",
            t(&m["LockFailures"]),
            t(&m["MemlockLimitBytes"])
        ));
    }
    s
}

async fn remote(
    endpoint: &str,
    target: &KeysTarget,
    op: KeysOp,
    input: &KeysInput,
) -> Result<Value, String> {
    let mut body = json!({});
    if let Some(v) = &input.table_name {
        body["TableName"] = json!(v);
    }
    if let Some(v) = input.generation {
        body["Generation"] = json!(v);
    }
    if let Some(v) = input.progress_only {
        body["ProgressOnly"] = json!(v);
    }
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    crate::cli_remote::admin_call(
        endpoint,
        target.profile.as_deref(),
        target.region.as_deref(),
        op.name(),
        &body,
    )
    .await
}
