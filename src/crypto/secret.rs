//! Key material newtypes: zeroized on drop, never printed.

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;

/// A 256-bit secret key (table key, token key, data key, system key).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key32([u8; 32]);

impl Key32 {
    pub const LEN: usize = 32;

    pub fn random() -> Result<Key32, CryptoError> {
        let mut k = Key32([0u8; 32]);
        SystemRandom::new()
            .fill(&mut k.0)
            .map_err(|_| CryptoError::Rng)?;
        Ok(k)
    }

    /// Copies from a slice of exactly 32 bytes (the caller zeroizes its own buffer).
    pub fn from_slice(bytes: &[u8]) -> Result<Key32, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Integrity)?;
        Ok(Key32(arr))
    }

    /// The raw bytes, for handing to a primitive. Keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32([redacted])")
    }
}

/// Fills a buffer with random bytes from the OS generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CryptoError::Rng)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let k = Key32::from_slice(&[0xAB; 32]).unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains("ab") && !s.contains("AB") && !s.contains("171"));
        assert!(s.contains("redacted"));
    }

    #[test]
    fn random_keys_differ_and_wrong_length_is_rejected() {
        assert_ne!(
            Key32::random().unwrap().expose(),
            Key32::random().unwrap().expose()
        );
        assert!(Key32::from_slice(&[1; 31]).is_err());
    }
}
