//! JSON-lines audit log: one line per authorization decision, per KMS call and per key
//! lifecycle event. Lines are handed to a writer thread over a channel, so the request path
//! never waits on the file or takes a shared lock. Never a key, never an attribute value.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// How often the writer thread drains the queue. Senders never wake it (a wake-up per line
/// cost ~15% of a GetItem in profiles); lines wait at most this long before reaching the file.
const DRAIN_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Audit {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<Arc<Writer>>,
}

struct Writer {
    stop: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Audit {
    /// Appends to `path` (created 0600).
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        let file = crate::util::open_private_append(path)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let writer = Arc::new(Writer {
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let w = writer.clone();
        let handle = std::thread::Builder::new()
            .name("sealdb-audit".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                loop {
                    std::thread::park_timeout(DRAIN_INTERVAL);
                    let stopping = w.stop.load(Ordering::Acquire);
                    let mut disconnected = false;
                    loop {
                        match rx.try_recv() {
                            Ok(line) => {
                                let _ = out.write_all(&line);
                            }
                            Err(mpsc::TryRecvError::Empty) => break,
                            Err(mpsc::TryRecvError::Disconnected) => {
                                disconnected = true;
                                break;
                            }
                        }
                    }
                    let _ = out.flush();
                    if stopping || disconnected {
                        return;
                    }
                }
            })?;
        if let Ok(mut t) = writer.thread.lock() {
            *t = Some(handle);
        }
        Ok(Audit {
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// Writes out everything recorded so far and stops the writer (graceful shutdown).
    pub fn close(&self) {
        let Some(w) = &self.writer else { return };
        w.stop.store(true, Ordering::Release);
        let handle = w.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            h.thread().unpark();
            let _ = h.join();
        }
    }

    /// An audit sink that drops everything (unit tests, CLI tools).
    pub fn disabled() -> Audit {
        Audit {
            tx: None,
            writer: None,
        }
    }

    pub fn record(&self, kind: &str, mut fields: Value) {
        let Some(tx) = &self.tx else { return };
        if let Value::Object(m) = &mut fields {
            m.insert("ts".into(), Value::String(crate::util::now_rfc3339()));
            m.insert("kind".into(), Value::String(kind.to_string()));
        }
        if let Ok(mut line) = serde_json::to_vec(&fields) {
            line.push(b'\n');
            let _ = tx.send(line);
        }
    }

    pub fn decision(
        &self,
        request_id: &str,
        principal: &str,
        action: &str,
        resource: &str,
        decision: &str,
    ) {
        self.record(
            "authz",
            json!({"request_id": request_id, "principal": principal, "action": action,
                   "resource": resource, "decision": decision}),
        );
    }
}
