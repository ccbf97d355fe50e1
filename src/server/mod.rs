//! The central server (SPEC §7): HTTP API on axum, storage on SQLite or
//! PostgreSQL through sqlx, media in a content-addressed store.
//!
//! # Layout
//! - [`db`]: the pool over either backend, migrations, write transactions.
//! - [`error`]: `AppError`, the one error type handlers return.
//! - [`auth`]: people's tokens and roles, the bearer-token extractor.
//! - [`device`]: screen enrollment (pairing codes) and signed device requests.
//! - [`media`]: the `MediaStore` trait, the on-disk store, upload sniffing.
//! - [`publish`]: compiling playlists into signed per-screen manifests.
//! - [`ingest`]: proof-of-play batches: verification, storage, findings, rollups.
//! - [`reports`]: airtime per venue × campaign × day from the rollups.
//! - [`audit`]: the auditor's export of signed records, verifiable offline.
//! - [`metrics`]: Prometheus counters.
//! - [`bench`]: `ekran bench` (ingest ratio, 304 fetches).
//! - [`screenshots`]: screenshots on request (operator asks, box uploads on its next contact).
//! - [`api`]: the HTTP routes and handlers, grouped by resource.
//! - [`web`]: the web dashboard (HTML pages, sessions, translations) at `/`.
//!
//! [`run`] takes a bound listener and a shutdown future, so tests start a
//! real server on port 0 and stop it when they like.

pub mod api;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod db;
pub mod device;
pub mod error;
pub mod ingest;
pub mod media;
pub mod metrics;
pub mod publish;
pub mod reports;
pub mod screenshots;
pub mod web;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::keys;
use db::{Backend, Db, DbError};
use media::{DiskStore, MediaStore};
use metrics::Metrics;
use publish::PublishNotifier;

/// Folder of the data dir holding the manifest signing key pair.
pub const SIGNING_KEY_DIR: &str = "signing";
/// Folder of the data dir holding the content-addressed media.
pub const MEDIA_DIR: &str = "media";

/// Default data directory of `ekran server`.
pub const DEFAULT_DATA_DIR: &str = "ekran-data";
/// Default listen address of `ekran server`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default largest media upload: 4 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Holds the SQLite file (when no `database_url`), the signing key and the media store.
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL; `None` for the embedded SQLite file.
    pub database_url: Option<String>,
    /// Largest accepted media upload in bytes; larger ones get 413.
    pub max_upload_bytes: u64,
    /// How long a compiled manifest stays fresh before players mark themselves stale.
    pub manifest_ttl_secs: u64,
}

impl Config {
    /// A config with every default, storing in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            manifest_ttl_secs: 14 * 24 * 3600,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Database connection or migration failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The data dir or a file in it is unusable.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The signing key cannot be created or read.
    #[error("server signing key: {0}")]
    Key(#[from] keys::KeyError),
    /// The media store cannot be opened.
    #[error(transparent)]
    Media(#[from] media::MediaError),
    /// Serving failed.
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The key manifests are signed with, and how players pin it.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The private key.
    pub key: SigningKey,
    /// Its key id (`keys::key_id`).
    pub key_id: String,
    /// Its public half, SPKI PEM (the manifest's root key).
    pub public_key_pem: String,
}

impl Signer {
    /// Reads the data dir's signing key, generating it (0600) on first start.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, ServerError> {
        let dir = data_dir.join(SIGNING_KEY_DIR);
        let key_path = dir.join(keys::PRIVATE_KEY_FILE);
        if !key_path.exists() {
            match keys::generate(&dir, false) {
                Ok(generated) => tracing::info!(
                    key_id = %generated.key_id,
                    path = %generated.key_path.display(),
                    "generated the server signing key"
                ),
                // Another server process sharing the data dir made it first.
                Err(keys::KeyError::AlreadyExists { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let key = keys::read_signing_key(&key_path)?;
        let verifying = key.verifying_key();
        Ok(Self {
            key_id: keys::key_id(&verifying),
            public_key_pem: keys::verifying_key_to_pem(&verifying),
            key,
        })
    }
}

/// Shared state of every handler: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    db: Db,
    config: Config,
    media: Box<dyn MediaStore>,
    signer: Signer,
    notifier: PublishNotifier,
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
}

impl AppState {
    /// Opens the database (migrating it) and the data dir.
    pub async fn open(config: Config) -> Result<Self, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::Io {
            what: "cannot create the data directory",
            path: config.data_dir.clone(),
            source,
        })?;
        let signer = Signer::load_or_generate(&config.data_dir)?;
        tracing::info!(key_id = %signer.key_id, "manifests are signed with this key");
        let media = DiskStore::open(config.data_dir.join(MEDIA_DIR))?;
        let db = Db::open(config.database_url.as_deref(), &config.data_dir).await?;
        Ok(Self {
            inner: Arc::new(StateInner {
                db,
                config,
                media: Box::new(media),
                signer,
                notifier: PublishNotifier::default(),
                metrics: Metrics::default(),
                shutdown: watch::channel(false).0,
            }),
        })
    }

    /// Where media bytes live.
    pub fn media(&self) -> &dyn MediaStore {
        self.inner.media.as_ref()
    }

    /// The manifest signing key.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// Wake-ups for long-polling manifest fetches.
    pub fn notifier(&self) -> &PublishNotifier {
        &self.inner.notifier
    }

    /// Operational counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Changes to `true` when the server begins shutting down (long-polls end early).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The configuration the server started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}

/// Serves the API on `listener` until `shutdown` completes, then lets
/// in-flight requests finish and closes the database pool.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = AppState::open(config).await?;
    serve(state, listener, shutdown).await
}

/// Like [`run`], with an already opened state (tests that also want the state's handles).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let address = listener.local_addr().map_err(ServerError::Serve)?;
    tracing::info!(%address, backend = ?state.db().backend(), "ekran server listening");
    let app = api::router(state.clone());
    let mut background = tokio::task::JoinSet::new();
    if state.db().backend() == Backend::Postgres {
        background.spawn(publish::listen_for_publications(state.clone()));
    }
    background.spawn(prune_nonces_forever(state.clone()));
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        // Long-polls answer now instead of holding the shutdown for their full wait.
        stopping.inner.shutdown.send_replace(true);
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    background.shutdown().await;
    served.map_err(ServerError::Serve)?;
    state.db().close().await;
    tracing::info!("ekran server stopped");
    Ok(())
}

/// Forgets device-request nonces once their replay window has passed.
async fn prune_nonces_forever(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        if let Err(error) = device::prune_nonces(state.db()).await {
            tracing::warn!(%error, "cannot prune device nonces");
        }
    }
}
