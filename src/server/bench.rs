//! Benchmarks behind `ekran bench` (SPEC §9: ratios against a baseline in
//! the same process, never timed tests):
//!
//! - proof-of-play ingest through the HTTP endpoint (signed requests,
//!   signature and chain verification, rollups) against a raw bulk insert
//!   of the same rows into the same database;
//! - manifest fetches answered with 304 per second.
//!
//! Each run uses a fresh database: a temp dir for SQLite, a schema created
//! and dropped for PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rand::RngCore;
use sqlx::Connection;

use super::auth::{self, Role};
use super::db::{Backend, Db};
use super::device::sign_request;
use super::{AppState, Config};
use crate::pop::{GENESIS_HASH, Outcome, PlayBody, PlayRecord, seal};

/// Benchmark failures.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up or talking to the server failed.
    #[error("benchmark setup failed: {0}")]
    Setup(String),
}

fn setup(what: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(what.to_string())
}

/// Where a benchmark runs.
#[derive(Debug, Clone)]
pub enum BenchDb {
    /// A fresh SQLite file in a temp dir.
    Sqlite,
    /// A fresh schema in this PostgreSQL database (dropped afterwards).
    Postgres(String),
}

/// Results of the ingest benchmark: rounds that each time the endpoint
/// and then the raw insert on empty tables, so that every ratio compares
/// runs seconds apart (a shared machine's speed drifts more than that
/// between a first and a last run).
#[derive(Debug, Clone)]
pub struct IngestResult {
    /// Records of the one-screen run (and about as many in the fleet run).
    pub records: usize,
    /// Records per HTTP request.
    pub batch: usize,
    /// Records per second of the strict hash and signature checks alone,
    /// spread over all cores.
    pub verify_per_sec: f64,
    /// The rounds, in the order they ran (at least one).
    pub rounds: Vec<IngestRound>,
}

/// One round of the ingest benchmark.
#[derive(Debug, Clone)]
pub struct IngestRound {
    /// Records per second through `POST /api/v1/device/pop`, one screen
    /// uploading its chain batch after batch.
    pub http_per_sec: f64,
    /// Records per second of the raw multi-row insert baseline of the same
    /// rows, batch after batch.
    pub raw_per_sec: f64,
    /// The fleet run: screens uploading at once, each its own chain batch
    /// after batch.
    pub fleet: FleetResult,
}

impl IngestRound {
    /// One-screen HTTP ingest throughput relative to the raw insert.
    pub fn ratio(&self) -> f64 {
        self.http_per_sec / self.raw_per_sec
    }
}

/// The fleet part of the ingest benchmark: as on a real server, several
/// screens upload at once, so one screen's checks can overlap another's
/// database writes. The baseline gets the same chance: the raw insert runs
/// batch after batch and with the same concurrency, and the faster counts.
#[derive(Debug, Clone)]
pub struct FleetResult {
    /// Screens uploading at once.
    pub screens: usize,
    /// Records over all screens.
    pub records: usize,
    /// Records per second through the endpoint, all screens together.
    pub http_per_sec: f64,
    /// Raw insert of the same rows, one transaction after another.
    pub raw_sequential_per_sec: f64,
    /// Raw insert of the same rows, `screens` transactions at once.
    pub raw_concurrent_per_sec: f64,
}

impl FleetResult {
    /// The faster raw baseline (what the ratio is taken against).
    pub fn raw_best_per_sec(&self) -> f64 {
        self.raw_sequential_per_sec.max(self.raw_concurrent_per_sec)
    }

    /// Whether the concurrent raw insert was the faster baseline.
    pub fn raw_best_is_concurrent(&self) -> bool {
        self.raw_concurrent_per_sec > self.raw_sequential_per_sec
    }

    /// Fleet HTTP ingest relative to the faster raw insert (target ≥ 0.5).
    pub fn ratio(&self) -> f64 {
        self.http_per_sec / self.raw_best_per_sec()
    }
}

impl IngestResult {
    /// One-screen HTTP ingest relative to the raw insert: the median of
    /// the rounds' ratios (target ≥ 0.5).
    pub fn ratio(&self) -> f64 {
        median(self.rounds.iter().map(IngestRound::ratio))
    }

    /// Fleet HTTP ingest relative to the faster raw insert: the median of
    /// the rounds' ratios (target ≥ 0.5).
    pub fn fleet_ratio(&self) -> f64 {
        median(self.rounds.iter().map(|round| round.fleet.ratio()))
    }

    /// Median one-screen HTTP ingest, records per second.
    pub fn http_per_sec(&self) -> f64 {
        median(self.rounds.iter().map(|round| round.http_per_sec))
    }

    /// Median raw insert, records per second.
    pub fn raw_per_sec(&self) -> f64 {
        median(self.rounds.iter().map(|round| round.raw_per_sec))
    }

    /// The one-screen ratio an endpoint would reach if checking records
    /// were its only cost besides the raw insert and the two ran one after
    /// the other: the ceiling strict verification sets on this machine's
    /// cores unless checks overlap writes.
    pub fn verify_ceiling(&self) -> f64 {
        let raw = self.raw_per_sec();
        let per_record = 1.0 / self.verify_per_sec + 1.0 / raw;
        (1.0 / per_record) / raw
    }
}

/// The median of `values` (the mean of the middle two for an even count;
/// NaN for none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Results of the 304 benchmark.
#[derive(Debug, Clone)]
pub struct ManifestResult {
    /// Requests made.
    pub requests: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// 304 answers per second.
    pub per_sec: f64,
}

/// A running server on a fresh database with enrolled screens.
struct Fixture {
    state: AppState,
    client: Client,
    screens: Vec<BenchScreen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _data: TempDir,
    schema: Option<(String, String)>,
}

/// An enrolled screen: its id and its key.
#[derive(Clone)]
struct BenchScreen {
    id: String,
    key: SigningKey,
}

/// HTTP access to the server under test (cheap to clone into tasks).
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A device request signed with `key` now.
    fn signed(
        &self,
        key: &SigningKey,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let header = sign_request(
            key,
            method,
            path,
            &body,
            jiff::Timestamp::now().as_millisecond(),
        );
        self.http
            .request(
                method.parse().unwrap_or(reqwest::Method::GET),
                format!("{}{path}", self.base),
            )
            .header("authorization", header)
            .body(body)
    }

    /// Sends, and turns anything but a success or 304 into an error.
    async fn check(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BenchError> {
        let response = request.send().await.map_err(setup)?;
        if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_MODIFIED
        {
            Ok(response)
        } else {
            let status = response.status();
            Err(setup(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            )))
        }
    }

    /// One screen's uploads of `bodies`, signed now: a box signs on its
    /// own CPU, so the timed runs leave the signing out.
    fn uploads(&self, key: &SigningKey, bodies: Vec<Vec<u8>>) -> Vec<reqwest::RequestBuilder> {
        bodies
            .into_iter()
            .map(|body| self.signed(key, "POST", "/api/v1/device/pop", body))
            .collect()
    }

    /// Sends one screen's uploads in order, each after the previous answer.
    async fn upload_chain(&self, uploads: Vec<reqwest::RequestBuilder>) -> Result<(), BenchError> {
        for upload in uploads {
            self.check(upload).await?;
        }
        Ok(())
    }
}

/// A temp dir removed on drop (no dev-dependency in the library).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn random_suffix() -> String {
    let mut raw = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

impl Fixture {
    /// Starts a server on a fresh database and enrolls `screens` screens.
    async fn start(db: &BenchDb, screens: usize) -> Result<Self, BenchError> {
        let data = TempDir(std::env::temp_dir().join(format!("ekran-bench-{}", random_suffix())));
        let mut config = Config::new(&data.0);
        let mut schema = None;
        if let BenchDb::Postgres(url) = db {
            let name = format!("ekran_bench_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(url).await.map_err(setup)?;
            sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
                .execute(&mut conn)
                .await
                .map_err(setup)?;
            let separator = if url.contains('?') { '&' } else { '?' };
            config.database_url =
                Some(format!("{url}{separator}options=-c%20search_path%3D{name}"));
            schema = Some((url.clone(), name));
        }
        let state = AppState::open(config).await.map_err(setup)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(setup)?;
        let base = format!("http://{}", listener.local_addr().map_err(setup)?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(super::serve(state.clone(), listener, async {
            let _ = stopped.await;
        }));
        let client = Client {
            http: reqwest::Client::new(),
            base,
        };
        let admin = auth::create_token(state.db(), Role::Admin, "bench")
            .await
            .map_err(setup)?
            .secret;
        let mut fixture = Self {
            state,
            client,
            screens: Vec::with_capacity(screens),
            stop: Some(stop),
            _data: data,
            schema,
        };
        let venue = serde_json::json!({"id": "bench-venue", "timezone": "Europe/Kyiv"});
        fixture
            .client
            .check(
                fixture
                    .client
                    .http
                    .post(format!("{}/api/v1/venues", fixture.client.base))
                    .bearer_auth(&admin)
                    .json(&venue),
            )
            .await?;
        for index in 0..screens.max(1) {
            let screen = BenchScreen {
                id: format!("bench-screen-{index}"),
                key: SigningKey::generate(&mut rand::rngs::OsRng),
            };
            fixture.enroll(&admin, &screen).await?;
            fixture.screens.push(screen);
        }
        Ok(fixture)
    }

    /// The first enrolled screen.
    fn screen(&self) -> &BenchScreen {
        &self.screens[0]
    }

    async fn enroll(&self, admin: &str, screen: &BenchScreen) -> Result<(), BenchError> {
        let client = &self.client;
        let body = serde_json::to_vec(&serde_json::json!({
            "public_key": crate::keys::verifying_key_to_pem(&screen.key.verifying_key())
        }))
        .map_err(setup)?;
        let pairing: serde_json::Value = client
            .check(client.signed(&screen.key, "POST", "/api/v1/enroll", body))
            .await?
            .json()
            .await
            .map_err(setup)?;
        let code = pairing["code"]
            .as_str()
            .ok_or_else(|| setup("no pairing code"))?;
        let approval = serde_json::json!({"venue": "bench-venue", "screen_id": screen.id});
        client
            .check(
                client
                    .http
                    .post(format!("{}/api/v1/pairings/{code}/approve", client.base))
                    .bearer_auth(admin)
                    .json(&approval),
            )
            .await?;
        Ok(())
    }

    /// Empties the tables ingest writes and puts every chain head back at
    /// genesis, so each timed run starts alike.
    async fn clear(&self) -> Result<(), BenchError> {
        let db = self.state.db();
        for table in [
            "pop_records",
            "airtime_daily",
            "audit_findings",
            "device_nonces",
        ] {
            let sql = match db.backend() {
                Backend::Postgres => format!("TRUNCATE {table}"),
                Backend::Sqlite => format!("DELETE FROM {table}"),
            };
            sqlx::query(&sql).execute(db.pool()).await.map_err(setup)?;
        }
        sqlx::query("UPDATE screens SET pop_acked_seq = 0, pop_acked_hash = $1")
            .bind(crate::pop::GENESIS_HASH)
            .execute(db.pool())
            .await
            .map_err(setup)?;
        Ok(())
    }

    /// Fails unless the server acknowledged all `count` records of `screen`.
    async fn expect_acked(&self, screen: &BenchScreen, count: usize) -> Result<(), BenchError> {
        let acked: i64 = sqlx::query_scalar("SELECT pop_acked_seq FROM screens WHERE id = $1")
            .bind(&screen.id)
            .fetch_one(self.state.db().pool())
            .await
            .map_err(setup)?;
        if acked != count as i64 {
            return Err(setup(format!(
                "ingest acknowledged {acked} of {count} records of {}",
                screen.id
            )));
        }
        Ok(())
    }

    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.db().close().await;
        if let Some((url, name)) = self.schema.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&url).await
        {
            let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// `count` chained records of one screen, signed with `key`.
fn make_records(
    screen_id: &str,
    key: &SigningKey,
    count: usize,
) -> Result<Vec<PlayRecord>, BenchError> {
    let start = jiff::Timestamp::now().as_millisecond() - count as i64 * 15_000;
    let mut prev = GENESIS_HASH.to_owned();
    let mut records = Vec::with_capacity(count);
    for index in 0..count {
        let seq = index as u64 + 1;
        let started = start + index as i64 * 15_000;
        let body = PlayBody {
            screen_id: screen_id.to_owned(),
            seq,
            play_id: format!("{:016x}", rand::random::<u64>()),
            item_id: format!("bench/item-{}", index % 7),
            campaign: format!("Bench campaign {}", index % 3),
            media_sha256: hex::encode([index as u8; 32]),
            manifest_version: 1,
            started_at_ms: started,
            ended_at_ms: started + 15_000,
            duration_ms: 15_000,
            frames_presented: 375,
            frames_dropped: 0,
            outcome: Outcome::Completed,
            stale: false,
        };
        let record = seal(body, &prev, key).map_err(setup)?;
        prev = record.hash.clone();
        records.push(record);
    }
    Ok(records)
}

/// Upload bodies: `records` cut into batches of `batch`.
fn batch_bodies(records: &[PlayRecord], batch: usize) -> Result<Vec<Vec<u8>>, BenchError> {
    records
        .chunks(batch)
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()
        .map_err(setup)
}

/// Records per second of `count` records in `elapsed`.
fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Ingest through HTTP, then the same rows by raw multi-row INSERTs (one
/// transaction per batch, like the endpoint), on a fresh database, in
/// `rounds` rounds: each round first times one screen's chain batch after
/// batch, then `screens` screens uploading at once (`records` split
/// between them) against the raw insert run both sequentially and with
/// the same concurrency. Every timed run starts on empty tables; the
/// uploads are signed before their run is timed (a box signs on its own
/// CPU; the server's work is what is measured).
pub async fn ingest(
    db: &BenchDb,
    records: usize,
    batch: usize,
    screens: usize,
    rounds: usize,
) -> Result<IngestResult, BenchError> {
    let batch = batch.clamp(1, super::ingest::MAX_BATCH_RECORDS);
    let screens = screens.max(1);
    // Screen 0 uploads alone; screens 1..=N form the fleet, each with its
    // own chain; the tables are emptied (chain heads back to zero) before
    // every timed run.
    let fixture = Fixture::start(db, screens + 1).await?;
    let lone = fixture.screen().clone();
    let all = make_records(&lone.id, &lone.key, records)?;
    let per_screen = records.div_ceil(screens);
    let fleet: Vec<(BenchScreen, Vec<PlayRecord>)> = fixture.screens[1..]
        .iter()
        .map(|screen| {
            Ok((
                screen.clone(),
                make_records(&screen.id, &screen.key, per_screen)?,
            ))
        })
        .collect::<Result<_, BenchError>>()?;

    // The checks alone, as the endpoint runs them (all cores).
    let key = lone.key.verifying_key();
    let started = Instant::now();
    let checks = verify_all(&all, &key, batch);
    let verify = started.elapsed();
    if let Some(Err(error)) = checks.into_iter().find(Result::is_err) {
        return Err(setup(format!("a bench record does not verify: {error}")));
    }

    // Upload bodies are serialised once; each round signs copies of them.
    let lone_bodies = batch_bodies(&all, batch)?;
    let fleet: Vec<FleetScreen> = fleet
        .into_iter()
        .map(|(screen, records)| {
            let bodies = batch_bodies(&records, batch)?;
            Ok((screen, records.into(), bodies))
        })
        .collect::<Result<_, BenchError>>()?;
    let mut timed = Vec::with_capacity(rounds.max(1));
    for _ in 0..rounds.max(1) {
        timed.push(ingest_round(&fixture, (&lone, &all, &lone_bodies), &fleet, batch).await?);
    }
    fixture.finish().await;
    Ok(IngestResult {
        records,
        batch,
        verify_per_sec: rate(records, verify),
        rounds: timed,
    })
}

/// A fleet screen of the ingest benchmark: its chain (shared with the raw
/// insert tasks) and the chain's upload bodies.
type FleetScreen = (BenchScreen, Arc<[PlayRecord]>, Vec<Vec<u8>>);

/// One round of [`ingest`]: one screen through the endpoint and raw, then
/// the fleet through the endpoint, raw one after another and raw at once.
async fn ingest_round(
    fixture: &Fixture,
    (lone, all, bodies): (&BenchScreen, &[PlayRecord], &[Vec<u8>]),
    fleet: &[FleetScreen],
    batch: usize,
) -> Result<IngestRound, BenchError> {
    // One screen.
    fixture.clear().await?;
    let uploads = fixture.client.uploads(&lone.key, bodies.to_vec());
    let started = Instant::now();
    fixture.client.upload_chain(uploads).await?;
    let http = started.elapsed();
    fixture.expect_acked(lone, all.len()).await?;
    fixture.clear().await?;
    let raw = raw_sequential(fixture, [all], batch).await?;

    // The fleet.
    fixture.clear().await?;
    let uploads = fleet
        .iter()
        .map(|(screen, _, bodies)| {
            let uploads = fixture.client.uploads(&screen.key, bodies.clone());
            let client = fixture.client.clone();
            async move { client.upload_chain(uploads).await }
        })
        .collect::<Vec<_>>();
    let started = Instant::now();
    let tasks: Vec<_> = uploads.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        task.await.map_err(setup)??;
    }
    let fleet_http = started.elapsed();
    for (screen, records, _) in fleet {
        fixture.expect_acked(screen, records.len()).await?;
    }
    fixture.clear().await?;
    let fleet_raw_sequential =
        raw_sequential(fixture, fleet.iter().map(|(_, r, _)| &r[..]), batch).await?;
    fixture.clear().await?;
    let inserts: Vec<_> = fleet
        .iter()
        .map(|(_, records, _)| {
            let db = fixture.state.db().clone();
            let records = Arc::clone(records);
            async move { raw_batches(&db, &records, batch).await }
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = inserts.into_iter().map(tokio::spawn).collect();
    for task in tasks {
        task.await.map_err(setup)??;
    }
    let fleet_raw_concurrent = started.elapsed();
    fixture.clear().await?;
    let fleet_records: usize = fleet.iter().map(|(_, records, _)| records.len()).sum();
    Ok(IngestRound {
        http_per_sec: rate(all.len(), http),
        raw_per_sec: rate(all.len(), raw),
        fleet: FleetResult {
            screens: fleet.len(),
            records: fleet_records,
            http_per_sec: rate(fleet_records, fleet_http),
            raw_sequential_per_sec: rate(fleet_records, fleet_raw_sequential),
            raw_concurrent_per_sec: rate(fleet_records, fleet_raw_concurrent),
        },
    })
}

/// Times the raw insert of every chain's batches, one transaction after another.
async fn raw_sequential<'a>(
    fixture: &Fixture,
    chains: impl IntoIterator<Item = &'a [PlayRecord]>,
    batch: usize,
) -> Result<Duration, BenchError> {
    let chains: Vec<&[PlayRecord]> = chains.into_iter().collect();
    let started = Instant::now();
    for records in chains {
        raw_batches(fixture.state.db(), records, batch).await?;
    }
    Ok(started.elapsed())
}

/// The baseline: `records` straight into `pop_records`, one transaction
/// per batch of `batch`, each batch in as few multi-row INSERTs as the
/// backend's parameter limit allows (one for the default 500 records): the
/// fastest plain bulk insert, not the endpoint's statement size (on SQLite
/// 25 rows per statement inserted about 30 % fewer rows per second than
/// one statement per batch).
async fn raw_batches(db: &Db, records: &[PlayRecord], batch: usize) -> Result<(), BenchError> {
    for chunk in records.chunks(batch) {
        let mut tx = db.begin_write().await.map_err(setup)?;
        for rows in chunk.chunks(db.max_statement_rows(super::ingest::RECORD_COLUMNS)) {
            raw_insert(&mut tx, rows, "bench-venue").await?;
        }
        tx.commit().await.map_err(setup)?;
    }
    Ok(())
}

async fn raw_insert(
    tx: &mut super::db::WriteTx,
    rows: &[PlayRecord],
    venue: &str,
) -> Result<(), BenchError> {
    const COLUMNS: usize = super::ingest::RECORD_COLUMNS;
    let mut sql = String::from(
        "INSERT INTO pop_records (screen_id, seq, play_id, item_id, campaign, media_sha256, manifest_version, \
         started_at_ms, ended_at_ms, duration_ms, frames_presented, frames_dropped, outcome, stale, prev_hash, hash, \
         signature, venue_id, day, received_at_ms) VALUES ",
    );
    super::db::push_placeholders(&mut sql, tx.backend(), rows.len(), COLUMNS);
    let mut query = sqlx::query(&sql);
    for record in rows {
        let body = &record.body;
        query = query
            .bind(&body.screen_id)
            .bind(body.seq as i64)
            .bind(&body.play_id)
            .bind(&body.item_id)
            .bind(&body.campaign)
            .bind(&body.media_sha256)
            .bind(body.manifest_version as i64)
            .bind(body.started_at_ms)
            .bind(body.ended_at_ms)
            .bind(body.duration_ms as i64)
            .bind(body.frames_presented as i64)
            .bind(body.frames_dropped as i64)
            .bind("completed")
            .bind(i64::from(body.stale))
            .bind(&record.prev_hash)
            .bind(&record.hash)
            .bind(&record.signature)
            .bind(venue)
            .bind("2026-01-01")
            .bind(0i64);
    }
    query.execute(&mut *tx.tx).await.map_err(setup)?;
    Ok(())
}

/// Signed manifest fetches that the server answers with 304.
pub async fn manifest_304(
    db: &BenchDb,
    requests: usize,
    concurrency: usize,
) -> Result<ManifestResult, BenchError> {
    let concurrency = concurrency.max(1);
    let fixture = Fixture::start(db, 1).await?;
    let key = fixture.screen().key.clone();
    let first = fixture
        .client
        .check(
            fixture
                .client
                .signed(&key, "GET", "/api/v1/device/manifest", Vec::new()),
        )
        .await?;
    let etag = first
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| setup("manifest without ETag"))?
        .to_owned();
    let started = Instant::now();
    let mut remaining = requests;
    while remaining > 0 {
        let round = remaining.min(concurrency);
        remaining -= round;
        let fetches = (0..round).map(|_| {
            let request = fixture
                .client
                .signed(&key, "GET", "/api/v1/device/manifest", Vec::new())
                .header("if-none-match", &etag);
            async move {
                let response = request.send().await.map_err(setup)?;
                if response.status() == reqwest::StatusCode::NOT_MODIFIED {
                    Ok(())
                } else {
                    Err(setup(format!("expected 304, got {}", response.status())))
                }
            }
        });
        for result in futures_util::future::join_all(fetches).await {
            result?;
        }
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    fixture.finish().await;
    Ok(ManifestResult {
        requests,
        concurrency,
        per_sec: requests as f64 / elapsed.as_secs_f64(),
    })
}

/// Results of the report benchmark.
#[derive(Debug, Clone)]
pub struct ReportResult {
    /// Plays in the database.
    pub plays: usize,
    /// Rows the report returned.
    pub rows: usize,
    /// Best time of the report from the rollups.
    pub rollup: Duration,
    /// Best time of the same figures by GROUP BY over the raw records.
    pub raw: Duration,
}

impl ReportResult {
    /// How many times faster the rollup answers (target ≥ 100 at 10 M plays).
    pub fn speedup(&self) -> f64 {
        self.raw.as_secs_f64() / self.rollup.as_secs_f64().max(1e-9)
    }
}

/// Fills a fresh database with `plays` synthetic records (50 screens, 5
/// campaigns, 28 days) and their rollups, then times the airtime report
/// from the rollups against the raw GROUP BY (best of three each).
pub async fn report(db: &BenchDb, plays: usize) -> Result<ReportResult, BenchError> {
    let fixture = Fixture::start(db, 1).await?;
    let pool = fixture.state.db().pool();
    let day = "CASE WHEN i % 28 < 9 THEN '2026-02-0' || ((i % 28) + 1) ELSE '2026-02-' || ((i % 28) + 1) END";
    let insert = format!(
        "INSERT INTO pop_records (screen_id, seq, play_id, item_id, campaign, media_sha256, manifest_version, \
         started_at_ms, ended_at_ms, duration_ms, frames_presented, frames_dropped, outcome, stale, prev_hash, hash, \
         signature, venue_id, day, received_at_ms) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {plays}) \
         SELECT 'bench-' || (i % 50), i, 'p' || i, 'item', 'Campaign ' || (i % 5), 'sha', 1, i, i + 15000, 15000, 375, 0, \
         CASE WHEN i % 10 = 0 THEN 'interrupted' ELSE 'completed' END, 0, 'prev', 'hash', 'sig', \
         'venue-' || (i % 7), {day}, 0 FROM n"
    );
    sqlx::query(&insert).execute(pool).await.map_err(setup)?;
    sqlx::query(
        "INSERT INTO airtime_daily (venue_id, campaign, day, screen_id, duration_ms, plays, completed_plays, \
         verified_duration_ms, verified_plays) \
         SELECT venue_id, campaign, day, screen_id, SUM(duration_ms), COUNT(*), \
         SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END), SUM(duration_ms), COUNT(*) \
         FROM pop_records GROUP BY venue_id, campaign, day, screen_id",
    )
    .execute(pool)
    .await
    .map_err(setup)?;
    let from = jiff::civil::date(2026, 2, 1);
    let to = jiff::civil::date(2026, 2, 28);
    let query = super::reports::AirtimeQuery {
        from,
        to,
        venue: None,
        campaign: None,
    };
    let mut rollup = Duration::MAX;
    let mut raw = Duration::MAX;
    let mut rows = 0;
    for _ in 0..3 {
        let started = Instant::now();
        rows = super::reports::airtime(fixture.state.db(), &query)
            .await
            .map_err(|e| setup(e.to_string()))?
            .len();
        rollup = rollup.min(started.elapsed());
        let started = Instant::now();
        let raw_rows = sqlx::query(
            "SELECT day, venue_id, campaign, CAST(SUM(duration_ms) AS BIGINT) AS duration_ms, COUNT(*) AS plays, \
             CAST(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed_plays, \
             COUNT(DISTINCT screen_id) AS screens FROM pop_records WHERE day >= $1 AND day <= $2 \
             GROUP BY day, venue_id, campaign ORDER BY day, venue_id, campaign",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(pool)
        .await
        .map_err(setup)?;
        raw = raw.min(started.elapsed());
        if raw_rows.len() != rows {
            return Err(setup(format!(
                "raw GROUP BY gave {} rows, the rollup report {rows}",
                raw_rows.len()
            )));
        }
    }
    fixture.finish().await;
    Ok(ReportResult {
        plays,
        rows,
        rollup,
        raw,
    })
}

/// Checks every record's hash and signature, spread over the CPU cores, as
/// the endpoint checks them: upload by upload of `batch` records, through
/// the key's [`PreparedKey`](crate::prepared_key::PreparedKey) (built once,
/// as the endpoint keeps the tables of recent keys) for uploads that the
/// endpoint checks through one. The cost of strict verification alone, as
/// `ekran bench ingest` reports it.
fn verify_all(
    records: &[PlayRecord],
    key: &ed25519_dalek::VerifyingKey,
    batch: usize,
) -> Vec<Result<(), crate::pop::PopError>> {
    let prepared = crate::prepared_key::PreparedKey::new(key);
    let check_part = |part: &[PlayRecord]| -> Vec<Result<(), crate::pop::PopError>> {
        part.chunks(batch.max(1))
            .flat_map(|upload| {
                if upload.len() >= super::ingest::PREPARE_KEY_FROM {
                    // In chunks, as the endpoint's checking threads take them.
                    upload
                        .chunks(super::ingest::CHECK_CHUNK)
                        .flat_map(|chunk| crate::pop::verify_records(chunk, &prepared))
                        .collect::<Vec<_>>()
                } else {
                    upload.iter().map(|r| r.verify(key)).collect()
                }
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if threads == 1 || records.len() < 64 {
        return check_part(records);
    }
    // Whole uploads per thread, as each upload is checked on one thread.
    let per_thread = records.len().div_ceil(threads).div_ceil(batch.max(1)) * batch.max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = records
            .chunks(per_thread)
            .map(|part| scope.spawn(move || check_part(part)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
