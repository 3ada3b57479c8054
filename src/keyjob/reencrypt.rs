//! The re-encryption job: re-seals every row of a table's keyspace (items, secondary-index
//! entries, sort-index pages) that uses an older data-key generation under the active one.
//!
//! - Safe against concurrent writes: a re-sealed row is written only if it still holds exactly
//!   the bytes that were read (a store check); a row a writer replaced meanwhile already uses
//!   the active generation and is counted as `changed`.
//! - Throttled to a configured number of rows per second.
//! - Resumable: the cursor (last storage key done, per space) and the counters are persisted
//!   about once a second in the table's sealed catalog record; after a crash the job restarts
//!   at the cursor. Rows done after the last checkpoint are simply skipped the second time
//!   (their header already names the active generation), so counters are approximate there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{count_generations, registry, successor, KeyJobError, KeysConfig, SCAN_BATCH};
use crate::catalog::tables::TableEntry;
use crate::catalog::CatalogError;
use crate::crypto::keyring::{Keyspace, ReencryptRecord, TableKeys};
use crate::items::{reseal_row, row_generation};
use crate::ops::Services;
use crate::storage::{Check, CommitError, Space, Store, StoreError, Write};

/// How often the cursor is persisted (a crash repeats at most this much scanning).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Wait before retrying when the table's keys are unavailable (KMS outage or revocation).
const KEYS_RETRY: Duration = Duration::from_secs(2);
const SPACES: [Space; 2] = [Space::Items, Space::SortIndex];

/// Progress of a table's re-encryption job, as `sealdb keys status` shows it.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Progress {
    pub running: bool,
    pub target_generation: u32,
    pub scanned: u64,
    pub resealed: u64,
    /// Rows a concurrent write replaced before the job could (they use the active generation).
    pub changed: u64,
    pub failed: u64,
    /// Rows still using an older generation (estimate while running).
    pub remaining: u64,
    pub rows_per_second: f64,
    pub started: f64,
    pub finished: Option<f64>,
    /// Why the job is waiting (for example, the table's KMS key is unavailable).
    pub waiting: Option<String>,
    /// Whether this run resumed a job interrupted earlier.
    pub resumed: bool,
}

#[derive(Default)]
pub(crate) struct JobHandle {
    running: AtomicBool,
    live: Mutex<Progress>,
    /// The background task running the job, so that stopping the server stops it.
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl JobHandle {
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    pub(crate) fn set_running(&self, r: bool) {
        self.running.store(r, Ordering::SeqCst);
    }

    fn set_task(&self, task: tokio::task::AbortHandle) {
        if let Ok(mut t) = self.task.lock() {
            *t = Some(task);
        }
    }

    /// Cancels the background task (at its next await, like a crash between two batches: the
    /// persisted cursor stays, so the job resumes at the next start).
    fn stop(&self) {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task.filter(|t| !t.is_finished()) {
            task.abort();
            self.set_running(false);
            self.update(|p| {
                p.running = false;
                p.waiting = Some("stopped with the server; resumes when it starts".into());
            });
        }
    }

    fn progress(&self) -> Progress {
        self.live.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        if let Ok(mut p) = self.live.lock() {
            f(&mut p);
        }
    }
}

/// The job's progress: live when it ran in this process, else as last persisted.
pub(crate) fn progress_of(e: &TableEntry) -> Option<Progress> {
    if let Some(h) = registry().get(&e.def.keyspace) {
        return Some(h.progress());
    }
    e.def.keys.reencrypt.as_ref().map(|r| Progress {
        running: false,
        target_generation: r.target_generation,
        scanned: r.scanned,
        resealed: r.resealed,
        changed: r.changed,
        failed: r.failed,
        remaining: 0,
        rows_per_second: 0.0,
        started: r.started,
        finished: r.finished,
        waiting: r
            .finished
            .is_none()
            .then(|| "interrupted; resumes when the server starts".to_string()),
        resumed: false,
    })
}

/// The table's job progress without counting rows (cheap enough to poll).
pub fn progress(svc: &Services, table: &str) -> Option<Progress> {
    svc.catalog.table(table).and_then(|e| progress_of(&e))
}

/// Starts (or joins) the table's job in the background; returns its progress so far.
pub async fn start_reencrypt(
    svc: &Arc<Services>,
    table: &str,
    config: KeysConfig,
) -> Result<Progress, KeyJobError> {
    let (handle, record, created) = prepare(svc, table, true).await?;
    if created {
        let task = tokio::spawn(run_logged(
            svc.clone(),
            table.to_string(),
            handle.clone(),
            record,
            config,
        ));
        handle.set_task(task.abort_handle());
    }
    Ok(handle.progress())
}

/// Resumes an interrupted job (server start).
pub(crate) async fn resume(
    svc: &Arc<Services>,
    table: &str,
    config: KeysConfig,
) -> Result<(), KeyJobError> {
    let (handle, record, created) = prepare(svc, table, false).await?;
    if created {
        let task = tokio::spawn(run_logged(
            svc.clone(),
            table.to_string(),
            handle.clone(),
            record,
            config,
        ));
        handle.set_task(task.abort_handle());
    }
    Ok(())
}

/// Stops the background jobs of every table of `svc` (server shutdown). Each job's task holds
/// the services, so a job left running would keep the store open after the server stopped.
pub fn stop_jobs(svc: &Services) {
    for e in svc.catalog.tables() {
        if let Some(h) = registry().get(&e.def.keyspace) {
            h.stop();
        }
    }
}

/// Runs the table's job to the end in the caller's task (offline CLI); returns the final
/// progress. Watch it meanwhile with `status`.
pub async fn run_reencrypt(
    svc: &Arc<Services>,
    table: &str,
    config: KeysConfig,
) -> Result<Progress, KeyJobError> {
    let (handle, record, created) = prepare(svc, table, true).await?;
    if !created {
        return Err(KeyJobError::Invalid(format!(
            "a re-encryption job is already running on table {table}"
        )));
    }
    run_job(
        svc.clone(),
        table.to_string(),
        handle.clone(),
        record,
        config,
    )
    .await?;
    Ok(handle.progress())
}

/// Claims the table's job slot and decides where it starts: an unfinished persisted job for the
/// active generation continues at its cursor; otherwise (when `fresh` allows) a new job starts.
async fn prepare(
    svc: &Services,
    table: &str,
    fresh: bool,
) -> Result<(Arc<JobHandle>, ReencryptRecord, bool), KeyJobError> {
    let e = svc
        .catalog
        .table(table)
        .ok_or_else(|| KeyJobError::TableNotFound(table.to_string()))?;
    let ks = e.def.keyspace;
    let (handle, created) = registry()
        .claim(&ks)
        .ok_or_else(|| KeyJobError::Task("job registry poisoned".into()))?;
    if !created {
        return Ok((handle, ReencryptRecord::default(), false));
    }
    let active = e.def.keys.active_generation;
    let previous = e.def.keys.reencrypt.clone();
    let (record, resumed) = match previous {
        Some(r) if r.finished.is_none() && (r.target_generation == active || !fresh) => (r, true),
        _ if !fresh => {
            handle.set_running(false);
            return Ok((handle, ReencryptRecord::default(), false));
        }
        _ => (
            ReencryptRecord {
                target_generation: active,
                started: crate::util::epoch_seconds_f64(),
                ..Default::default()
            },
            false,
        ),
    };
    if let Err(err) = checkpoint(svc, table, &ks, &record).await {
        handle.set_running(false);
        return Err(err);
    }
    handle.update(|p| {
        *p = Progress {
            running: true,
            target_generation: record.target_generation,
            scanned: record.scanned,
            resealed: record.resealed,
            changed: record.changed,
            failed: record.failed,
            started: record.started,
            resumed,
            ..Default::default()
        }
    });
    Ok((handle, record, true))
}

async fn checkpoint(
    svc: &Services,
    table: &str,
    ks: &Keyspace,
    record: &ReencryptRecord,
) -> Result<(), KeyJobError> {
    svc.catalog
        .update_table(table, |def| {
            if def.keyspace != *ks {
                return Err(CatalogError::TableNotFound(table.to_string()));
            }
            def.keys.reencrypt = Some(record.clone());
            Ok::<(), CatalogError>(())
        })
        .await?;
    Ok(())
}

async fn run_logged(
    svc: Arc<Services>,
    table: String,
    handle: Arc<JobHandle>,
    record: ReencryptRecord,
    config: KeysConfig,
) {
    if let Err(e) = run_job(svc, table.clone(), handle, record, config).await {
        tracing::warn!(table = %table, error = %e, "re-encryption job stopped");
    }
}

/// What one batch did.
#[derive(Default)]
struct Batch {
    last: Option<Vec<u8>>,
    more: bool,
    scanned: u64,
    resealed: u64,
    changed: u64,
    failed: u64,
}

async fn run_job(
    svc: Arc<Services>,
    table: String,
    handle: Arc<JobHandle>,
    mut record: ReencryptRecord,
    config: KeysConfig,
) -> Result<(), KeyJobError> {
    let result = run_job_inner(&svc, &table, &handle, &mut record, &config).await;
    handle.set_running(false);
    handle.update(|p| p.running = false);
    result
}

async fn run_job_inner(
    svc: &Arc<Services>,
    table: &str,
    handle: &JobHandle,
    record: &mut ReencryptRecord,
    config: &KeysConfig,
) -> Result<(), KeyJobError> {
    let first = svc
        .catalog
        .table(table)
        .ok_or_else(|| KeyJobError::TableNotFound(table.to_string()))?;
    let ks = first.def.keyspace;
    let initial_remaining = remaining_rows(svc, &ks).await?;
    handle.update(|p| p.remaining = initial_remaining);
    let run_start = Instant::now();
    let mut done_this_run: u64 = 0;
    let mut last_checkpoint = Instant::now();
    tracing::info!(
        table,
        target = record.target_generation,
        remaining = initial_remaining,
        "re-encryption job running"
    );
    while (record.space as usize) < SPACES.len() {
        let Some(entry) = svc.catalog.table(table).filter(|e| e.def.keyspace == ks) else {
            return Err(KeyJobError::TableNotFound(table.to_string()));
        };
        let keys = match svc.table_keys(&entry).await {
            Ok(k) => {
                handle.update(|p| p.waiting = None);
                k
            }
            Err(e) => {
                handle.update(|p| p.waiting = Some(format!("table keys unavailable: {e}")));
                tokio::time::sleep(KEYS_RETRY).await;
                continue;
            }
        };
        let space = SPACES[record.space as usize];
        let cursor = (!record.cursor.is_empty()).then(|| record.cursor.clone());
        let store = svc.store.clone();
        let batch = tokio::task::spawn_blocking(move || {
            reseal_batch(store.as_ref(), &keys, space, &ks, cursor.as_deref())
        })
        .await
        .map_err(|e| KeyJobError::Task(e.to_string()))??;
        record.scanned = record.scanned.saturating_add(batch.scanned);
        record.resealed = record.resealed.saturating_add(batch.resealed);
        record.changed = record.changed.saturating_add(batch.changed);
        record.failed = record.failed.saturating_add(batch.failed);
        done_this_run = done_this_run.saturating_add(batch.resealed + batch.changed + batch.failed);
        if batch.more {
            if let Some(k) = batch.last {
                record.cursor = k;
            }
        } else {
            record.space = record.space.saturating_add(1);
            record.cursor.clear();
        }
        let elapsed = run_start.elapsed().as_secs_f64().max(1e-3);
        handle.update(|p| {
            p.scanned = record.scanned;
            p.resealed = record.resealed;
            p.changed = record.changed;
            p.failed = record.failed;
            p.remaining = initial_remaining.saturating_sub(done_this_run);
            p.rows_per_second = done_this_run as f64 / elapsed;
        });
        if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            checkpoint(svc, table, &ks, record).await?;
            last_checkpoint = Instant::now();
        }
        if config.reencrypt_rows_per_sec > 0 {
            let due = Duration::from_secs_f64(
                done_this_run as f64 / config.reencrypt_rows_per_sec as f64,
            );
            if let Some(wait) = due.checked_sub(run_start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    let remaining = remaining_rows(svc, &ks).await?;
    record.finished = Some(crate::util::epoch_seconds_f64());
    checkpoint(svc, table, &ks, record).await?;
    handle.update(|p| {
        p.remaining = remaining;
        p.finished = record.finished;
    });
    tracing::info!(
        table,
        resealed = record.resealed,
        changed = record.changed,
        failed = record.failed,
        remaining,
        "re-encryption job finished"
    );
    Ok(())
}

/// Rows not on the active generation.
async fn remaining_rows(svc: &Services, ks: &Keyspace) -> Result<u64, KeyJobError> {
    let active = svc
        .catalog
        .tables()
        .into_iter()
        .find(|e| e.def.keyspace == *ks)
        .map(|e| e.def.keys.active_generation)
        .unwrap_or(0);
    let store = svc.store.clone();
    let ks = *ks;
    let counts = tokio::task::spawn_blocking(move || count_generations(store.as_ref(), &ks))
        .await
        .map_err(|e| KeyJobError::Task(e.to_string()))??;
    Ok(counts
        .iter()
        .filter(|(g, _)| **g != active)
        .map(|(_, c)| c.total())
        .sum())
}

/// One page of rows after `cursor`: re-seals the ones on older generations and writes them
/// back in one commit, each conditional on the row being unchanged.
fn reseal_batch(
    store: &dyn Store,
    keys: &TableKeys,
    space: Space,
    ks: &Keyspace,
    cursor: Option<&[u8]>,
) -> Result<Batch, StoreError> {
    let prefix = crate::items::table_prefix(ks);
    let end = crate::catalog::prefix_end(&prefix);
    let start = cursor.map(successor).unwrap_or(prefix);
    let page = store.scan(space, &start, Some(&end), false, SCAN_BATCH)?;
    let mut out = Batch {
        last: page.entries.last().map(|(k, _)| k.clone()),
        more: page.more,
        ..Default::default()
    };
    let active = keys.active_generation();
    let mut pending: Vec<(Check, Write)> = Vec::new();
    for (k, v) in page.entries {
        out.scanned += 1;
        if row_generation(&v) == Some(active) {
            continue;
        }
        match reseal_row(keys, space, &k, &v) {
            Ok(Some(new)) => pending.push((
                Check {
                    space,
                    key: k.clone(),
                    expect: Some(v),
                },
                Write::Put {
                    space,
                    key: k,
                    value: new,
                },
            )),
            Ok(None) => {}
            Err(e) => {
                out.failed += 1;
                tracing::warn!(space = space.name(), error = %e, "cannot re-seal a row");
            }
        }
    }
    // One commit for the batch; a row changed by a writer meanwhile is dropped and the rest
    // committed again.
    while !pending.is_empty() {
        let (checks, writes): (Vec<Check>, Vec<Write>) = pending.iter().cloned().unzip();
        match store.commit(&checks, &writes) {
            Ok(()) => {
                out.resealed += pending.len() as u64;
                break;
            }
            Err(CommitError::Conflict { index }) if index < pending.len() => {
                pending.remove(index);
                out.changed += 1;
            }
            Err(CommitError::Conflict { .. }) => {
                out.changed += pending.len() as u64;
                break;
            }
            Err(CommitError::Store(e)) => return Err(e),
        }
    }
    Ok(out)
}
