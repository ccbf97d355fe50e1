//! Proof-of-play ingest (SPEC §6): a screen's batch of signed, chained
//! records is verified against the screen's enrolled key, stored exactly
//! once per (screen, seq), linked into the screen's chain, and rolled up
//! into daily airtime. Gaps, forks, broken links and bad signatures become
//! audit findings instead of being hidden.
//!
//! Idempotence and concurrency: an upload's transaction first takes the
//! screen's write lock (PostgreSQL: its `screens` row `FOR UPDATE`; SQLite:
//! the single writer), then reads which of the batch's seqs are stored and
//! inserts only the others (the table's primary key would fail the upload
//! rather than store one twice), so only rows this call really inserted
//! feed the rollups and the chain head (`screens.pop_acked_*`);
//! concurrent or repeated uploads of the same batch store and count each
//! record once.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::AppState;
use super::db::{Backend, WriteTx, get_u64, now_ms, push_placeholders, to_i64};
use super::device::{DeviceScreen, SignatureCheck};
use super::error::AppError;
use crate::pop::{Outcome, PlayRecord, PopError};
use crate::prepared_key::PreparedKey;

/// Columns of a `pop_records` row.
pub const RECORD_COLUMNS: usize = 20;
/// Largest batch accepted in one request.
pub const MAX_BATCH_RECORDS: usize = 5000;
/// How many records one chain-advance step reads.
const ADVANCE_STEP: i64 = 2000;

/// Kinds of audit findings as stored and listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Records missing before later ones arrived (resolved when they arrive).
    Gap,
    /// A different record for a seq already stored (or twice in a batch).
    Fork,
    /// A record whose `prev_hash` is not its predecessor's hash.
    BrokenLink,
    /// Hash malformed or not matching the content.
    BadHash,
    /// Signature malformed or not by the screen's key.
    BadSignature,
}

impl FindingKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::Fork => "fork",
            Self::BrokenLink => "broken_link",
            Self::BadHash => "bad_hash",
            Self::BadSignature => "bad_signature",
        }
    }
}

/// A finding raised by one ingest call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewFinding {
    /// What is wrong.
    pub kind: FindingKind,
    /// The seq it concerns (the first missing one for gaps).
    pub seq: u64,
    /// Human description.
    pub detail: String,
}

/// The answer to a PoP upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestAck {
    /// Highest seq such that 1..=seq are stored and chained: the box may
    /// drop these from its journal.
    pub acked_seq: u64,
    /// Records stored by this call.
    pub stored: u64,
    /// Records already stored (identical re-uploads).
    pub duplicates: u64,
    /// Records refused (bad hash, bad signature, fork).
    pub rejected: u64,
    /// Findings raised by this call.
    pub findings: Vec<NewFinding>,
}

/// The local date (venue time zone) a play is credited to: the day it started.
pub fn local_day(started_at_ms: i64, tz: &jiff::tz::TimeZone) -> Result<String, AppError> {
    let instant = jiff::Timestamp::from_millisecond(started_at_ms)
        .map_err(|_| start_out_of_range(started_at_ms))?;
    Ok(instant.to_zoned(tz.clone()).date().to_string())
}

/// Why a play cannot be credited to a day (the only way [`local_day`] fails).
fn start_out_of_range(started_at_ms: i64) -> AppError {
    AppError::BadRequest(format!("started_at_ms {started_at_ms} is out of range"))
}

/// Verifies, stores and chains one upload (a JSON array of records) from
/// a screen, once the request's `signature` holds (the body is parsed
/// while it is checked; nothing else happens before). The request's nonce
/// is spent in the same transaction: a replay is refused (401) and an
/// upload that fails leaves neither records nor a spent nonce behind.
///
/// Checking signatures overlaps reading the upload and writing it: the
/// records go to the checking threads in small chunks as they are read
/// (see [`Checks`]), and while the checks run the transaction is opened
/// and the rows are written ahead of their verdicts, the first record of
/// each seq not stored yet. The verdicts then decide what is kept: a row
/// whose record failed its checks is deleted again (and a later valid
/// record of its seq written instead) before the one commit, so only
/// records whose hash and signature verified are ever committed. Writing
/// ahead keeps the database's round trips off the checks' schedule (with
/// rows inserted only as their verdicts came in, the upload's transaction
/// spent most of its time waiting for either; measured on a 2-core box,
/// SQLite uploads went a few percent faster). Which of the batch's seqs
/// are stored already is read once, up front, so that the inserts need
/// not return rows.
pub async fn ingest(
    state: &AppState,
    screen: &DeviceScreen,
    body: &[u8],
    signature: SignatureCheck,
) -> Result<IngestAck, AppError> {
    let tz = jiff::tz::TimeZone::get(&screen.timezone).map_err(AppError::internal)?;
    let mut checks = Checks::new(screen.key);
    // Read while the request's signature is checked; a refused signature
    // is the answer whatever the body holds.
    let read = read_batch(body, screen, &mut checks, &signature);
    let nonce = signature.wait().await?;
    let mut batch = read?;
    batch.dispatch_held(&mut checks);
    let db = state.db();
    let mut tx = db.begin_write().await?;
    nonce.spend(&mut *tx.tx).await?;
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let head = sqlx::query(&format!(
        "SELECT pop_acked_seq, pop_acked_hash FROM screens WHERE id = $1{lock}"
    ))
    .bind(&screen.id)
    .fetch_one(&mut *tx.tx)
    .await?;
    let mut acked_seq = get_u64(&head, "pop_acked_seq")?;
    let mut acked_hash: String = head.try_get("pop_acked_hash")?;
    // What is already stored of this batch's seqs: on both backends no other
    // upload of this screen writes until this transaction ends (SQLite has
    // one writer, PostgreSQL holds the screen's row lock taken above).
    let seqs: Vec<u64> = batch.iter().map(|record| record.body.seq).collect();
    let stored = stored_hashes(&mut tx, &screen.id, &seqs).await?;

    // 1. Write ahead of the verdicts: the first record of each seq that is
    // not stored yet (and whose start has a local day).
    let now = now_ms();
    let days: Vec<Option<String>> = batch
        .iter()
        .map(|record| local_day(record.body.started_at_ms, &tz).ok())
        .collect();
    let flush_rows = insert_rows_per_statement(db);
    let mut written: HashMap<u64, usize> = HashMap::with_capacity(batch.len);
    let mut seen: HashSet<u64> = HashSet::with_capacity(batch.len);
    let mut writer = Inserter::Idle(tx);
    let mut rows: Vec<NewRow<'_>> = Vec::with_capacity(flush_rows);
    for (ordinal, record) in batch.iter().enumerate() {
        let seq = record.body.seq;
        if !seen.insert(seq) || stored.contains_key(&seq) {
            continue;
        }
        let Some(day) = days[ordinal].as_deref() else {
            continue;
        };
        written.insert(seq, ordinal);
        rows.push(NewRow { record, day });
        if rows.len() == flush_rows {
            writer = writer.insert(screen, &rows, now).await?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        writer = writer.insert(screen, &rows, now).await?;
    }

    // 2. The verdicts, in upload order. Keep the first valid record per seq
    // (a different one later in the batch is a fork); a record already
    // stored is a duplicate, or a fork if it differs; the others are to be
    // stored.
    let mut findings = Vec::new();
    let mut valid: BTreeMap<u64, usize> = BTreeMap::new();
    // The seqs this call stores (once step 3 has made the rows match).
    let mut inserted: Vec<u64> = Vec::with_capacity(batch.len);
    let mut duplicates = 0;
    let mut received = 0;
    for (index, chunk) in batch.chunks.iter().enumerate() {
        // `None`: the checking threads ended without handing over every
        // record (one panicked); reported below.
        let Some(verdicts) = checks.recv().await else {
            break;
        };
        for (offset, (record, verdict)) in chunk.iter().zip(verdicts).enumerate() {
            let ordinal = index * CHECK_CHUNK + offset;
            received += 1;
            let seq = record.body.seq;
            if let Err(error) = verdict {
                findings.push(check_finding(seq, &error));
                continue;
            }
            if days[ordinal].is_none() {
                // A valid record must be credited to a day.
                return Err(start_out_of_range(record.body.started_at_ms));
            }
            match valid.get(&seq) {
                Some(&first) if batch.get(first).hash != record.hash => {
                    findings.push(NewFinding {
                        kind: FindingKind::Fork,
                        seq,
                        detail: format!(
                            "batch carries two different records for seq {seq} ({} and {})",
                            batch.get(first).hash,
                            record.hash
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    match stored.get(&seq) {
                        Some(hash) if *hash == record.hash => duplicates += 1,
                        Some(hash) => findings.push(NewFinding {
                            kind: FindingKind::Fork,
                            seq,
                            detail: format!("a different record for seq {seq} is already stored ({hash}); refused {}", record.hash),
                        }),
                        None => inserted.push(seq),
                    }
                    valid.insert(seq, ordinal);
                }
            }
        }
    }
    if received != batch.len {
        return Err(AppError::internal(format!(
            "proof-of-play checks stopped after {received} of {} records",
            batch.len
        )));
    }

    // A valid record and its day (every valid record has one, see above).
    let kept = |seq: &u64| {
        let ordinal = valid[seq];
        (
            batch.get(ordinal),
            days[ordinal].as_deref().unwrap_or_default(),
        )
    };

    // 3. Make the written rows the kept ones: nothing to do unless a record
    // was refused (every such record raised a finding). A row written for a
    // seq is kept when it is that seq's first valid record (stored seqs
    // were never written).
    let mut tx = writer.finish().await?;
    if !findings.is_empty() {
        let refused: Vec<u64> = written
            .iter()
            .filter(|&(seq, ordinal)| valid.get(seq) != Some(ordinal))
            .map(|(seq, _)| *seq)
            .collect();
        delete_records(&mut tx, &screen.id, &refused).await?;
        let unwritten: Vec<NewRow<'_>> = inserted
            .iter()
            .filter(|seq| written.get(seq) != valid.get(seq))
            .map(|seq| {
                let (record, day) = kept(seq);
                NewRow { record, day }
            })
            .collect();
        let mut writer = Inserter::Idle(tx);
        for rows in unwritten.chunks(flush_rows) {
            writer = writer.insert(screen, rows, now).await?;
        }
        tx = writer.finish().await?;
    }
    // Every finding so far refused a record: a failed check or a fork.
    let rejected = findings.len() as u64;

    // 4. Rollup cells (venue, campaign, local day): totals of the new rows,
    // and the verified share of every record the chain head passes.
    // 5. Advance the verified chain head as far as records link. Fast path
    // in memory over the rows this call stored (the usual upload continues
    // the chain), in the same pass as the totals; then the database, for
    // rows stored earlier beyond a gap that this batch closed. The same
    // scan finds the next stored record beyond the head, which tells
    // whether a gap remains.
    let mut cells: HashMap<CellKey<'_>, (Rollup, Rollup)> = HashMap::new();
    let before = acked_seq;
    let mut linking = true;
    for (&seq, &ordinal) in &valid {
        if stored.contains_key(&seq) {
            // Not stored by this call: the head stops short of it.
            linking &= seq <= acked_seq;
            continue;
        }
        let record = batch.get(ordinal);
        let day = days[ordinal].as_deref().unwrap_or_default();
        let sums = cells
            .entry(cell(&screen.venue_id, record, day))
            .or_default();
        sums.0.add(record.body.duration_ms, record.body.outcome);
        if linking && seq > acked_seq {
            if seq == acked_seq + 1 && record.prev_hash == acked_hash {
                acked_seq = seq;
                acked_hash.clone_from(&record.hash);
                sums.1.add(record.body.duration_ms, record.body.outcome);
            } else {
                linking = false;
            }
        }
    }
    let mut beyond_fast_path = false;
    let mut next_stored: Option<u64> = None;
    'scan: loop {
        let rows = sqlx::query(&format!(
            "SELECT seq, prev_hash, hash, duration_ms, outcome, campaign, day, venue_id FROM pop_records \
             WHERE screen_id = $1 AND seq > $2 ORDER BY seq LIMIT {ADVANCE_STEP}"
        ))
        .bind(&screen.id)
        .bind(to_i64(acked_seq))
        .fetch_all(&mut *tx.tx)
        .await?;
        beyond_fast_path |= !rows.is_empty();
        for row in &rows {
            let seq = get_u64(row, "seq")?;
            let prev_hash: String = row.try_get("prev_hash")?;
            if seq != acked_seq + 1 {
                next_stored = Some(seq);
                break 'scan;
            }
            if prev_hash != acked_hash {
                findings.push(NewFinding {
                    kind: FindingKind::BrokenLink,
                    seq,
                    detail: format!("record seq {seq} links to {prev_hash}, but record {acked_seq} has hash {acked_hash}"),
                });
                next_stored = Some(seq);
                break 'scan;
            }
            acked_seq = seq;
            acked_hash = row.try_get("hash")?;
            let outcome: String = row.try_get("outcome")?;
            cells
                .entry((
                    Cow::Owned(row.try_get("venue_id")?),
                    Cow::Owned(row.try_get("campaign")?),
                    Cow::Owned(row.try_get("day")?),
                ))
                .or_default()
                .1
                .add(get_u64(row, "duration_ms")?, outcome_from_str(&outcome));
        }
        if rows.len() < ADVANCE_STEP as usize {
            break;
        }
    }
    add_rollups(&mut tx, db.backend(), &screen.id, cells).await?;
    if acked_seq != before {
        sqlx::query("UPDATE screens SET pop_acked_seq = $1, pop_acked_hash = $2 WHERE id = $3")
            .bind(to_i64(acked_seq))
            .bind(&acked_hash)
            .bind(&screen.id)
            .execute(&mut *tx.tx)
            .await?;
        // An open gap finding names the first missing seq and was raised
        // while a record beyond it was already stored; records are never
        // deleted. So when the scan past the fast path found nothing, the
        // head moved only over rows this call stored and no stored record
        // lies beyond it: no open gap can exist below the new head.
        if beyond_fast_path {
            sqlx::query("UPDATE audit_findings SET resolved_at_ms = $1 WHERE screen_id = $2 AND kind = 'gap' AND seq <= $3 AND resolved_at_ms IS NULL")
                .bind(now)
                .bind(&screen.id)
                .bind(to_i64(acked_seq))
                .execute(&mut *tx.tx)
                .await?;
        }
    }

    // 6. A hole between the chain head and stored later records is a gap.
    if let Some(next) = next_stored
        && next > acked_seq + 1
    {
        findings.push(NewFinding {
            kind: FindingKind::Gap,
            seq: acked_seq + 1,
            detail: format!("records {}..={} are missing", acked_seq + 1, next - 1),
        });
    }

    for finding in &findings {
        // One open finding per (screen, kind, seq): re-uploads do not multiply them.
        let result = sqlx::query(
            "INSERT INTO audit_findings (screen_id, kind, seq, detail, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (screen_id, kind, seq) DO NOTHING",
        )
        .bind(&screen.id)
        .bind(finding.kind.as_str())
        .bind(to_i64(finding.seq))
        .bind(&finding.detail)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        if result.rows_affected() == 1 {
            tracing::warn!(screen = %screen.id, kind = finding.kind.as_str(), seq = finding.seq, detail = %finding.detail, "proof-of-play finding");
        }
    }
    tx.commit().await?;
    state.metrics().pop_records_ingested(inserted.len() as u64);
    Ok(IngestAck {
        acked_seq,
        stored: inserted.len() as u64,
        duplicates,
        rejected,
        findings,
    })
}

/// Records checked per task on the blocking pool: small enough that the
/// first rows reach the database soon, large enough to be worth a handoff.
pub(crate) const CHECK_CHUNK: usize = 32;

/// Uploads of at least this many records are checked through a
/// [`PreparedKey`] (its tables cost about what 16 plain checks do);
/// smaller ones, the usual upload after each play, check each signature
/// on its own.
pub(crate) const PREPARE_KEY_FROM: usize = 16;

/// An upload's records, in upload order, in the chunks they were checked
/// in (each [`CHECK_CHUNK`] records but the last).
struct Batch {
    chunks: Vec<Arc<Vec<PlayRecord>>>,
    len: usize,
    /// How many of the chunks went to the checks (the others wait for the
    /// request's signature).
    dispatched: usize,
}

impl Batch {
    /// Hands the chunks not checked yet to `checks`.
    fn dispatch_held(&mut self, checks: &mut Checks) {
        for chunk in &self.chunks[self.dispatched..] {
            checks.dispatch(Arc::clone(chunk));
        }
        self.dispatched = self.chunks.len();
    }

    /// The record at `ordinal` (its index in the upload).
    fn get(&self, ordinal: usize) -> &PlayRecord {
        &self.chunks[ordinal / CHECK_CHUNK][ordinal % CHECK_CHUNK]
    }

    fn iter(&self) -> impl Iterator<Item = &PlayRecord> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }
}

/// A row to insert: a record and the local day it is credited to.
struct NewRow<'a> {
    record: &'a PlayRecord,
    day: &'a str,
}

/// A rollup cell: venue, campaign, local day.
type CellKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

fn cell<'a>(venue: &'a str, record: &'a PlayRecord, day: &'a str) -> CellKey<'a> {
    (
        Cow::Borrowed(venue),
        Cow::Borrowed(&record.body.campaign),
        Cow::Borrowed(day),
    )
}

/// The finding for a record whose own checks failed.
fn check_finding(seq: u64, error: &PopError) -> NewFinding {
    let kind = match error {
        PopError::BadSignature { .. } | PopError::MalformedSignature { .. } => {
            FindingKind::BadSignature
        }
        _ => FindingKind::BadHash,
    };
    NewFinding {
        kind,
        seq,
        detail: error.to_string(),
    }
}

/// Reads an upload's JSON array record by record and, once the request's
/// `signature` holds, hands every [`CHECK_CHUNK`] records to `checks` as
/// soon as they are read, so that checking starts while the rest is
/// parsed (chunks read before are held, see [`Batch::dispatch_held`]).
/// Stops early when the signature fails. Refuses records that name
/// another screen or a seq out of range, and uploads over
/// [`MAX_BATCH_RECORDS`].
fn read_batch(
    body: &[u8],
    screen: &DeviceScreen,
    checks: &mut Checks,
    signature: &SignatureCheck,
) -> Result<Batch, AppError> {
    let mut reader = BatchReader {
        screen,
        checks,
        signature,
        batch: Batch {
            chunks: Vec::new(),
            len: 0,
            dispatched: 0,
        },
        chunk: Vec::with_capacity(CHECK_CHUNK),
        refused: None,
    };
    let mut json = serde_json::Deserializer::from_slice(body);
    let read =
        serde::Deserializer::deserialize_seq(&mut json, &mut reader).and_then(|()| json.end());
    if let Some(refused) = reader.refused.take() {
        return Err(refused);
    }
    read.map_err(|e| {
        AppError::BadRequest(format!(
            "invalid proof-of-play batch (expected a JSON array of records): {e}"
        ))
    })?;
    if !reader.chunk.is_empty() {
        reader.hand_over(Vec::new())?;
    }
    Ok(reader.batch)
}

/// State of [`read_batch`]: a serde visitor over the upload's array.
struct BatchReader<'a> {
    screen: &'a DeviceScreen,
    checks: &'a mut Checks,
    signature: &'a SignatureCheck,
    batch: Batch,
    chunk: Vec<PlayRecord>,
    /// Why a well-formed record was refused (reading stops there).
    refused: Option<AppError>,
}

impl BatchReader<'_> {
    fn admit(&mut self, record: PlayRecord) -> Result<(), AppError> {
        let seq = record.body.seq;
        if self.batch.len == MAX_BATCH_RECORDS {
            return Err(AppError::PayloadTooLarge(format!(
                "batch is over the limit of {MAX_BATCH_RECORDS} records; split it"
            )));
        }
        if record.body.screen_id != self.screen.id {
            return Err(AppError::BadRequest(format!(
                "record seq {seq} names screen {:?}, but the request is signed by screen {:?}",
                record.body.screen_id, self.screen.id
            )));
        }
        if seq == 0 || seq > i64::MAX as u64 {
            return Err(AppError::BadRequest(format!(
                "record seq {seq} is out of range (1..2^63)"
            )));
        }
        self.batch.len += 1;
        self.chunk.push(record);
        if self.chunk.len() == CHECK_CHUNK {
            self.hand_over(Vec::with_capacity(CHECK_CHUNK))?;
        }
        Ok(())
    }

    /// Keeps the chunk read so far in the batch, going on with `next`, and
    /// sends it to the checks (with any held before) once the request's
    /// signature holds. Refuses to read on when the signature fails.
    fn hand_over(&mut self, next: Vec<PlayRecord>) -> Result<(), AppError> {
        let chunk = Arc::new(std::mem::replace(&mut self.chunk, next));
        self.batch.chunks.push(chunk);
        match self.signature.settled() {
            Some(true) => self.batch.dispatch_held(self.checks),
            Some(false) => {
                return Err(AppError::Unauthorized(
                    "device request signature does not verify".into(),
                ));
            }
            None => {}
        }
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for &mut BatchReader<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON array of proof-of-play records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut array: A) -> Result<(), A::Error> {
        while let Some(record) = array.next_element::<PlayRecord>()? {
            if let Err(refused) = self.admit(record) {
                self.refused = Some(refused);
                return Err(serde::de::Error::custom("record refused"));
            }
        }
        Ok(())
    }
}

/// One upload's checks: its records are checked chunk by chunk, in order,
/// and come back in the upload's order (the first valid record of a seq is
/// the one kept, so order matters). The checking threads, on the blocking
/// pool, serve every upload: at most as many as there are cores, taking
/// chunks in the order they were queued ([`CheckQueue`]). A thread ends
/// when no chunk is waiting; the next chunk starts another. Dropping this
/// tells the threads to skip what is left of the upload.
///
/// With threads of each upload's own, four screens uploading at once ran
/// eight checking threads on the 2-core development box beside the
/// database's, and switching between them cost throughput: sharing them
/// took the four-screen ratios against the raw insert from about 0.57 to
/// about 0.60 on SQLite and from about 0.51 to about 0.54 on PostgreSQL
/// (one screen's were unchanged). A chunk of a small upload may now wait
/// behind a large upload's queued chunks: a few milliseconds at most.
///
/// The threads run at normal priority but yield the core after each chunk:
/// a database round trip of an upload that wakes behind a checking thread
/// then runs within a chunk's time (about 0.2 ms) instead of after the
/// thread's time slice (a few ms). On the 2-core development box this took
/// one screen's SQLite uploads from a ratio of about 0.47 to about 0.51
/// and four screens' from about 0.50 to about 0.56 against the raw insert.
/// At `SCHED_IDLE` they let the upload's database round trips go first (on
/// 2 cores `BEGIN IMMEDIATE` often waited 1.4 ms for a core behind them;
/// the one-screen SQLite ratio went from 0.51 to 0.54), but on a loaded
/// host the checks then starved while the upload's transaction held
/// SQLite's write lock, and other writers failed with "database is locked"
/// after the 10 s busy timeout.
struct Checks {
    key: ed25519_dalek::VerifyingKey,
    /// The key's tables: the cached ones of a recent upload, else built (and
    /// cached) by the first thread that needs them.
    prepared: Arc<std::sync::OnceLock<Arc<PreparedKey>>>,
    dispatched: usize,
    pending: VecDeque<tokio::sync::oneshot::Receiver<Vec<Result<(), PopError>>>>,
    stop: Arc<AtomicBool>,
}

/// The chunks of all uploads not yet taken by a checking thread, in the
/// order they were queued, and how many checking threads run.
#[derive(Default)]
struct CheckQueue {
    jobs: VecDeque<Box<dyn FnOnce() + Send>>,
    threads: usize,
}

impl CheckQueue {
    /// The process's queue.
    fn shared() -> &'static Mutex<CheckQueue> {
        static QUEUE: std::sync::OnceLock<Mutex<CheckQueue>> = std::sync::OnceLock::new();
        QUEUE.get_or_init(Mutex::default)
    }
}

impl Checks {
    fn new(key: ed25519_dalek::VerifyingKey) -> Self {
        let prepared = std::sync::OnceLock::new();
        if let Some(cached) = PreparedKeys::get(&key) {
            let _ = prepared.set(cached);
        }
        Self {
            key,
            prepared: Arc::new(prepared),
            dispatched: 0,
            pending: VecDeque::new(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Queues the next chunk of the upload for checking.
    fn dispatch(&mut self, chunk: Arc<Vec<PlayRecord>>) {
        self.dispatched += chunk.len();
        // Tables for the key pay for themselves from about 16 records.
        let prepare = self.dispatched >= PREPARE_KEY_FROM;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.pending.push_back(receiver);
        let (key, prepared, stop) = (self.key, Arc::clone(&self.prepared), Arc::clone(&self.stop));
        let job = move || {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let key = if prepare {
                Ok(&**prepared.get_or_init(|| PreparedKeys::build(&key)))
            } else {
                Err(&key)
            };
            let verdicts = check_chunk(&chunk, key);
            // A dropped receiver: the request ended early, stop checking.
            if sender.send(verdicts).is_err() {
                stop.store(true, Ordering::Relaxed);
            }
        };
        let start_thread = {
            let mut queue = CheckQueue::shared()
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            queue.jobs.push_back(Box::new(job));
            let start = queue.threads < checking_threads();
            queue.threads += usize::from(start);
            start
        };
        if start_thread {
            tokio::task::spawn_blocking(move || {
                loop {
                    let job = {
                        let mut queue = CheckQueue::shared()
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        let Some(job) = queue.jobs.pop_front() else {
                            queue.threads -= 1;
                            break;
                        };
                        job
                    };
                    // A panicking check loses its chunk (the upload fails
                    // with "checks stopped"), not the chunks after it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    // Let a waiting database round trip of an upload run
                    // now rather than after this thread's time slice.
                    std::thread::yield_now();
                }
            });
        }
    }

    /// The verdicts on the next chunk, in order; `None` after the last, or
    /// when the checking stopped early (a check panicked).
    async fn recv(&mut self) -> Option<Vec<Result<(), PopError>>> {
        self.pending.pop_front()?.await.ok()
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The tables of the keys whose screens uploaded large batches last: a box
/// catching up after an outage sends batch after batch, and each table
/// costs about what checking 16 records one by one does. Bounded: about
/// 330 KiB each with the AVX-512 IFMA engine's gather words, 161 KiB without.
struct PreparedKeys;

impl PreparedKeys {
    /// Keys kept.
    const CAPACITY: usize = 16;

    fn cache() -> &'static Mutex<VecDeque<Arc<PreparedKey>>> {
        static CACHE: std::sync::OnceLock<Mutex<VecDeque<Arc<PreparedKey>>>> =
            std::sync::OnceLock::new();
        CACHE.get_or_init(|| Mutex::new(VecDeque::with_capacity(Self::CAPACITY)))
    }

    /// The cached table of `key`, now the most recently used.
    fn get(key: &ed25519_dalek::VerifyingKey) -> Option<Arc<PreparedKey>> {
        let mut cache = Self::cache().lock().unwrap_or_else(|p| p.into_inner());
        let index = cache.iter().position(|p| p.key_bytes() == key.as_bytes())?;
        let prepared = cache.remove(index)?;
        cache.push_front(Arc::clone(&prepared));
        Some(prepared)
    }

    /// Builds the table of `key` and caches it (dropping the least recently used).
    fn build(key: &ed25519_dalek::VerifyingKey) -> Arc<PreparedKey> {
        let prepared = Arc::new(PreparedKey::new(key));
        let mut cache = Self::cache().lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|p| p.key_bytes() != key.as_bytes());
        cache.truncate(Self::CAPACITY - 1);
        cache.push_front(Arc::clone(&prepared));
        prepared
    }
}

/// Checking threads (for all uploads): the cores this process may use, asked
/// once (the standard library reads the cgroup's CPU quota files for it,
/// which the ingest path should not do per chunk).
fn checking_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// Checks each record's hash and signature (through the key's tables as one
/// batch when there are any).
fn check_chunk(
    records: &[PlayRecord],
    key: Result<&PreparedKey, &ed25519_dalek::VerifyingKey>,
) -> Vec<Result<(), PopError>> {
    match key {
        Ok(prepared) => crate::pop::verify_records(records, prepared),
        Err(key) => records.iter().map(|record| record.verify(key)).collect(),
    }
}

/// Rows per multi-row insert of records: at most [`MAX_INSERT_ROWS`], and
/// fewer where the backend's parameter limit says so.
fn insert_rows_per_statement(db: &super::db::Db) -> usize {
    db.max_statement_rows(RECORD_COLUMNS).min(MAX_INSERT_ROWS)
}

/// See [`insert_rows_per_statement`]: one statement for an upload of the
/// agent's usual 500 records. Each statement is a round trip to the
/// connection's thread, which on a busy host waits for a core; with rows
/// written ahead of their verdicts, 500 rows per statement were a little
/// faster end to end on SQLite than 100 (and 25 about 10 % slower than 100).
const MAX_INSERT_ROWS: usize = 500;

/// Sums of one rollup cell.
#[derive(Debug, Default, Clone, Copy)]
struct Rollup {
    duration_ms: u64,
    plays: u64,
    completed: u64,
}

impl Rollup {
    fn add(&mut self, duration_ms: u64, outcome: Outcome) {
        self.duration_ms += duration_ms;
        self.plays += 1;
        if outcome == Outcome::Completed {
            self.completed += 1;
        }
    }
}

fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Completed => "completed",
        Outcome::Interrupted => "interrupted",
        Outcome::Failed => "failed",
    }
}

fn outcome_from_str(outcome: &str) -> Outcome {
    match outcome {
        "completed" => Outcome::Completed,
        "interrupted" => Outcome::Interrupted,
        _ => Outcome::Failed,
    }
}

/// The upload's transaction while records are inserted, with at most one
/// insert statement on its way: the next statement's values are bound
/// (on this thread) while the database runs the previous one.
enum Inserter {
    Idle(WriteTx),
    Running(RunningInsert),
}

/// An insert handed to the connection; it gives the transaction back.
type RunningInsert =
    std::pin::Pin<Box<dyn std::future::Future<Output = (WriteTx, Result<(), AppError>)> + Send>>;

impl Inserter {
    /// Sends a multi-row insert of `records` (verified, none of them
    /// stored yet) once the previous one is done, and returns without
    /// waiting for its answer.
    async fn insert(
        self,
        screen: &DeviceScreen,
        records: &[NewRow<'_>],
        now: i64,
    ) -> Result<Self, AppError> {
        let values = insert_values(screen, records, now)?;
        let mut tx = self.finish().await?;
        let mut sql = String::with_capacity(300 + records.len() * RECORD_COLUMNS * 6);
        sql.push_str(
            "INSERT INTO pop_records (screen_id, seq, play_id, item_id, campaign, media_sha256, manifest_version, \
             started_at_ms, ended_at_ms, duration_ms, frames_presented, frames_dropped, outcome, stale, prev_hash, hash, \
             signature, venue_id, day, received_at_ms) VALUES ",
        );
        push_placeholders(&mut sql, tx.backend(), records.len(), RECORD_COLUMNS);
        // A plain insert: the seqs were read as not stored under the
        // screen's write lock. (`ON CONFLICT DO NOTHING` made PostgreSQL
        // insert each row speculatively, which cost about 0.07 of the
        // ratio against the raw insert, for an invariant the lock holds.)
        let mut running: RunningInsert = Box::pin(async move {
            let result = match sqlx::query_with(&sql, values).execute(&mut *tx.tx).await {
                Ok(_) => Ok(()),
                // Another writer stored one of these seqs inside this
                // transaction, which the write lock rules out; refuse the
                // upload (nothing of it is stored) rather than guess.
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    Err(AppError::internal(format!(
                        "a proof-of-play row of this upload is already stored: {error}"
                    )))
                }
                Err(error) => Err(error.into()),
            };
            (tx, result)
        });
        // The first poll hands the statement to the connection.
        match std::future::poll_fn(|cx| std::task::Poll::Ready(running.as_mut().poll(cx))).await {
            std::task::Poll::Ready((tx, result)) => result.map(|()| Self::Idle(tx)),
            std::task::Poll::Pending => Ok(Self::Running(running)),
        }
    }

    /// Waits for the insert on its way, if any; the transaction.
    async fn finish(self) -> Result<WriteTx, AppError> {
        match self {
            Self::Idle(tx) => Ok(tx),
            Self::Running(running) => {
                let (tx, result) = running.await;
                result.map(|()| tx)
            }
        }
    }
}

/// The values of a multi-row insert of `records`, owned (the connection
/// needs them owned anyway), so they can be bound before the statement
/// ahead of them is done.
fn insert_values(
    screen: &DeviceScreen,
    records: &[NewRow<'_>],
    now: i64,
) -> Result<sqlx::any::AnyArguments<'static>, AppError> {
    use sqlx::Arguments as _;
    fn add<T>(values: &mut sqlx::any::AnyArguments<'static>, value: T) -> Result<(), AppError>
    where
        T: 'static + sqlx::Encode<'static, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        values
            .add(value)
            .map_err(|e| AppError::internal(format!("cannot bind a proof-of-play value: {e}")))
    }
    let mut values = sqlx::any::AnyArguments::default();
    values.reserve(records.len() * RECORD_COLUMNS, 0);
    for NewRow { record, day } in records {
        let body = &record.body;
        add(&mut values, screen.id.clone())?;
        add(&mut values, to_i64(body.seq))?;
        add(&mut values, body.play_id.clone())?;
        add(&mut values, body.item_id.clone())?;
        add(&mut values, body.campaign.clone())?;
        add(&mut values, body.media_sha256.clone())?;
        add(&mut values, to_i64(body.manifest_version))?;
        add(&mut values, body.started_at_ms)?;
        add(&mut values, body.ended_at_ms)?;
        add(&mut values, to_i64(body.duration_ms))?;
        add(&mut values, to_i64(body.frames_presented))?;
        add(&mut values, to_i64(body.frames_dropped))?;
        add(&mut values, outcome_str(body.outcome))?;
        add(&mut values, i64::from(body.stale))?;
        add(&mut values, record.prev_hash.clone())?;
        add(&mut values, record.hash.clone())?;
        add(&mut values, record.signature.clone())?;
        add(&mut values, screen.venue_id.clone())?;
        add(&mut values, (*day).to_owned())?;
        add(&mut values, now)?;
    }
    Ok(values)
}

/// Adds to airtime cells in multi-row upserts: per cell, the totals of
/// newly stored plays and the verified share of plays the chain head passed.
async fn add_rollups(
    tx: &mut WriteTx,
    backend: Backend,
    screen: &str,
    cells: HashMap<CellKey<'_>, (Rollup, Rollup)>,
) -> Result<(), AppError> {
    const COLUMNS: usize = 9;
    // Sorted, so that concurrent writers touch rows in the same order.
    let mut cells: Vec<_> = cells.into_iter().collect();
    cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let rows_per_statement = match backend {
        Backend::Sqlite => 500 / COLUMNS,
        Backend::Postgres => 8000 / COLUMNS,
    };
    for part in cells.chunks(rows_per_statement) {
        let mut sql = String::from(
            "INSERT INTO airtime_daily (venue_id, campaign, day, screen_id, duration_ms, plays, completed_plays, verified_duration_ms, verified_plays) VALUES ",
        );
        push_placeholders(&mut sql, backend, part.len(), COLUMNS);
        sql.push_str(
            " ON CONFLICT (venue_id, campaign, day, screen_id) DO UPDATE SET \
             duration_ms = airtime_daily.duration_ms + excluded.duration_ms, \
             plays = airtime_daily.plays + excluded.plays, \
             completed_plays = airtime_daily.completed_plays + excluded.completed_plays, \
             verified_duration_ms = airtime_daily.verified_duration_ms + excluded.verified_duration_ms, \
             verified_plays = airtime_daily.verified_plays + excluded.verified_plays",
        );
        let mut query = sqlx::query(&sql);
        for ((venue, campaign, day), (totals, verified)) in part {
            query = query
                .bind(venue.as_ref())
                .bind(campaign.as_ref())
                .bind(day.as_ref())
                .bind(screen)
                .bind(to_i64(totals.duration_ms))
                .bind(to_i64(totals.plays))
                .bind(to_i64(totals.completed))
                .bind(to_i64(verified.duration_ms))
                .bind(to_i64(verified.plays));
        }
        query.execute(&mut *tx.tx).await?;
    }
    Ok(())
}

/// Deletes a screen's records with these seqs (written ahead of verdicts
/// that refused them).
async fn delete_records(tx: &mut WriteTx, screen_id: &str, seqs: &[u64]) -> Result<(), AppError> {
    for part in seqs.chunks(SEQS_PER_STATEMENT) {
        let sql = of_screen_seqs("DELETE FROM pop_records", tx.backend(), part.len());
        bind_screen_seqs(sqlx::query(&sql), screen_id, part)
            .execute(&mut *tx.tx)
            .await?;
    }
    Ok(())
}

/// Seqs per statement that names them in a list.
const SEQS_PER_STATEMENT: usize = 400;

/// `statement` restricted to one screen's records with `count` listed seqs,
/// for [`bind_screen_seqs`].
fn of_screen_seqs(statement: &str, backend: Backend, count: usize) -> String {
    let mut sql = format!("{statement} WHERE seq IN ");
    push_placeholders(&mut sql, backend, 1, count);
    match backend {
        Backend::Sqlite => sql.push_str(" AND screen_id = ?"),
        Backend::Postgres => sql.push_str(&format!(" AND screen_id = ${}", count + 1)),
    }
    sql
}

/// Binds the values of an [`of_screen_seqs`] statement.
fn bind_screen_seqs<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    screen_id: &'q str,
    seqs: &[u64],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for seq in seqs {
        query = query.bind(to_i64(*seq));
    }
    query.bind(screen_id)
}

/// Stored hashes of a screen's records with these seqs: one range scan
/// when they are about contiguous (an upload), else lookups by list.
async fn stored_hashes(
    tx: &mut WriteTx,
    screen_id: &str,
    seqs: &[u64],
) -> Result<HashMap<u64, String>, AppError> {
    let (Some(&first), Some(&last)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(HashMap::new());
    };
    let rows = if last - first < 2 * seqs.len() as u64 {
        sqlx::query(
            "SELECT seq, hash FROM pop_records WHERE screen_id = $1 AND seq >= $2 AND seq <= $3",
        )
        .bind(screen_id)
        .bind(to_i64(first))
        .bind(to_i64(last))
        .fetch_all(&mut *tx.tx)
        .await?
    } else {
        let mut rows = Vec::new();
        for part in seqs.chunks(SEQS_PER_STATEMENT) {
            let sql = of_screen_seqs(
                "SELECT seq, hash FROM pop_records",
                tx.backend(),
                part.len(),
            );
            rows.extend(
                bind_screen_seqs(sqlx::query(&sql), screen_id, part)
                    .fetch_all(&mut *tx.tx)
                    .await?,
            );
        }
        rows
    };
    rows.iter()
        .map(|row| Ok((get_u64(row, "seq")?, row.try_get("hash")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// A key's table is built once and then reused; the least recently used
    /// key drops out once more than the capacity have uploaded.
    #[test]
    fn prepared_keys_are_reused_and_bounded() {
        let keys: Vec<ed25519_dalek::VerifyingKey> = (0..=PreparedKeys::CAPACITY as u8)
            .map(|seed| SigningKey::from_bytes(&[seed.wrapping_add(101); 32]).verifying_key())
            .collect();
        let first = PreparedKeys::build(&keys[0]);
        let again = PreparedKeys::get(&keys[0]).expect("cached after its build");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(again.key_bytes(), keys[0].as_bytes());
        for key in &keys[1..] {
            PreparedKeys::build(key);
        }
        assert!(
            PreparedKeys::get(&keys[0]).is_none(),
            "the oldest key is dropped"
        );
        assert!(PreparedKeys::get(&keys[1]).is_some());
        let cached = PreparedKeys::cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        assert_eq!(cached, PreparedKeys::CAPACITY);
    }
}
