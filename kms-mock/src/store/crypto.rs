//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
//! GenerateRandom. All need an Enabled key (DisabledException / KMSInvalidStateException).

use zeroize::Zeroizing;

use super::state::State;
use super::{KeyStore, Naming};
use crate::blob::{self, BlobHeader};
use crate::error::KmsError;
use crate::material::{format_uuid, parse_uuid, random_bytes};
use crate::types::{DataKey, Decrypted, Encrypted, EncryptionContext, ReEncrypted};

/// KMS PlaintextType: 1..4096 bytes (service model).
const MAX_PLAINTEXT_LEN: usize = 4096;
/// KMS CiphertextType: 1..6144 bytes (service model).
const MAX_CIPHERTEXT_LEN: usize = 6144;
/// GenerateDataKey / GenerateRandom NumberOfBytes: 1..1024 (service model).
const MAX_NUMBER_OF_BYTES: usize = 1024;

fn check_number_of_bytes(n: usize) -> Result<(), KmsError> {
    if n == 0 || n > MAX_NUMBER_OF_BYTES {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and {MAX_NUMBER_OF_BYTES}"
        )));
    }
    Ok(())
}

impl KeyStore {
    fn encrypt_in(
        &self,
        state: &State,
        key_ref: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Encrypted, KmsError> {
        let id = self.resolve(state, key_ref, Naming::WithAlias)?;
        let key = self.key(state, &id)?;
        self.require_enabled(key)?;
        let (material_version, current) = key.current()?;
        let header = BlobHeader {
            key_id: parse_uuid(&id)
                .ok_or_else(|| KmsError::Internal("stored key id is not a UUID".into()))?,
            material_version,
        };
        let aad = blob::aad(&header, context)?;
        let mut out = header.encode().to_vec();
        out.extend_from_slice(&current.material.seal(&self.rng, &aad, plaintext)?);
        Ok(Encrypted {
            ciphertext_blob: out,
            key_arn: self.key_arn(&id),
            key_material_id: current.id.clone(),
        })
    }

    fn decrypt_in(
        &self,
        state: &State,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_ref: Option<&str>,
    ) -> Result<Decrypted, KmsError> {
        if ciphertext_blob.is_empty() || ciphertext_blob.len() > MAX_CIPHERTEXT_LEN {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and {MAX_CIPHERTEXT_LEN}"
            )));
        }
        let (header, sealed) = blob::parse(ciphertext_blob)?;
        let blob_key = format_uuid(&header.key_id);
        if let Some(r) = key_ref {
            let wanted = self.resolve(state, r, Naming::WithAlias)?;
            if wanted != blob_key {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
        }
        // A blob naming a key this store does not hold (never had, or deleted) cannot be
        // told apart from a corrupt blob: InvalidCiphertextException, as for any bad blob.
        let key = state.keys.get(&blob_key).ok_or_else(blob::invalid)?;
        self.require_enabled(key)?;
        let material = usize::try_from(header.material_version)
            .ok()
            .and_then(|v| key.materials.get(v))
            .ok_or_else(blob::invalid)?;
        let aad = blob::aad(&header, context)?;
        let plaintext = material
            .material
            .open(&aad, sealed)?
            .ok_or_else(blob::invalid)?;
        Ok(Decrypted {
            plaintext,
            key_arn: self.key_arn(&blob_key),
            key_material_id: material.id.clone(),
        })
    }

    /// Encrypt: returns (ciphertext blob, key ARN).
    pub fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let e = self.encrypt_detailed(key_id, plaintext, context)?;
        Ok((e.ciphertext_blob, e.key_arn))
    }

    pub fn encrypt_detailed(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Encrypted, KmsError> {
        if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and {MAX_PLAINTEXT_LEN}"
            )));
        }
        self.read("Encrypt", |state, _| {
            self.encrypt_in(state, key_id, plaintext, context)
        })
    }

    /// Decrypt: the blob names its key; `key_id`, when given, must name the same key
    /// (IncorrectKeyException otherwise). Returns (plaintext, key ARN).
    pub fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
    ) -> Result<(Zeroizing<Vec<u8>>, String), KmsError> {
        let d = self.decrypt_detailed(ciphertext_blob, context, key_id)?;
        Ok((d.plaintext, d.key_arn))
    }

    pub fn decrypt_detailed(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        key_id: Option<&str>,
    ) -> Result<Decrypted, KmsError> {
        self.read("Decrypt", |state, _| {
            self.decrypt_in(state, ciphertext_blob, context, key_id)
        })
    }

    /// ReEncrypt: decrypts under the blob's key and encrypts under `destination_key_id`,
    /// without the plaintext leaving the store.
    pub fn re_encrypt(
        &self,
        ciphertext_blob: &[u8],
        source_context: &EncryptionContext,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        destination_context: &EncryptionContext,
    ) -> Result<ReEncrypted, KmsError> {
        self.read("ReEncrypt", |state, _| {
            let src = self.decrypt_in(state, ciphertext_blob, source_context, source_key_id)?;
            let dst = self.encrypt_in(
                state,
                destination_key_id,
                &src.plaintext,
                destination_context,
            )?;
            Ok(ReEncrypted {
                ciphertext_blob: dst.ciphertext_blob,
                source_key_arn: src.key_arn,
                key_arn: dst.key_arn,
                source_key_material_id: src.key_material_id,
                destination_key_material_id: dst.key_material_id,
            })
        })
    }

    /// GenerateDataKey: `num_bytes` (1..1024) random bytes, in plaintext and encrypted.
    pub fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        num_bytes: usize,
    ) -> Result<DataKey, KmsError> {
        check_number_of_bytes(num_bytes)?;
        self.read("GenerateDataKey", |state, _| {
            let plaintext = random_bytes(&self.rng, num_bytes)?;
            let e = self.encrypt_in(state, key_id, &plaintext, context)?;
            Ok(DataKey {
                plaintext,
                ciphertext_blob: e.ciphertext_blob,
                key_arn: e.key_arn,
                key_material_id: e.key_material_id,
            })
        })
    }

    /// GenerateDataKeyWithoutPlaintext: returns (ciphertext blob, key ARN).
    pub fn generate_data_key_without_plaintext(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        num_bytes: usize,
    ) -> Result<Encrypted, KmsError> {
        check_number_of_bytes(num_bytes)?;
        self.read("GenerateDataKeyWithoutPlaintext", |state, _| {
            let plaintext = random_bytes(&self.rng, num_bytes)?;
            self.encrypt_in(state, key_id, &plaintext, context)
        })
    }

    /// GenerateRandom: 1..1024 bytes from the system CSPRNG.
    pub fn generate_random(&self, num_bytes: usize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        check_number_of_bytes(num_bytes)?;
        self.read("GenerateRandom", |_, _| random_bytes(&self.rng, num_bytes))
    }
}
