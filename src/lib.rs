//! sealdb: a DynamoDB-compatible server where every request is authenticated (SigV4),
//! authorized (IAM) and every item is sealed at rest under per-table keys wrapped by a KMS.
//!
//! Modules, in the order a request meets them:
#![forbid(unsafe_code)]

pub mod app; //         start-up assembly
pub mod audit; //       JSON-lines audit log
pub mod auth; //        SigV4 verification; access key -> principal
pub mod catalog; //     tables and principals, sealed in the meta space, cached in memory
pub mod config; //      settings: TOML file + SEALDB_* environment overrides
pub mod crypto; //      AEAD envelope, HMAC tokens, table key ring
pub mod error; //       the one wire error type and its mapping to __type + HTTP status
pub mod expr; //        DynamoDB expressions: parse once -> AST -> evaluate
pub mod http; //        accept connections, size caps, TLS; pipeline.rs is the whole request path
pub mod iam; //         policy documents -> compiled policies -> decisions
pub mod indexes; //     GSI/LSI definitions, CreateTable validation, entry maintenance
pub mod items; //       the only place where an item becomes sealed bytes and back
pub mod keyjob; //      key lifecycle: KMS key switch, data-key rotation, re-encryption job
pub mod kms; //         KMS trait + local provider
pub mod loadgen; //     `sealdb bench`
pub mod ops; //         one file per operation family: validate -> plan -> run
pub mod protocol; //    X-Amz-Target -> Operation; typed inputs/outputs; AttributeValue
pub mod storage; //     Store trait; RocksDB implementation; key layout
pub mod util; //        file and time helpers
