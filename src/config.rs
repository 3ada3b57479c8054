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
    /// A value that parsed but is out of range (from the file or the environment).
    #[error("invalid setting {name}: {message}")]
    Invalid { name: String, message: String },
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
    pub keys: KeysConfig,
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

/// Key lifecycle work of a serving process (`[keys]`): the data-key rotation policy and the
/// re-encryption job's throttle. Used by `sealdb::keyjob`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Re-encryption throttle (rows per second; 0 = unthrottled).
    pub reencrypt_rows_per_sec: u64,
    /// Rotate a table's data key once its active generation is this old (off when absent).
    pub rotate_max_age_secs: Option<u64>,
    /// Rotate once about this many encryptions used the active generation (approximate:
    /// counted in memory, persisted every check interval; off when absent).
    pub rotate_max_encryptions: Option<u64>,
    /// How often the manager persists encryption counts and checks the rotation policy.
    pub check_interval_secs: u64,
}

/// Rows re-sealed per second by default: a background job must leave the disk and CPU to
/// requests (our measurement: ~20k re-seals/s on one core, so this is ~10% of one core).
pub const DEFAULT_REENCRYPT_ROWS_PER_SEC: u64 = 2000;
/// Default policy check period: a crash loses at most this much of the encryption count.
pub const DEFAULT_CHECK_INTERVAL_SECS: u64 = 30;

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            reencrypt_rows_per_sec: DEFAULT_REENCRYPT_ROWS_PER_SEC,
            rotate_max_age_secs: None,
            rotate_max_encryptions: None,
            check_interval_secs: DEFAULT_CHECK_INTERVAL_SECS,
        }
    }
}

impl KeysConfig {
    /// `SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC`, `SEALDB_KEYS_ROTATE_MAX_AGE_SECS`,
    /// `SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS` and `SEALDB_KEYS_CHECK_INTERVAL_SECS` override the
    /// file. A rotation setting set to `off` (or empty) in the environment turns that policy
    /// off even when the file sets it.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        const ROWS: &str = "SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC";
        const AGE: &str = "SEALDB_KEYS_ROTATE_MAX_AGE_SECS";
        const ENC: &str = "SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS";
        const CHECK: &str = "SEALDB_KEYS_CHECK_INTERVAL_SECS";
        let optional = |name: &str, v: String| -> Result<Option<u64>, ConfigError> {
            let v = v.trim();
            if v.is_empty() || v.eq_ignore_ascii_case("off") {
                return Ok(None);
            }
            whole_number(name, v).map(Some)
        };
        if let Some(v) = get(ROWS) {
            self.reencrypt_rows_per_sec = whole_number(ROWS, &v)?;
        }
        if let Some(v) = get(AGE) {
            self.rotate_max_age_secs = optional(AGE, v)?;
        }
        if let Some(v) = get(ENC) {
            self.rotate_max_encryptions = optional(ENC, v)?;
        }
        if let Some(v) = get(CHECK) {
            self.check_interval_secs = whole_number(CHECK, &v)?;
        }
        Ok(())
    }

    /// Range checks, after the file and the environment are merged. A zero rotation limit or
    /// check interval would rotate (or poll) without pause: refused rather than guessed at.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = |name: &str, v: Option<u64>, off: bool| match v {
            Some(0) => Err(ConfigError::Invalid {
                name: name.to_string(),
                message: if off {
                    "must be at least 1 (omit it, or set the environment variable to `off`, to turn this policy off)".into()
                } else {
                    "must be at least 1".into()
                },
            }),
            _ => Ok(()),
        };
        at_least_one(
            "[keys] check_interval_secs (SEALDB_KEYS_CHECK_INTERVAL_SECS)",
            Some(self.check_interval_secs),
            false,
        )?;
        at_least_one(
            "[keys] rotate_max_age_secs (SEALDB_KEYS_ROTATE_MAX_AGE_SECS)",
            self.rotate_max_age_secs,
            true,
        )?;
        at_least_one(
            "[keys] rotate_max_encryptions (SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS)",
            self.rotate_max_encryptions,
            true,
        )
    }

    pub fn check_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.check_interval_secs.max(1))
    }
}

fn whole_number(name: &str, v: &str) -> Result<u64, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::Env {
        name: name.to_string(),
        message: "expected a whole number".into(),
    })
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
            keys: KeysConfig::default(),
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
        cfg.validate()?;
        Ok(cfg)
    }

    /// Range checks of the merged settings (also run by `app::open_services`, for configs
    /// built in code).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.keys.validate()
    }

    /// `SEALDB_<FIELD>`, `SEALDB_KMS_<FIELD>`, `SEALDB_TTL_<FIELD>` and `SEALDB_KEYS_<FIELD>`
    /// override the file.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num(name: &str, v: String) -> Result<u64, ConfigError> {
            whole_number(name, &v)
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
        self.keys.apply_env(&get)?;
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

    #[test]
    fn keys_table_defaults_file_and_environment_precedence() {
        let d = Config::default().keys;
        assert_eq!(d.reencrypt_rows_per_sec, DEFAULT_REENCRYPT_ROWS_PER_SEC);
        assert_eq!(d.check_interval_secs, DEFAULT_CHECK_INTERVAL_SECS);
        assert_eq!(
            (d.rotate_max_age_secs, d.rotate_max_encryptions),
            (None, None)
        );

        let mut cfg: Config = toml::from_str(
            "[keys]\nreencrypt_rows_per_sec = 0\nrotate_max_age_secs = 86400\n\
             rotate_max_encryptions = 1000000\ncheck_interval_secs = 5\n",
        )
        .unwrap();
        let file = KeysConfig {
            reencrypt_rows_per_sec: 0,
            rotate_max_age_secs: Some(86_400),
            rotate_max_encryptions: Some(1_000_000),
            check_interval_secs: 5,
        };
        assert_eq!(cfg.keys, file);
        cfg.validate().unwrap();
        // No variable set: the file stands.
        cfg.apply_env(|_| None).unwrap();
        assert_eq!(cfg.keys, file);
        // Every variable wins over the file; `off` turns a file policy off.
        cfg.apply_env(|k| match k {
            "SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC" => Some("750".into()),
            "SEALDB_KEYS_ROTATE_MAX_AGE_SECS" => Some(" off ".into()),
            "SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS" => Some("42".into()),
            "SEALDB_KEYS_CHECK_INTERVAL_SECS" => Some("2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            cfg.keys,
            KeysConfig {
                reencrypt_rows_per_sec: 750,
                rotate_max_age_secs: None,
                rotate_max_encryptions: Some(42),
                check_interval_secs: 2,
            }
        );
        // Only the named variable changes; the others keep the file's value.
        let mut cfg: Config = toml::from_str("[keys]\ncheck_interval_secs = 7\n").unwrap();
        cfg.apply_env(|k| (k == "SEALDB_KEYS_ROTATE_MAX_AGE_SECS").then(|| "60".into()))
            .unwrap();
        assert_eq!(cfg.keys.rotate_max_age_secs, Some(60));
        assert_eq!(cfg.keys.check_interval_secs, 7);
        assert_eq!(
            cfg.keys.reencrypt_rows_per_sec,
            DEFAULT_REENCRYPT_ROWS_PER_SEC
        );
    }

    #[test]
    fn keys_values_out_of_range_or_garbage_are_config_errors() {
        // In the file: unknown keys, negative numbers and wrong types fail to parse.
        for bad in [
            "[keys]\nrotate_every = 1\n",
            "[keys]\ncheck_interval_secs = -1\n",
            "[keys]\nrotate_max_age_secs = \"1h\"\n",
            "[keys]\nreencrypt_rows_per_sec = 1.5\n",
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
        }
        // Zero where zero means "without pause": refused by validation, naming the setting.
        for (text, name) in [
            ("[keys]\ncheck_interval_secs = 0\n", "check_interval_secs"),
            ("[keys]\nrotate_max_age_secs = 0\n", "rotate_max_age_secs"),
            (
                "[keys]\nrotate_max_encryptions = 0\n",
                "rotate_max_encryptions",
            ),
        ] {
            let cfg: Config = toml::from_str(text).unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        // In the environment: garbage and negative numbers name the variable; zero fails
        // validation.
        for (name, value) in [
            ("SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC", "fast"),
            ("SEALDB_KEYS_ROTATE_MAX_AGE_SECS", "-5"),
            ("SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS", "1e6"),
            ("SEALDB_KEYS_CHECK_INTERVAL_SECS", "30s"),
        ] {
            let mut cfg = Config::default();
            let err = cfg
                .apply_env(|k| (k == name).then(|| value.to_string()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
        for name in [
            "SEALDB_KEYS_ROTATE_MAX_AGE_SECS",
            "SEALDB_KEYS_ROTATE_MAX_ENCRYPTIONS",
            "SEALDB_KEYS_CHECK_INTERVAL_SECS",
        ] {
            let mut cfg = Config::default();
            cfg.apply_env(|k| (k == name).then(|| "0".to_string()))
                .unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        // Unthrottled re-encryption is a deliberate choice, not an error.
        let mut cfg = Config::default();
        cfg.apply_env(|k| (k == "SEALDB_KEYS_REENCRYPT_ROWS_PER_SEC").then(|| "0".into()))
            .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.keys.reencrypt_rows_per_sec, 0);
    }
}
