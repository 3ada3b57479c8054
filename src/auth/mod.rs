//! Authentication: SigV4 verification and the access key -> principal lookup.
pub mod sigv4;
