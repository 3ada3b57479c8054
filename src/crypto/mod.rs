//! Sealing: key newtypes, the AEAD envelope, HMAC storage tokens and the table key ring.
pub mod envelope;
pub mod keyring;
pub mod secret;
pub mod tokens;

pub use secret::Key32;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Tag failure, wrong AAD, truncated or malformed sealed bytes: all the same to a caller.
    #[error("integrity check failed")]
    Integrity,
    #[error("sealed with unknown data key generation {0}")]
    UnknownGeneration(u32),
    #[error("the system random number generator failed")]
    Rng,
}
