//! One `Config`: defaults, then an optional TOML file, then `SEALDB_*` environment variables,
//! then command-line flags (applied by main.rs). Every setting is documented in README.md.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default listen address: loopback only, so a fresh `sealdb serve` is never exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// DynamoDB Local's account id; ARNs look like AWS's without pretending to be a real account.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
pub const DEFAULT_REGION: &str = "us-east-1";
/// AWS SigV4: requests more than 15 minutes from the server clock are rejected.
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: u64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {name}: {message}")]
    Env { name: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HOST:PORT to listen on.
    pub listen: String,
    /// Where RocksDB, the local KMS key store, credentials and the audit log live.
    pub data_dir: PathBuf,
    /// Region used in ARNs and required in SigV4 credential scopes.
    pub region: String,
    /// Account id used in ARNs.
    pub account_id: String,
    /// PEM certificate chain and key: serve HTTPS (TLS 1.2+).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Binding a non-loopback address without TLS is refused unless this is set.
    pub allow_insecure_network: bool,
    pub max_clock_skew_secs: u64,
    /// JSON-lines audit log; default `DATA_DIR/audit.log`.
    pub audit_log: Option<PathBuf>,
    pub kms: KmsConfig,
    pub ttl: TtlConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtlConfig {
    /// How often the time-to-live sweeper looks for expired items (milliseconds).
    pub sweep_interval_ms: u64,
}

/// Default TTL sweep period: 30 s (DynamoDB only promises deletion within days; tests set
/// a few hundred milliseconds).
pub const DEFAULT_TTL_SWEEP_INTERVAL_MS: u64 = 30_000;

impl Default for TtlConfig {
    fn default() -> Self {
        TtlConfig {
            sweep_interval_ms: DEFAULT_TTL_SWEEP_INTERVAL_MS,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KmsConfig {
    /// `local` (in-process, key store in the data dir) or `aws` (aws-sdk-kms).
    pub provider: String,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    /// Key id, ARN or alias used for tables that name no key.
    pub default_key: Option<String>,
    /// How long a plaintext table key stays cached.
    pub key_cache_ttl_secs: u64,
    /// How often key states are re-checked with the KMS.
    pub probe_interval_secs: u64,
    /// How long a cached key may serve while the KMS is unreachable.
    pub max_stale_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.to_string(),
            data_dir: PathBuf::from("./data"),
            region: DEFAULT_REGION.to_string(),
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            tls_cert: None,
            tls_key: None,
            allow_insecure_network: false,
            max_clock_skew_secs: DEFAULT_MAX_CLOCK_SKEW_SECS,
            audit_log: None,
            kms: KmsConfig::default(),
            ttl: TtlConfig::default(),
        }
    }
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig {
            provider: "local".to_string(),
            endpoint_url: None,
            region: None,
            default_key: None,
            key_cache_ttl_secs: 300,
            probe_interval_secs: 60,
            max_stale_secs: 3600,
        }
    }
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        cfg.apply_env(|name| std::env::var(name).ok())?;
        Ok(cfg)
    }

    /// `SEALDB_<FIELD>` and `SEALDB_KMS_<FIELD>` override the file.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num(name: &str, v: String) -> Result<u64, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Env {
                name: name.to_string(),
                message: "expected a whole number".into(),
            })
        }
        fn boolean(name: &str, v: String) -> Result<bool, ConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => Err(ConfigError::Env {
                    name: name.to_string(),
                    message: "expected true or false".into(),
                }),
            }
        }
        if let Some(v) = get("SEALDB_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("SEALDB_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("SEALDB_REGION") {
            self.region = v;
        }
        if let Some(v) = get("SEALDB_ACCOUNT_ID") {
            self.account_id = v;
        }
        if let Some(v) = get("SEALDB_TLS_CERT") {
            self.tls_cert = Some(v.into());
        }
        if let Some(v) = get("SEALDB_TLS_KEY") {
            self.tls_key = Some(v.into());
        }
        if let Some(v) = get("SEALDB_ALLOW_INSECURE_NETWORK") {
            self.allow_insecure_network = boolean("SEALDB_ALLOW_INSECURE_NETWORK", v)?;
        }
        if let Some(v) = get("SEALDB_MAX_CLOCK_SKEW_SECS") {
            self.max_clock_skew_secs = num("SEALDB_MAX_CLOCK_SKEW_SECS", v)?;
        }
        if let Some(v) = get("SEALDB_AUDIT_LOG") {
            self.audit_log = Some(v.into());
        }
        if let Some(v) = get("SEALDB_KMS_PROVIDER") {
            self.kms.provider = v;
        }
        if let Some(v) = get("SEALDB_KMS_ENDPOINT_URL") {
            self.kms.endpoint_url = Some(v);
        }
        if let Some(v) = get("SEALDB_KMS_REGION") {
            self.kms.region = Some(v);
        }
        if let Some(v) = get("SEALDB_KMS_DEFAULT_KEY") {
            self.kms.default_key = Some(v);
        }
        if let Some(v) = get("SEALDB_KMS_KEY_CACHE_TTL_SECS") {
            self.kms.key_cache_ttl_secs = num("SEALDB_KMS_KEY_CACHE_TTL_SECS", v)?;
        }
        if let Some(v) = get("SEALDB_KMS_PROBE_INTERVAL_SECS") {
            self.kms.probe_interval_secs = num("SEALDB_KMS_PROBE_INTERVAL_SECS", v)?;
        }
        if let Some(v) = get("SEALDB_KMS_MAX_STALE_SECS") {
            self.kms.max_stale_secs = num("SEALDB_KMS_MAX_STALE_SECS", v)?;
        }
        if let Some(v) = get("SEALDB_TTL_SWEEP_INTERVAL_MS") {
            self.ttl.sweep_interval_ms = num("SEALDB_TTL_SWEEP_INTERVAL_MS", v)?;
        }
        Ok(())
    }

    pub fn audit_log_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.log"))
    }

    pub fn table_arn(&self, table: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.region, self.account_id, table
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut cfg: Config = toml::from_str(
            "listen = \"127.0.0.1:9\"\nregion = \"eu-west-1\"\n[kms]\nkey_cache_ttl_secs = 30\n",
        )
        .unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9");
        assert_eq!(cfg.kms.key_cache_ttl_secs, 30);
        cfg.apply_env(|k| match k {
            "SEALDB_REGION" => Some("ap-south-1".into()),
            "SEALDB_KMS_KEY_CACHE_TTL_SECS" => Some("1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.region, "ap-south-1");
        assert_eq!(cfg.kms.key_cache_ttl_secs, 1);
        assert_eq!(cfg.listen, "127.0.0.1:9");
    }

    #[test]
    fn ttl_sweep_interval_from_file_and_environment() {
        assert_eq!(Config::default().ttl.sweep_interval_ms, 30_000);
        let mut cfg: Config = toml::from_str("[ttl]\nsweep_interval_ms = 500\n").unwrap();
        assert_eq!(cfg.ttl.sweep_interval_ms, 500);
        cfg.apply_env(|k| (k == "SEALDB_TTL_SWEEP_INTERVAL_MS").then(|| "200".to_string()))
            .unwrap();
        assert_eq!(cfg.ttl.sweep_interval_ms, 200);
        assert!(toml::from_str::<Config>("[ttl]\nsweep_every = 1\n").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_numbers_are_rejected() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        let mut cfg = Config::default();
        let err = cfg
            .apply_env(|k| (k == "SEALDB_KMS_MAX_STALE_SECS").then(|| "soon".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("SEALDB_KMS_MAX_STALE_SECS"));
    }
}
