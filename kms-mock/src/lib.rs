//! kms-mock: a KMS-compatible key service.
//!
//! One implementation, two front ends: sealdb's in-process local KMS provider uses
//! [`KeyStore`] directly; the `kms-mock` binary serves the same store over the AWS KMS JSON
//! protocol (`X-Amz-Target: TrentService.<Op>`) for `aws kms --endpoint-url` and `aws-sdk-kms`.
#![forbid(unsafe_code)]

pub mod blob;
pub mod error;
pub mod fault;
pub mod material;
pub mod persist;
pub mod server;
mod store;
pub mod types;

pub use error::KmsError;
pub use fault::{FaultAction, FaultRule};
pub use store::{KeyStore, SeedFile, SeedKey};
pub use types::{
    AliasEntry, CreateKeyRequest, DataKey, Decrypted, DeletionScheduled, Encrypted,
    EncryptionContext, IncludeKeyMaterial, KeyListEntry, KeyMetadata, KeyState, Page, ReEncrypted,
    RotationEntry, RotationStatus, RotationType,
};
