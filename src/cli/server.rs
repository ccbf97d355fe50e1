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

/// Where the server is and who is asking.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Server URL, e.g. https://signage.example.org
    #[arg(long, env = "EKRAN_SERVER")]
    server: String,
    /// API token (from `ekran token create`).
    #[arg(long, env = "EKRAN_TOKEN", hide_env_values = true)]
    token: String,
}

/// `ekran screen …`: screen management through the server API.
#[derive(Debug, clap::Subcommand)]
pub enum ScreenCmd {
    /// Approve the pairing code a new box shows, enrolling it (admin token).
    Approve {
        /// The code on the box's screen (case and dash do not matter).
        code: String,
        /// Venue the box stands in.
        #[arg(long)]
        venue: String,
        /// Screen group(s) to put it in (repeatable; created if missing).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Screen id (default: scr-<key id prefix>).
        #[arg(long)]
        id: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List screens with their last heartbeat.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// `ekran push`: check a playlist, upload missing media, publish.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The playlist TOML file.
    file: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
}

/// Output format of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// The API's JSON.
    Json,
}

/// `ekran report …`: read reports from a server.
#[derive(Debug, clap::Subcommand)]
pub enum ReportCmd {
    /// Airtime per venue × campaign × local day.
    Airtime {
        /// First day (YYYY-MM-DD, venue-local).
        #[arg(long)]
        from: jiff::civil::Date,
        /// Last day, inclusive.
        #[arg(long)]
        to: jiff::civil::Date,
        /// Only this venue.
        #[arg(long)]
        venue: Option<String>,
        /// Only this campaign (its name, as reports show it).
        #[arg(long)]
        campaign: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// A client of the server's people API.
struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let base = args.server.trim_end_matches('/').to_owned();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--server must be an http:// or https:// URL, not {base:?}"
        );
        Ok(Self {
            base,
            token: args.token.clone(),
            client: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(15))
                .build()
                .context("cannot build the HTTP client")?,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends and turns a non-2xx answer into an error carrying the server's message.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("server answered {status}: {message}")
    }
}

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
    runtime()?.block_on(async move {
        match cmd {
            ScreenCmd::Approve {
                code,
                venue,
                groups,
                id,
                name,
                api,
            } => {
                let api = Api::new(&api)?;
                let path = format!("/api/v1/pairings/{}/approve", urlencode(&code));
                let body = serde_json::json!({ "venue": venue, "groups": groups, "screen_id": id, "name": name });
                let response = api.send(api.request(reqwest::Method::POST, &path).json(&body)).await?;
                let screen: serde_json::Value = response.json().await.context("unreadable server answer")?;
                println!(
                    "enrolled screen {} in venue {} (key {})",
                    screen["id"].as_str().unwrap_or("?"),
                    screen["venue"].as_str().unwrap_or("?"),
                    screen["key_id"].as_str().unwrap_or("?")
                );
            }
            ScreenCmd::List { api } => {
                let api = Api::new(&api)?;
                let response = api.send(api.request(reqwest::Method::GET, "/api/v1/screens")).await?;
                let screens: Vec<serde_json::Value> = response.json().await.context("unreadable server answer")?;
                println!("{:<24} {:<20} {:>8} {:>10}  LAST HEARTBEAT", "SCREEN", "VENUE", "MANIFEST", "POP ACKED");
                for screen in screens {
                    let heartbeat = screen["last_heartbeat_ms"]
                        .as_i64()
                        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                        .map_or_else(|| "never".to_owned(), |t| t.to_string());
                    println!(
                        "{:<24} {:<20} {:>8} {:>10}  {heartbeat}",
                        screen["id"].as_str().unwrap_or("?"),
                        screen["venue"].as_str().unwrap_or("?"),
                        screen["manifest_version"],
                        screen["pop_acked_seq"]
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Percent-encodes a path segment typed by a person.
fn urlencode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// SHA-256 and length of a file, read in chunks.
async fn hash_file(path: &std::path::Path) -> anyhow::Result<(String, u64)> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file
            .read(&mut buffer)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

pub fn run_push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let playlist = match ekran::playlist::check_file(&args.file) {
        Ok(playlist) => playlist,
        Err(errors) => {
            for error in errors.iter() {
                eprintln!("{error}");
            }
            anyhow::bail!("{} is not valid; nothing was uploaded", args.file.display());
        }
    };
    let source = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    runtime()?.block_on(async move {
        let api = Api::new(&args.api)?;
        // Media path as written -> (file on disk), each file once.
        let mut files: std::collections::BTreeMap<String, PathBuf> =
            std::collections::BTreeMap::new();
        for item in &playlist.items {
            files.insert(
                item.media.to_string_lossy().into_owned(),
                playlist.media_path(item),
            );
        }
        let mut media = std::collections::BTreeMap::new();
        let mut missing = Vec::new();
        for (written, path) in &files {
            let (sha256, size) = hash_file(path).await?;
            let probe = api
                .request(reqwest::Method::HEAD, &format!("/api/v1/media/{sha256}"))
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {}", api.base))?;
            match probe.status() {
                reqwest::StatusCode::OK => {}
                reqwest::StatusCode::NOT_FOUND => {
                    missing.push((path.clone(), sha256.clone(), size))
                }
                status => anyhow::bail!("server answered {status} when asked for media {sha256}"),
            }
            media.insert(written.clone(), sha256);
        }
        let total: u64 = missing.iter().map(|(_, _, size)| size).sum();
        eprintln!(
            "{} media file(s), {} already on the server, uploading {} ({total} bytes)",
            files.len(),
            files.len() - missing.len(),
            missing.len()
        );
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        for (path, sha256, _) in &missing {
            bar.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            let progress = bar.clone();
            let stream = futures_util::StreamExt::inspect(
                tokio_util::io::ReaderStream::new(file),
                move |chunk| {
                    if let Ok(chunk) = chunk {
                        progress.inc(chunk.len() as u64);
                    }
                },
            );
            api.send(
                api.request(reqwest::Method::POST, "/api/v1/media")
                    .header("x-ekran-sha256", sha256)
                    .body(reqwest::Body::wrap_stream(stream)),
            )
            .await
            .with_context(|| format!("uploading {}", path.display()))?;
        }
        bar.finish_and_clear();
        let file_name = args.file.file_name().map_or_else(
            || "playlist.toml".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
        let body = serde_json::json!({ "file_name": file_name, "source": source, "media": media });
        let response = api
            .send(
                api.request(reqwest::Method::POST, "/api/v1/playlists")
                    .json(&body),
            )
            .await?;
        let result: ekran::server::publish::PublishResult =
            response.json().await.context("unreadable server answer")?;
        println!(
            "published {:?} to {} screen(s)",
            result.campaign,
            result.screens.len()
        );
        for screen in &result.screens {
            println!("  {} manifest v{}", screen.screen_id, screen.version);
        }
        for warning in &result.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run_report(cmd: ReportCmd) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            ReportCmd::Airtime {
                from,
                to,
                venue,
                campaign,
                format,
                api,
            } => {
                let api = Api::new(&api)?;
                let mut query = vec![("from", from.to_string()), ("to", to.to_string())];
                query.extend(venue.map(|v| ("venue", v)));
                query.extend(campaign.map(|c| ("campaign", c)));
                query.push((
                    "format",
                    if format == ReportFormat::Csv {
                        "csv"
                    } else {
                        "json"
                    }
                    .to_owned(),
                ));
                let response = api
                    .send(
                        api.request(reqwest::Method::GET, "/api/v1/reports/airtime")
                            .query(&query),
                    )
                    .await?;
                let text = response.text().await.context("unreadable server answer")?;
                match format {
                    ReportFormat::Csv | ReportFormat::Json => print!("{text}"),
                    ReportFormat::Table => {
                        let rows: Vec<ekran::server::reports::AirtimeRow> =
                            serde_json::from_str(&text).context("unreadable server answer")?;
                        print_airtime_table(&rows);
                    }
                }
                if format == ReportFormat::Json {
                    println!();
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_airtime_table(rows: &[ekran::server::reports::AirtimeRow]) {
    let campaign_width = rows
        .iter()
        .map(|r| r.campaign.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    println!(
        "{:<10}  {:<16}  {:<campaign_width$}  {:>10}  {:>7}  {:>9}  {:>7}  {:>8}",
        "DAY", "VENUE", "CAMPAIGN", "SECONDS", "PLAYS", "COMPLETED", "SCREENS", "VERIFIED"
    );
    for row in rows {
        println!(
            "{:<10}  {:<16}  {:<campaign_width$}  {:>10.1}  {:>7}  {:>9}  {:>7}  {:>7.1}%",
            row.day,
            row.venue,
            row.campaign,
            row.seconds,
            row.plays,
            row.completed_plays,
            row.screens,
            row.verified_share * 100.0
        );
    }
    if rows.is_empty() {
        println!("(no airtime in this range)");
    }
}

/// `ekran bench …`: server benchmarks, printed as ratios (SPEC §9).
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// Proof-of-play ingest over HTTP against a raw bulk insert of the same
    /// rows (target ratio ≥ 0.5), and manifest fetches answered with 304.
    /// Runs on a fresh SQLite file, and on PostgreSQL when a URL is given
    /// (in a schema it creates and drops).
    Ingest {
        /// Records to ingest.
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        /// Records per upload.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Screens uploading at once for the fleet figure (the records are
        /// split between them; the raw baseline runs with the same
        /// concurrency and sequentially, and the faster counts).
        #[arg(long, default_value_t = 4)]
        screens: usize,
        /// Rounds of endpoint and raw runs; each ratio printed is the
        /// median of the rounds' ratios.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
        rounds: u16,
        /// Manifest fetches for the 304 figure.
        #[arg(long, default_value_t = 2_000)]
        fetches: usize,
        /// Fetches in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// PostgreSQL to measure as well (postgres://…).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Check signatures on the 64-bit scalar engine even where the CPU
        /// has AVX-512 IFMA: the figures of a CPU without it.
        #[arg(long)]
        scalar_engine: bool,
    },
    /// Airtime report from the rollups against a raw GROUP BY over the same
    /// plays (target ≥ 100× at 10 million plays).
    Report {
        /// Synthetic plays to fill in.
        #[arg(long, default_value_t = 1_000_000)]
        plays: usize,
        /// PostgreSQL to measure as well (postgres://…).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

pub fn run_bench(cmd: BenchCmd) -> anyhow::Result<ExitCode> {
    use ekran::server::bench::{self, BenchDb};
    runtime()?.block_on(async move {
        match cmd {
            BenchCmd::Report { plays, database_url } => {
                let mut targets = vec![("sqlite", BenchDb::Sqlite)];
                if let Some(url) = database_url.filter(|url| url.starts_with("postgres")) {
                    targets.push(("postgresql", BenchDb::Postgres(url)));
                }
                for (name, db) in targets {
                    let result = bench::report(&db, plays).await?;
                    println!(
                        "{name:<10} airtime report over {} plays ({} rows): rollups {:.1} ms, raw GROUP BY {:.1} ms, {:.0}x faster (target >= 100x at 10M plays)",
                        result.plays,
                        result.rows,
                        result.rollup.as_secs_f64() * 1000.0,
                        result.raw.as_secs_f64() * 1000.0,
                        result.speedup()
                    );
                }
            }
            BenchCmd::Ingest {
                records,
                batch,
                screens,
                rounds,
                fetches,
                concurrency,
                database_url,
                scalar_engine,
            } => {
                anyhow::ensure!(
                    !scalar_engine || ekran::prepared_key::use_scalar_engine(),
                    "the signature engine was chosen before --scalar-engine could take effect"
                );
                let mut targets = vec![("sqlite", BenchDb::Sqlite)];
                if let Some(url) = database_url.filter(|url| url.starts_with("postgres")) {
                    targets.push(("postgresql", BenchDb::Postgres(url)));
                }
                for (name, db) in targets {
                    let result =
                        bench::ingest(&db, records, batch, screens, usize::from(rounds)).await?;
                    let each = |ratio: &dyn Fn(&bench::IngestRound) -> f64| {
                        let ratios: Vec<String> = result
                            .rounds
                            .iter()
                            .map(|round| format!("{:.2}", ratio(round)))
                            .collect();
                        ratios.join(" ")
                    };
                    println!(
                        "{name:<10} PoP ingest, one screen: HTTP {:>9.0} records/s, raw bulk insert {:>9.0} records/s, ratio {:.2} (target >= 0.50; median of {} rounds: {}; {} records in batches of {})",
                        result.http_per_sec(),
                        result.raw_per_sec(),
                        result.ratio(),
                        result.rounds.len(),
                        each(&bench::IngestRound::ratio),
                        result.records,
                        result.batch
                    );
                    let fleet = &result.rounds[result.rounds.len() / 2].fleet;
                    let faster = if fleet.raw_best_is_concurrent() {
                        "concurrent"
                    } else {
                        "sequential"
                    };
                    println!(
                        "{name:<10} PoP ingest, {} screens at once: ratio {:.2} against the faster raw insert (target >= 0.50; median of {} rounds: {}; {} records); middle round: HTTP {:>9.0} records/s, raw bulk insert {:>9.0} records/s sequential, {:>9.0} records/s {} at once ({faster} faster)",
                        fleet.screens,
                        result.fleet_ratio(),
                        result.rounds.len(),
                        each(&|round| round.fleet.ratio()),
                        fleet.records,
                        fleet.http_per_sec,
                        fleet.raw_sequential_per_sec,
                        fleet.raw_concurrent_per_sec,
                        fleet.screens,
                    );
                    println!(
                        "{name:<10} strict signature and hash checks alone: {:>9.0} records/s on {} cores ({}); run one after the other with the raw insert they cap the one-screen ratio at {:.2}",
                        result.verify_per_sec,
                        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                        ekran::prepared_key::engine_description(),
                        result.verify_ceiling()
                    );
                    let fetched = bench::manifest_304(&db, fetches, concurrency).await?;
                    println!(
                        "{name:<10} manifest fetches answered 304: {:>9.0} /s ({} signed requests, {} in flight)",
                        fetched.per_sec, fetched.requests, fetched.concurrency
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
