//! Key material newtypes: zeroized on drop, never printed.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;

/// A 256-bit secret key (table key, token key, data key, system key).
///
/// The bytes live on the heap at a stable address whose page is locked in RAM (mlock) while
/// any key is on it, where RLIMIT_MEMLOCK allows; see [`mlock_status`].
pub struct Key32 {
    bytes: Box<[u8; 32]>,
    /// Pages this key holds a lock reference on (a 32-byte key spans at most two).
    pages: [Option<usize>; 2],
}

impl Key32 {
    pub const LEN: usize = 32;

    fn new(bytes: Box<[u8; 32]>) -> Key32 {
        let mut k = Key32 {
            bytes,
            pages: [None, None],
        };
        k.pages = page_locks().acquire(k.bytes.as_ptr() as usize, Key32::LEN);
        k
    }

    pub fn random() -> Result<Key32, CryptoError> {
        let mut bytes = Box::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut bytes[..])
            .map_err(|_| CryptoError::Rng)?;
        Ok(Key32::new(bytes))
    }

    /// Copies from a slice of exactly 32 bytes (the caller zeroizes its own buffer).
    pub fn from_slice(bytes: &[u8]) -> Result<Key32, CryptoError> {
        if bytes.len() != Key32::LEN {
            return Err(CryptoError::Integrity);
        }
        let mut b = Box::new([0u8; 32]);
        b.copy_from_slice(bytes);
        Ok(Key32::new(b))
    }

    /// The raw bytes, for handing to a primitive. Keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl Clone for Key32 {
    fn clone(&self) -> Key32 {
        Key32::new(Box::new(*self.bytes))
    }
}

impl Zeroize for Key32 {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
    }
}

impl Drop for Key32 {
    fn drop(&mut self) {
        self.bytes.zeroize();
        page_locks().release(&self.pages);
    }
}

impl ZeroizeOnDrop for Key32 {}

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32([redacted])")
    }
}

/// Whether key pages are locked in RAM, for `sealdb keys status` and the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MlockStatus {
    /// Pages currently locked because they hold keys.
    pub locked_pages: usize,
    /// Pages that could not be locked (RLIMIT_MEMLOCK too low, or no permission).
    pub failures: u64,
    /// RLIMIT_MEMLOCK soft limit in bytes (`None`: unlimited or unknown).
    pub limit_bytes: Option<u64>,
}

impl MlockStatus {
    pub fn all_locked(&self) -> bool {
        self.failures == 0
    }
}

pub fn mlock_status() -> MlockStatus {
    let (locked_pages, failures) = page_locks()
        .inner
        .lock()
        .map(|g| (g.pages.len(), g.failures))
        .unwrap_or((0, 0));
    MlockStatus {
        locked_pages,
        failures,
        limit_bytes: memlock_limit(),
    }
}

fn memlock_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::MEMLOCK)
        .ok()
        .map(|(soft, _)| soft)
        .filter(|l| *l != rlimit::INFINITY)
}

/// mlock is per page and not counted: unlocking one key's page would unlock every other key on
/// it. So pages are reference counted here and unlocked when their last key drops.
struct PageLocks {
    inner: Mutex<PageLocksInner>,
}

#[derive(Default)]
struct PageLocksInner {
    pages: HashMap<usize, (usize, region::LockGuard)>,
    failures: u64,
    warned: bool,
}

fn page_locks() -> &'static PageLocks {
    static LOCKS: OnceLock<PageLocks> = OnceLock::new();
    LOCKS.get_or_init(|| PageLocks {
        inner: Mutex::new(PageLocksInner::default()),
    })
}

impl PageLocks {
    fn acquire(&self, addr: usize, len: usize) -> [Option<usize>; 2] {
        let size = region::page::size().max(1);
        let first = addr - addr % size;
        let last_byte = addr.saturating_add(len.saturating_sub(1));
        let last = last_byte - last_byte % size;
        let mut out = [None, None];
        let Ok(mut g) = self.inner.lock() else {
            return out;
        };
        for (slot, page) in out
            .iter_mut()
            .zip([Some(first), (last != first).then_some(last)])
        {
            let Some(page) = page else { continue };
            if let Some((count, _)) = g.pages.get_mut(&page) {
                *count += 1;
                *slot = Some(page);
                continue;
            }
            match region::lock(page as *const u8, 1) {
                Ok(guard) => {
                    g.pages.insert(page, (1, guard));
                    *slot = Some(page);
                }
                Err(e) => {
                    g.failures = g.failures.saturating_add(1);
                    if !g.warned {
                        g.warned = true;
                        tracing::warn!(
                            error = %e,
                            memlock_limit_bytes = ?memlock_limit(),
                            "cannot lock key pages in RAM (RLIMIT_MEMLOCK); keys may be swapped out"
                        );
                    }
                }
            }
        }
        out
    }

    fn release(&self, pages: &[Option<usize>; 2]) {
        let Ok(mut g) = self.inner.lock() else { return };
        for page in pages.iter().flatten() {
            let last = match g.pages.get_mut(page) {
                Some((count, _)) => {
                    *count = count.saturating_sub(1);
                    *count == 0
                }
                None => false,
            };
            if last {
                // Dropping the guard munlocks the page.
                g.pages.remove(page);
            }
        }
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

    #[test]
    fn key_pages_are_locked_or_the_failure_is_counted() {
        let before = mlock_status();
        let keys: Vec<Key32> = (0..64).map(|_| Key32::random().unwrap()).collect();
        let during = mlock_status();
        assert!(
            during.locked_pages >= 1 || during.failures > before.failures,
            "{during:?}"
        );
        // A clone is an independent copy with the same bytes.
        let c = keys[0].clone();
        assert_eq!(c.expose(), keys[0].expose());
        drop(keys);
        assert_eq!(c.expose().len(), 32);
    }
}
