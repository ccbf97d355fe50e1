//! `ekran server`, `token`, `screen`, `push`, `report`: the server process
//! and the commands that manage it (tokens directly on its database, the
//! rest through its HTTP API).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ekran::server::auth::{self, Role};
use ekran::server::db::Db;
use ekran::server::{self as srv, Config};

/// `ekran server`: serve the API and the device endpoints.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Data directory: SQLite file (unless DATABASE_URL is set), signing key, media store.
    #[arg(long, default_value = srv::DEFAULT_DATA_DIR)]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = srv::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// PostgreSQL URL (postgres://…); unset: the embedded SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Largest media upload in bytes (413 beyond).
    #[arg(long, default_value_t = srv::DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
}

/// Where the database of `token` commands is.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The server's data directory (its SQLite file is used unless DATABASE_URL is set).
    #[arg(long, default_value = srv::DEFAULT_DATA_DIR)]
    data: PathBuf,
    /// PostgreSQL URL of the server's database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

/// `ekran token …`: people's API tokens, on the database directly (server running or not).
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Create a token and print its secret (shown this once only).
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// admin, manager or viewer.
        #[arg(long)]
        role: Role,
        /// A label for the token (who or what uses it).
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Revoke a token by id or name.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        /// Token id (tok_…) or name.
        token: String,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `ekran screen …`: screen management through the server API.
#[derive(Debug, clap::Subcommand)]
pub enum ScreenCmd {}

/// `ekran push`: check a playlist, upload missing media, publish.
#[derive(Debug, clap::Args)]
pub struct PushArgs {}

/// `ekran report …`: read reports from a server.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCmd {}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves when SIGTERM or Ctrl-C arrives.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

pub fn run_server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(&args.data);
    config.database_url = args.database_url;
    config.max_upload_bytes = args.max_upload_bytes;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        srv::run(config, listener, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn open_db(args: &DbArgs) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data directory {}", args.data.display()))?;
    Ok(Db::open(args.database_url.as_deref(), &args.data).await?)
}

pub fn run_token(cmd: TokenCmd) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            TokenCmd::Create { db, role, name } => {
                let db = open_db(&db).await?;
                let token = auth::create_token(&db, role, &name).await?;
                eprintln!(
                    "created {} token {} ({}); the secret below is shown only now:",
                    token.role, token.id, token.name
                );
                println!("{}", token.secret);
            }
            TokenCmd::Revoke { db, token } => {
                let db = open_db(&db).await?;
                if auth::revoke_token(&db, &token).await? == 0 {
                    anyhow::bail!("no live token with id or name {token:?}");
                }
                eprintln!("revoked {token}");
            }
            TokenCmd::List { db } => {
                let db = open_db(&db).await?;
                println!("{:<18} {:<8} {:<8} NAME", "ID", "ROLE", "STATE");
                for token in auth::list_tokens(&db).await? {
                    let state = if token.revoked_at_ms.is_some() {
                        "revoked"
                    } else {
                        "live"
                    };
                    println!(
                        "{:<18} {:<8} {:<8} {}",
                        token.id, token.role, state, token.name
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run_screen(cmd: ScreenCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}

pub fn run_push(_args: PushArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ekran push is not available yet")
}

pub fn run_report(cmd: ReportCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
