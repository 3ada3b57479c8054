//! The sealed state file and its master key file.
//!
//! State file: a small JSON envelope `{"format":"kms-mock-state","version":1,"sealed":B64}` where
//! `sealed = iv | AES-256-GCM(master key, JSON of the whole state) | tag`. The whole state is
//! sealed (not only key material), so the file reveals no key ids, aliases or dates either.
//! Writes are atomic: temp file (0600) in the same directory, fsync, rename, fsync directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::KmsError;
use crate::material::{KeyMaterial, MATERIAL_LEN};
use crate::store::state::State;

const FORMAT: &str = "kms-mock-state";
const VERSION: u32 = 1;
/// Domain separation for the state file's AAD (distinct from ciphertext blobs).
const STATE_AAD: &[u8] = b"kms-mock/state-file/v1\0";
/// Owner read/write only: the file holds sealed key material.
const FILE_MODE: u32 = 0o600;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u32,
    sealed: String,
}

pub struct Persistence {
    path: PathBuf,
    master: KeyMaterial,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("path", &self.path)
            .field("master", &"[redacted]")
            .finish()
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> KmsError {
    KmsError::Storage(format!("{what} {}: {e}", path.display()))
}

/// Reads the 32-byte master key, or creates it (0600, random) when the file is missing.
pub fn load_or_create_master_key(path: &Path, rng: &SystemRandom) -> Result<KeyMaterial, KmsError> {
    match fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            KeyMaterial::from_slice(&bytes).ok_or_else(|| {
                KmsError::Storage(format!(
                    "master key file {} must hold exactly {MATERIAL_LEN} bytes",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyMaterial::random(rng)?;
            write_atomic(path, key.expose())?;
            Ok(key)
        }
        Err(e) => Err(io_err("cannot read master key file", path, e)),
    }
}

impl Persistence {
    pub fn new(path: &Path, master: KeyMaterial) -> Persistence {
        Persistence {
            path: path.to_path_buf(),
            master,
        }
    }

    /// Loads the state; `None` when the file does not exist yet.
    pub fn load(&self) -> Result<Option<State>, KmsError> {
        let raw = match fs::read(&self.path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot read state file", &self.path, e)),
        };
        let bad =
            |why: &str| KmsError::Storage(format!("state file {}: {why}", self.path.display()));
        let env: Envelope =
            serde_json::from_slice(&raw).map_err(|_| bad("not a kms-mock state file"))?;
        if env.format != FORMAT || env.version != VERSION {
            return Err(bad("unsupported format or version"));
        }
        let sealed = B64
            .decode(env.sealed.as_bytes())
            .map_err(|_| bad("bad base64"))?;
        let plain = self.master.open(STATE_AAD, &sealed)?.ok_or_else(|| {
            bad("cannot be opened with this master key (wrong key or tampered file)")
        })?;
        let state: State = serde_json::from_slice(&plain).map_err(|_| bad("corrupt state"))?;
        Ok(Some(state))
    }

    pub fn save(&self, state: &State, rng: &SystemRandom) -> Result<(), KmsError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(state)
                .map_err(|_| KmsError::Internal("cannot serialize state".into()))?,
        );
        let sealed = self.master.seal(rng, STATE_AAD, &plain)?;
        let env = Envelope {
            format: FORMAT.into(),
            version: VERSION,
            sealed: B64.encode(sealed),
        };
        let bytes = serde_json::to_vec(&env)
            .map_err(|_| KmsError::Internal("cannot serialize state".into()))?;
        write_atomic(&self.path, &bytes)
            .map_err(|e| KmsError::Internal(format!("cannot persist state: {e}")))
    }
}

/// temp + fsync + rename + fsync(dir); the file is created 0600 and stays so.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KmsError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| KmsError::Storage(format!("{} is not a file path", path.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|e| io_err("cannot create", &tmp, e))?;
        // mode() only applies on creation; a leftover temp file keeps its old mode otherwise.
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| io_err("cannot chmod", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| io_err("cannot write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("cannot fsync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io_err("cannot rename onto", path, e))?;
        let d = fs::File::open(&dir).map_err(|e| io_err("cannot open directory", &dir, e))?;
        d.sync_all()
            .map_err(|e| io_err("cannot fsync directory", &dir, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Serde for key material inside the (sealed) state: base64, through zeroizing buffers.
pub mod material_b64 {
    use super::*;
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &KeyMaterial, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(B64.encode(m.expose()));
        s.serialize_str(&text)
    }

    struct V;
    impl Visitor<'_> for V {
        type Value = KeyMaterial;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("base64 key material")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<KeyMaterial, E> {
            let bytes = Zeroizing::new(
                B64.decode(v.as_bytes())
                    .map_err(|_| E::custom("bad base64"))?,
            );
            KeyMaterial::from_slice(&bytes).ok_or_else(|| E::custom("bad key material length"))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyMaterial, D::Error> {
        d.deserialize_str(V)
    }
}
