//! The audit decorator every KMS call goes through: operation, key, encryption context,
//! caller, outcome and latency. Never key bytes (they are not in scope here to log).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{BoxFuture, EncryptionContext, GeneratedKey, KeyInfo, KmsError, KmsProvider};
use crate::audit::Audit;
use crate::crypto::Key32;

pub struct Audited {
    inner: Arc<dyn KmsProvider>,
    audit: Audit,
}

impl Audited {
    pub fn new(inner: Arc<dyn KmsProvider>, audit: Audit) -> Audited {
        Audited { inner, audit }
    }

    fn log<T>(
        &self,
        op: &str,
        key_id: &str,
        context: Option<&EncryptionContext>,
        started: Instant,
        result: &Result<T, KmsError>,
    ) {
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{e:?}")
                .split('(')
                .next()
                .unwrap_or("error")
                .to_string(),
        };
        self.audit.record(
            "kms",
            json!({"op": op, "provider": self.inner.name(), "key": key_id,
                   "encryption_context": context, "caller": "sealdb",
                   "outcome": outcome,
                   "latency_ms": started.elapsed().as_secs_f64() * 1000.0}),
        );
    }
}

impl KmsProvider for Audited {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn describe_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<KeyInfo, KmsError>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.describe_key(key_id).await;
            self.log("DescribeKey", key_id, None, t, &r);
            r
        })
    }

    fn generate_data_key<'a>(
        &'a self,
        key_id: &'a str,
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<GeneratedKey, KmsError>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.generate_data_key(key_id, context).await;
            self.log("GenerateDataKey", key_id, Some(context), t, &r);
            r
        })
    }

    fn decrypt<'a>(
        &'a self,
        key_id: &'a str,
        blob: &'a [u8],
        context: &'a EncryptionContext,
    ) -> BoxFuture<'a, Result<Key32, KmsError>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.decrypt(key_id, blob, context).await;
            self.log("Decrypt", key_id, Some(context), t, &r);
            r
        })
    }
}
