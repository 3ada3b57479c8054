//! JSON-lines audit log: one line per authorization decision, per KMS call and per key
//! lifecycle event. Lines are handed to a writer thread over a channel, so the request path
//! never waits on the file or takes a shared lock. Never a key, never an attribute value.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use serde_json::{json, Value};

#[derive(Clone)]
pub struct Audit {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

impl Audit {
    /// Appends to `path` (created 0600).
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        let file = crate::util::open_private_append(path)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("sealdb-audit".into())
            .spawn(move || {
                let mut w = std::io::BufWriter::new(file);
                while let Ok(line) = rx.recv() {
                    let _ = w.write_all(&line);
                    // Drain what is queued, then flush once: bursts cost one write.
                    while let Ok(more) = rx.try_recv() {
                        let _ = w.write_all(&more);
                    }
                    let _ = w.flush();
                }
                let _ = w.flush();
            })?;
        Ok(Audit { tx: Some(tx) })
    }

    /// An audit sink that drops everything (unit tests, CLI tools).
    pub fn disabled() -> Audit {
        Audit { tx: None }
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
