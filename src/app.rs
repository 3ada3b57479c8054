//! Start-up assembly: data dir, audit log, store, KMS, catalog, the development principal,
//! and the listener. Used by `sealdb serve`, by the offline CLI and by the tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::audit::Audit;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::crypto::keyring::CachePolicy;
use crate::http::server::{self, ServerError};
use crate::kms::audited::Audited;
use crate::kms::aws::{AwsKms, AwsKmsSettings, NEEDS_DEFAULT_KEY};
use crate::kms::local::{LocalKms, DEFAULT_ALIAS};
use crate::kms::KmsProvider;
use crate::ops::admin::{self, AdminInput};
use crate::ops::Services;
use crate::protocol::AdminOp;
#[cfg(feature = "rocksdb")]
use crate::storage::RocksStore;
use crate::storage::Store;

/// The development principal created at first start.
pub const DEV_USER: &str = "dev";
pub const DEV_POLICY_NAME: &str = "dev-admin";
pub const DEV_PROFILE: &str = "sealdb-dev";
pub const DEV_CREDENTIALS_FILE: &str = "dev-credentials";
/// The policy the development principal gets (everything: it is the operator's own key).
pub const DEV_POLICY: &str = include_str!("../policies/dev-admin.json");

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("audit log: {0}")]
    Audit(std::io::Error),
    #[error("storage: {0}")]
    Store(#[from] crate::storage::StoreError),
    #[error("KMS: {0}")]
    Kms(#[from] crate::kms::KmsError),
    #[error("catalog: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Server(#[from] ServerError),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// Opens everything behind the API (no listener).
pub async fn open_services(config: Config) -> Result<Arc<Services>, AppError> {
    config
        .validate()
        .map_err(|e| AppError::Config(e.to_string()))?;
    let data_dir = config.data_dir.clone();
    crate::util::create_private_dir(&data_dir)
        .map_err(|e| AppError::DataDir(data_dir.clone(), e))?;
    let audit = Audit::open(&config.audit_log_path()).map_err(AppError::Audit)?;
    #[cfg(feature = "rocksdb")]
    let store: Arc<dyn Store> = Arc::new(RocksStore::open(&data_dir.join("db"))?);
    // A server without a durable store would lose acknowledged writes: refuse to start.
    #[cfg(not(feature = "rocksdb"))]
    let store: Arc<dyn Store> = Err(AppError::Config(
        "this build has no storage engine (built without the `rocksdb` feature)".into(),
    ))?;
    let mut local_kms = None;
    let (provider, fallback_default): (Arc<dyn KmsProvider>, Option<&str>) =
        match config.kms.provider.as_str() {
            "local" => {
                let local = Arc::new(LocalKms::open(
                    &data_dir,
                    &config.account_id,
                    &config.region,
                )?);
                local_kms = Some(local.clone());
                (local, Some(DEFAULT_ALIAS))
            }
            "aws" => {
                // The catalog's system key is wrapped under the default key, and with a
                // customer-managed KMS sealdb creates no key of its own.
                if config.kms.default_key.is_none() {
                    return Err(AppError::Config(NEEDS_DEFAULT_KEY.into()));
                }
                let settings = AwsKmsSettings::from_config(&config.kms, &config.region);
                (Arc::new(AwsKms::new(settings).await), None)
            }
            other => {
                return Err(AppError::Config(format!(
                    "KMS provider '{other}' is not available in this build (supported: local, aws)"
                )))
            }
        };
    let kms: Arc<dyn KmsProvider> = Arc::new(Audited::new(provider, audit.clone()));
    let default_key = config
        .kms
        .default_key
        .clone()
        .or(fallback_default.map(str::to_string))
        .ok_or_else(|| AppError::Config("no default KMS key configured".into()))?;
    let default_kms_key = kms.describe_key(&default_key).await?.arn;
    let catalog = Catalog::open(
        store.clone(),
        kms.as_ref(),
        &default_kms_key,
        &config.account_id,
        &config.region,
    )
    .await?;
    let ttl = Duration::from_secs(config.kms.key_cache_ttl_secs.max(1));
    let key_cache = CachePolicy {
        ttl,
        max_stale: Duration::from_secs(config.kms.max_stale_secs).max(ttl),
    };
    Ok(Arc::new(Services {
        config,
        store,
        kms,
        default_kms_key,
        catalog,
        audit,
        key_cache,
        local_kms,
    }))
}

/// Renews every table's cached keys at half their TTL, so requests never wait on the KMS,
/// and re-checks the KMS key of every table (a revoked key makes its table inaccessible
/// within the TTL; an enabled one brings it back). Runs until the services are dropped.
pub fn spawn_key_refresher(svc: &Arc<Services>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(svc);
    let ttl = svc.key_cache.ttl;
    let probe = Duration::from_secs(svc.config.kms.probe_interval_secs.max(1));
    let tick = (ttl / 4).min(probe).max(Duration::from_millis(250));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            let Some(svc) = weak.upgrade() else { return };
            for entry in svc.catalog.tables() {
                let due = entry.keys.inaccessible_since().is_some()
                    || entry.keys.age().is_none_or(|age| age >= ttl / 2);
                if due {
                    let _ = entry
                        .keys
                        .reload(svc.kms.as_ref(), &entry.def.keys, &entry.def.keyspace)
                        .await;
                }
            }
        }
    })
}

/// On first start: the `dev` user with the dev-admin policy and an access key, written to
/// `DATA_DIR/dev-credentials` (0600) as an AWS shared-credentials profile. Later starts reuse it.
pub async fn bootstrap_dev_principal(svc: &Services) -> Result<Option<PathBuf>, AppError> {
    let path = svc.config.data_dir.join(DEV_CREDENTIALS_FILE);
    if svc.catalog.principals().by_name.contains_key(DEV_USER) {
        return Ok(path.exists().then_some(path));
    }
    let err = |e: crate::error::ApiError| AppError::Bootstrap(e.to_string());
    let user = |extra: AdminInput| AdminInput {
        user_name: Some(DEV_USER.to_string()),
        ..extra
    };
    admin::run(
        &svc.catalog,
        AdminOp::CreateUser,
        user(AdminInput::default()),
    )
    .await
    .map_err(err)?;
    admin::run(
        &svc.catalog,
        AdminOp::PutUserPolicy,
        user(AdminInput {
            policy_name: Some(DEV_POLICY_NAME.to_string()),
            policy_document: Some(DEV_POLICY.to_string()),
            ..Default::default()
        }),
    )
    .await
    .map_err(err)?;
    let created = admin::run(
        &svc.catalog,
        AdminOp::CreateAccessKey,
        user(AdminInput::default()),
    )
    .await
    .map_err(err)?;
    let id = created["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap_or_default();
    let secret = zeroize::Zeroizing::new(
        created["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let text = zeroize::Zeroizing::new(format!(
        "[{DEV_PROFILE}]\naws_access_key_id = {id}\naws_secret_access_key = {}\n",
        secret.as_str()
    ));
    crate::util::write_private_file(&path, text.as_bytes())
        .map_err(|e| AppError::Bootstrap(format!("{}: {e}", path.display())))?;
    Ok(Some(path))
}

/// A server running in this process (tests, `sealdb serve`).
pub struct Running {
    pub addr: SocketAddr,
    pub services: Arc<Services>,
    pub dev_credentials: Option<PathBuf>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<Result<(), ServerError>>,
    refresher: tokio::task::JoinHandle<()>,
    ttl_sweeper: tokio::task::JoinHandle<()>,
    index_worker: tokio::task::JoinHandle<()>,
    key_manager: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Graceful stop: in-flight requests finish; then the store closes when the last
    /// reference to the services drops.
    pub async fn stop(mut self) -> Result<(), AppError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let r = (&mut self.join)
            .await
            .map_err(|e| AppError::Bootstrap(format!("server task: {e}")))?;
        self.refresher.abort();
        self.ttl_sweeper.abort();
        self.index_worker.abort();
        // Wait for the manager to be gone so it cannot start a job after the jobs are stopped.
        self.key_manager.abort();
        let _ = (&mut self.key_manager).await;
        crate::keyjob::stop_jobs(&self.services);
        self.services.audit.close();
        r.map_err(AppError::from)
    }
}

/// Refuses plaintext on a non-loopback address unless explicitly allowed.
pub fn check_listen_policy(config: &Config, addr: &SocketAddr) -> Result<(), AppError> {
    let tls = config.tls_cert.is_some() && config.tls_key.is_some();
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        return Err(AppError::Config(
            "--tls-cert and --tls-key must be given together".into(),
        ));
    }
    if !tls && !server::is_loopback(addr) && !config.allow_insecure_network {
        return Err(AppError::Config(format!(
            "refusing to serve plaintext HTTP on non-loopback address {addr}: give --tls-cert/--tls-key, or --allow-insecure-network"
        )));
    }
    Ok(())
}

pub async fn start(config: Config) -> Result<Running, AppError> {
    let listen: SocketAddr = config
        .listen
        .parse()
        .map_err(|e| AppError::Config(format!("invalid listen address {}: {e}", config.listen)))?;
    check_listen_policy(&config, &listen)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(server::tls_acceptor(c, k)?),
        _ => None,
    };
    let services = open_services(config).await?;
    let dev_credentials = bootstrap_dev_principal(&services).await?;
    let refresher = spawn_key_refresher(&services);
    let ttl_sweeper = crate::ops::ttl::spawn_sweeper(&services);
    let index_worker = crate::ops::index_admin::backfill::spawn_worker(&services);
    // Rotation policy, encryption counts and resuming interrupted re-encryption jobs.
    let key_manager = crate::keyjob::spawn_manager(&services, services.config.keys.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(ServerError::Io)?;
    let addr = listener.local_addr().map_err(ServerError::Io)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let svc = services.clone();
    let join = tokio::spawn(async move {
        server::serve(svc, listener, tls, async {
            let _ = rx.await;
        })
        .await
    });
    Ok(Running {
        addr,
        services,
        dev_credentials,
        shutdown: Some(tx),
        refresher,
        ttl_sweeper,
        index_worker,
        key_manager,
        join,
    })
}

/// Reads one profile from an AWS shared-credentials file.
pub fn read_credentials_profile(
    path: &Path,
    profile: &str,
) -> Option<(String, zeroize::Zeroizing<String>)> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).ok()?);
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            in_profile = line[1..line.len() - 1].trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => {
                    secret = Some(zeroize::Zeroizing::new(v.trim().to_string()))
                }
                _ => {}
            }
        }
    }
    Some((id?, secret?))
}
