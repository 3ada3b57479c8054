//! The commit writer: one thread applies every commit of the store, in arrival order.
//!
//! Why a thread of our own: a commit waits for its WAL fdatasync (~0.7 ms on the development
//! VM). With RocksDB's own write group, each waiting commit parks an OS thread (a blocking-pool
//! thread per request), and the leader wakes every follower: on 2 cores those hand-offs and
//! wake-ups cost more CPU than the write itself (issue 2 profiles: ~19% futex, ~19% write
//! group). Here a request task enqueues its commit and awaits a oneshot; the writer drains the
//! whole queue, checks each commit's preconditions, appends the accepted ones to one
//! `WriteBatch`, writes it with one fdatasync, then answers each. Commits that arrive while an
//! fdatasync runs share the next one; a lone commit does not wait for a timer.
//!
//! Being the only writer, the thread needs no key locks: a commit's checks read the state
//! after every earlier commit, including the earlier ones of the same group, whose writes are
//! not in RocksDB yet and are looked up in the group's overlay first. A group lands whole or
//! not at all (one `WriteBatch`), so a commit accepted on the strength of an earlier one in its
//! group can never be acknowledged without it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rocksdb::{ColumnFamily, WriteBatch, WriteOptions, DB};

use super::row_cache::RowCache;
use super::store_err;
use crate::storage::{Check, CommitError, Space, StoreError, Write};

/// Where a commit's outcome goes: an awaiting task, or a blocked thread.
pub(super) enum Reply {
    Task(tokio::sync::oneshot::Sender<Result<(), CommitError>>),
    Thread(std::sync::mpsc::SyncSender<Result<(), CommitError>>),
}

impl Reply {
    fn send(self, outcome: Result<(), CommitError>) {
        // A caller that stopped waiting (a dropped request) needs no answer.
        match self {
            Reply::Task(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Thread(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// One queued commit.
pub(super) struct Pending {
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
    pub reply: Reply,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// The writer is waiting on the condvar; only then does a submitter pay for a wake-up.
    idle: bool,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    // The queue holds plain data that no panic can leave half-changed.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(
        db: Arc<DB>,
        sync_write: WriteOptions,
        rows: Arc<RowCache>,
    ) -> Result<Writer, StoreError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sealdb-commit".into())
            .spawn(move || run(&db, &s, &sync_write, &rows))
            .map_err(|e| StoreError::Io(format!("starting the commit writer: {e}")))?;
        Ok(Writer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a commit; its outcome goes to `pending.reply`. After [`Writer::stop`] the
    /// commit is answered at once with `StoreError::Closed`.
    pub fn submit(&self, pending: Pending) {
        let mut q = self.shared.lock();
        if q.stop {
            drop(q);
            pending.reply.send(Err(StoreError::Closed.into()));
            return;
        }
        q.pending.push(pending);
        let wake = std::mem::take(&mut q.idle);
        drop(q);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Applies everything queued so far, then ends the thread. Idempotent.
    pub fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("rocksdb: the commit writer thread panicked");
            }
        }
    }
}

/// Closes the queue when the writer ends, however it ends: a commit queued after (or left
/// behind by) a writer that is gone is answered with `StoreError::Closed` instead of waiting
/// forever.
struct CloseOnExit<'a>(&'a Shared);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        let left = {
            let mut q = self.0.lock();
            q.stop = true;
            std::mem::take(&mut q.pending)
        };
        for p in left {
            p.reply.send(Err(StoreError::Closed.into()));
        }
    }
}

fn run(db: &DB, shared: &Shared, sync_write: &WriteOptions, rows: &RowCache) {
    let _close = CloseOnExit(shared);
    let mut group = Vec::new();
    loop {
        {
            let mut q = shared.lock();
            while q.pending.is_empty() {
                if q.stop {
                    return;
                }
                q.idle = true;
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                q.idle = false;
            }
            std::mem::swap(&mut group, &mut q.pending);
        }
        apply(db, sync_write, rows, &mut group);
    }
}

/// Column families by `Space::index`, looked up once per group.
struct Families<'a>([Option<&'a ColumnFamily>; Space::ALL.len()]);

impl<'a> Families<'a> {
    fn of(db: &'a DB) -> Self {
        Families(Space::ALL.map(|s| db.cf_handle(s.name())))
    }

    fn get(&self, space: Space) -> Result<&'a ColumnFamily, StoreError> {
        self.0
            .get(space.index())
            .copied()
            .flatten()
            .ok_or_else(|| StoreError::Io(format!("column family {} missing", space.name())))
    }
}

/// The group's writes so far: the latest value per key (`None`: deleted).
type Overlay<'g> = HashMap<(Space, &'g [u8]), Option<&'g [u8]>>;

/// Decides and writes one group, then answers every commit in it.
fn apply(db: &DB, sync_write: &WriteOptions, rows: &RowCache, group: &mut Vec<Pending>) {
    let cfs = Families::of(db);
    let mut batch = WriteBatch::default();
    let mut overlay: Overlay<'_> = HashMap::new();
    let mut verdicts: Vec<Result<(), CommitError>> = Vec::with_capacity(group.len());
    for p in group.iter() {
        let verdict = check(db, rows, &cfs, &overlay, &p.checks)
            .and_then(|()| stage(&cfs, &mut batch, &mut overlay, &p.writes));
        verdicts.push(verdict);
    }
    // The row cache follows the items space: its keys go pending before the write and take
    // their new values after it, before anyone is answered (see `row_cache.rs`).
    let items = || {
        overlay
            .iter()
            .filter(|((space, _), _)| *space == Space::Items)
            .map(|((_, key), value)| (*key, *value))
    };
    let pending = rows.begin_writes(items().map(|(key, _)| key));
    let landed = if batch.is_empty() {
        Ok(())
    } else {
        db.write_opt(batch, sync_write).map_err(store_err)
    };
    rows.end_writes(pending, items(), landed.is_ok());
    drop(overlay);
    for (p, verdict) in group.drain(..).zip(verdicts) {
        p.reply
            .send(verdict.and_then(|()| landed.clone().map_err(Into::into)));
    }
}

/// A commit's preconditions against the group's overlay, then the database.
fn check(
    db: &DB,
    rows: &RowCache,
    cfs: &Families<'_>,
    overlay: &Overlay<'_>,
    checks: &[Check],
) -> Result<(), CommitError> {
    for (index, c) in checks.iter().enumerate() {
        let holds = match overlay.get(&(c.space, c.key.as_slice())) {
            Some(current) => *current == c.expect.as_deref(),
            // Item rows: the row cache holds RocksDB's current value (this thread is the only
            // writer, and no write is in flight between groups).
            None if c.space == Space::Items => {
                match rows.peek(&c.key, |v| Some(v) == c.expect.as_deref()) {
                    Ok(holds) => holds,
                    Err(ticket) => {
                        let current = db
                            .get_pinned_cf(cfs.get(c.space)?, &c.key)
                            .map_err(store_err)?;
                        rows.fill(&c.key, ticket, current.as_deref());
                        current.as_deref() == c.expect.as_deref()
                    }
                }
            }
            None => {
                let current = db
                    .get_pinned_cf(cfs.get(c.space)?, &c.key)
                    .map_err(store_err)?;
                current.as_deref() == c.expect.as_deref()
            }
        };
        if !holds {
            return Err(CommitError::Conflict { index });
        }
    }
    Ok(())
}

/// Appends an accepted commit's writes to the batch and the overlay, in order (a later write
/// to the same key wins, in both).
fn stage<'g>(
    cfs: &Families<'_>,
    batch: &mut WriteBatch,
    overlay: &mut Overlay<'g>,
    writes: &'g [Write],
) -> Result<(), CommitError> {
    // Resolve every family first, so that a commit is staged whole or not at all.
    for w in writes {
        cfs.get(w.space())?;
    }
    for w in writes {
        let cf = cfs.get(w.space())?;
        match w {
            Write::Put { space, key, value } => {
                batch.put_cf(cf, key, value);
                overlay.insert((*space, key.as_slice()), Some(value.as_slice()));
            }
            Write::Delete { space, key } => {
                batch.delete_cf(cf, key);
                overlay.insert((*space, key.as_slice()), None);
            }
        }
    }
    Ok(())
}
