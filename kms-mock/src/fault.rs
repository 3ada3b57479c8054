//! Fault injection for drills and tests: per-operation errors, latency and timeouts.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{KmsError, INJECTABLE_ERRORS};

/// One rule, as posted to `POST /__admin/faults`. `operation` is an operation name
/// (`"Decrypt"`) or `"*"`; `count` limits how many calls it hits (unlimited when absent).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub operation: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub timeout: bool,
    #[serde(default)]
    pub count: Option<u64>,
}

/// What a matching rule asks of one call: wait `latency`, then hang (timeout) or fail
/// with `error`, or go on normally.
#[derive(Debug)]
pub struct FaultAction {
    pub latency: Duration,
    pub timeout: bool,
    pub error: Option<KmsError>,
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) -> Result<(), KmsError> {
        if rule.operation.is_empty() {
            return Err(KmsError::Validation(
                "operation must be an operation name or \"*\"".into(),
            ));
        }
        if let Some(e) = &rule.error {
            if !INJECTABLE_ERRORS.iter().any(|(n, _)| n == e) {
                let names: Vec<&str> = INJECTABLE_ERRORS.iter().map(|(n, _)| *n).collect();
                return Err(KmsError::Validation(format!(
                    "unknown error {e:?}; one of {}",
                    names.join(", ")
                )));
            }
        }
        if rule.count == Some(0) {
            return Ok(());
        }
        self.lock().push(rule);
        Ok(())
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// Consumes one hit of the first rule matching `operation`.
    pub fn take(&self, operation: &str) -> Option<FaultAction> {
        let mut rules = self.lock();
        let idx = rules
            .iter()
            .position(|r| r.operation == "*" || r.operation == operation)?;
        let rule = rules.get_mut(idx)?;
        let action = FaultAction {
            latency: Duration::from_millis(rule.latency_ms),
            timeout: rule.timeout,
            error: rule.error.as_deref().and_then(|e| {
                let msg = rule
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("Injected fault for {operation}"));
                KmsError::injected(e, &msg)
            }),
        };
        if let Some(c) = rule.count.as_mut() {
            *c = c.saturating_sub(1);
            if *c == 0 {
                rules.remove(idx);
            }
        }
        Some(action)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        // A panic while holding this lock cannot leave the Vec half-updated.
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(op: &str, err: Option<&str>, count: Option<u64>) -> FaultRule {
        FaultRule {
            operation: op.into(),
            error: err.map(String::from),
            message: None,
            latency_ms: 0,
            timeout: false,
            count,
        }
    }

    #[test]
    fn counted_rules_expire_and_match_by_operation() {
        let f = Faults::default();
        f.add(rule("Decrypt", Some("ThrottlingException"), Some(2)))
            .unwrap();
        assert!(f.take("Encrypt").is_none());
        let a = f.take("Decrypt").unwrap();
        assert_eq!(a.error.unwrap().aws_type(), "ThrottlingException");
        assert!(f.take("Decrypt").is_some());
        assert!(f.take("Decrypt").is_none());
        f.add(rule("*", Some("KMSInternalException"), None))
            .unwrap();
        for _ in 0..3 {
            assert_eq!(
                f.take("Encrypt").unwrap().error.unwrap().aws_type(),
                "KMSInternalException"
            );
        }
        f.clear();
        assert!(f.take("Encrypt").is_none());
        assert!(f.add(rule("*", Some("Bogus"), None)).is_err());
    }
}
