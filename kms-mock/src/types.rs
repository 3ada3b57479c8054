//! Public request/response types. Serialized field names are AWS KMS's (JSON protocol), so the
//! server can return them unchanged. Dates are epoch seconds (fractional), as the protocol sends them.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Encryption context: sorted, so its canonical form is stable.
pub type EncryptionContext = std::collections::BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RotationType {
    Automatic,
    OnDemand,
}

/// CreateKey input. Only symmetric encryption keys with KMS-generated material are supported;
/// other specs are refused with UnsupportedOperationException.
#[derive(Debug, Clone, Default)]
pub struct CreateKeyRequest {
    pub description: Option<String>,
    /// `ENCRYPT_DECRYPT` (default) only.
    pub key_usage: Option<String>,
    /// `SYMMETRIC_DEFAULT` (default) only; also accepted under the legacy name CustomerMasterKeySpec.
    pub key_spec: Option<String>,
    /// `AWS_KMS` (default) only.
    pub origin: Option<String>,
    pub multi_region: Option<bool>,
}

/// A data key: the plaintext (zeroized on drop) and the same key encrypted under the KMS key.
pub struct DataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
    pub key_material_id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"[redacted]")
            .field("ciphertext_blob_len", &self.ciphertext_blob.len())
            .field("key_arn", &self.key_arn)
            .finish()
    }
}

/// Result of a decryption (Decrypt, and the source half of ReEncrypt).
pub struct Decrypted {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_arn: String,
    pub key_material_id: String,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext", &"[redacted]")
            .field("key_arn", &self.key_arn)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Encrypted {
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
    pub key_material_id: String,
}

#[derive(Debug, Clone)]
pub struct ReEncrypted {
    pub ciphertext_blob: Vec<u8>,
    pub source_key_arn: String,
    pub key_arn: String,
    pub source_key_material_id: String,
    pub destination_key_material_id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: f64,
    pub enabled: bool,
    pub description: String,
    pub key_usage: String,
    pub key_state: KeyState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion_window_in_days: Option<u32>,
    pub origin: String,
    pub key_manager: String,
    pub customer_master_key_spec: String,
    pub key_spec: String,
    pub encryption_algorithms: Vec<String>,
    pub multi_region: bool,
    pub current_key_material_id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasEntry {
    pub alias_name: String,
    pub alias_arn: String,
    pub target_key_id: String,
    pub creation_date: f64,
    pub last_updated_date: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEntry {
    pub key_id: String,
    pub key_material_id: String,
    /// `CURRENT` or `NON_CURRENT`.
    pub key_material_state: String,
    /// Absent for the original material, as in AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<RotationType>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationStatus {
    pub key_rotation_enabled: bool,
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_rotation_start_date: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeletionScheduled {
    pub key_id: String,
    pub deletion_date: f64,
    pub key_state: KeyState,
    pub pending_window_in_days: u32,
}

/// One page of a List* operation. `next_marker` is set when more items follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// Which material ListKeyRotations reports (AWS `IncludeKeyMaterial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeKeyMaterial {
    #[default]
    RotationsOnly,
    All,
}
