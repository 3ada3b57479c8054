//! The in-process KMS: the kms-mock library's key store, persisted in the data dir.
//! One KMS implementation with two front ends (this one and the kms-mock server).

use std::path::Path;

use kms_mock::KeyStore;

use super::{BoxFuture, EncryptionContext, GeneratedKey, KeyInfo, KeyState, KmsError, KmsProvider};
use crate::crypto::Key32;

/// Alias of the key created at first start and used for tables that name no key.
pub const DEFAULT_ALIAS: &str = "alias/sealdb-default";
const DATA_KEY_BYTES: usize = 32;

pub struct LocalKms {
    store: KeyStore,
}

fn map_err(e: kms_mock::KmsError) -> KmsError {
    let msg = e.to_string();
    match e.aws_type() {
        "NotFoundException" => KmsError::NotFound(msg),
        "DisabledException" => KmsError::Disabled(msg),
        "KMSInvalidStateException" => KmsError::InvalidState(msg),
        "InvalidCiphertextException" | "IncorrectKeyException" => KmsError::InvalidCiphertext(msg),
        "ThrottlingException" | "KMSInternalException" | "DependencyTimeoutException" => {
            KmsError::Unavailable(msg)
        }
        _ => KmsError::Other(msg),
    }
}

impl LocalKms {
    /// Opens (or creates) `DIR/kms/keys.json` with its master key `DIR/kms/master.key`, and makes
    /// sure the default key exists.
    pub fn open(data_dir: &Path, account: &str, region: &str) -> Result<LocalKms, KmsError> {
        let dir = data_dir.join("kms");
        crate::util::create_private_dir(&dir).map_err(|e| KmsError::Other(e.to_string()))?;
        let store = KeyStore::open(
            &dir.join("keys.json"),
            &dir.join("master.key"),
            account,
            region,
        )
        .map_err(map_err)?;
        let kms = LocalKms { store };
        kms.ensure_default_key()?;
        Ok(kms)
    }

    pub fn in_memory(account: &str, region: &str) -> Result<LocalKms, KmsError> {
        let kms = LocalKms {
            store: KeyStore::in_memory(account, region),
        };
        kms.ensure_default_key()?;
        Ok(kms)
    }

    pub fn key_store(&self) -> &KeyStore {
        &self.store
    }

    fn ensure_default_key(&self) -> Result<(), KmsError> {
        match self.store.describe_key(DEFAULT_ALIAS) {
            Ok(_) => Ok(()),
            Err(e) if e.aws_type() == "NotFoundException" => {
                let meta = self
                    .store
                    .create_key(kms_mock::CreateKeyRequest {
                        description: Some("sealdb default table key".to_string()),
                        ..Default::default()
                    })
                    .map_err(map_err)?;
                self.store
                    .create_alias(DEFAULT_ALIAS, &meta.key_id)
                    .map_err(map_err)?;
                Ok(())
            }
            Err(e) => Err(map_err(e)),
        }
    }
}

fn state_of(meta: &kms_mock::KeyMetadata) -> KeyState {
    match meta.key_state.as_str() {
        "Enabled" => KeyState::Enabled,
        "Disabled" => KeyState::Disabled,
        "PendingDeletion" => KeyState::PendingDeletion,
        _ => KeyState::Unavailable,
    }
}

impl KmsProvider for LocalKms {
    fn name(&self) -> &'static str {
        "local"
    }

    fn describe_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<KeyInfo, KmsError>> {
        Box::pin(async move {
            let meta = self.store.describe_key(key_id).map_err(map_err)?;
            Ok(KeyInfo {
                arn: meta.arn.clone(),
                state: state_of(&meta),
            })
        })
    }

    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<GeneratedKey, KmsError>> {
        Box::pin(async move {
            let dk = self
                .store
                .generate_data_key(key_id, context, DATA_KEY_BYTES)
                .map_err(map_err)?;
            let plaintext =
                Key32::from_slice(&dk.plaintext).map_err(|e| KmsError::Other(e.to_string()))?;
            Ok(GeneratedKey {
                plaintext,
                blob: dk.ciphertext_blob,
                key_arn: dk.key_arn,
            })
        })
    }

    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<Key32, KmsError>> {
        Box::pin(async move {
            let (plain, _arn) = self
                .store
                .decrypt(blob, context, Some(key_id))
                .map_err(map_err)?;
            Key32::from_slice(&plain)
                .map_err(|_| KmsError::InvalidCiphertext("wrong key length".into()))
        })
    }
}
