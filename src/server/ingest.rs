//! Proof-of-play ingest (SPEC §6): a screen's batch of signed, chained
//! records is verified against the screen's enrolled key, stored exactly
//! once per (screen, seq), linked into the screen's chain, and rolled up
//! into daily airtime. Gaps, forks, broken links and bad signatures become
//! audit findings instead of being hidden.
//!
//! Idempotence and concurrency: records are inserted with
//! `ON CONFLICT (screen_id, seq) DO NOTHING … RETURNING seq`, so only the
//! rows this call really inserted feed the rollups; the chain head
//! (`screens.pop_acked_*`) is advanced under the screen's row lock
//! (PostgreSQL `FOR UPDATE`; SQLite's single writer), so concurrent or
//! repeated uploads of the same batch store and count each record once.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::AppState;
use super::db::{Backend, WriteTx, get_u64, now_ms, to_i64};
use super::device::DeviceScreen;
use super::error::AppError;
use crate::pop::{Outcome, PlayRecord, PopError};

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

/// Parses and bounds a batch body: a JSON array of records.
pub fn parse_batch(body: &[u8]) -> Result<Vec<PlayRecord>, AppError> {
    let records: Vec<PlayRecord> = serde_json::from_slice(body).map_err(|e| {
        AppError::BadRequest(format!(
            "invalid proof-of-play batch (expected a JSON array of records): {e}"
        ))
    })?;
    if records.len() > MAX_BATCH_RECORDS {
        return Err(AppError::PayloadTooLarge(format!(
            "batch of {} records is over the limit of {MAX_BATCH_RECORDS}; split it",
            records.len()
        )));
    }
    Ok(records)
}

/// The local date (venue time zone) a play is credited to: the day it started.
pub fn local_day(started_at_ms: i64, tz: &jiff::tz::TimeZone) -> Result<String, AppError> {
    let instant = jiff::Timestamp::from_millisecond(started_at_ms).map_err(|_| {
        AppError::BadRequest(format!("started_at_ms {started_at_ms} is out of range"))
    })?;
    Ok(instant.to_zoned(tz.clone()).date().to_string())
}

/// Verifies, stores and chains one batch from an authenticated screen.
pub async fn ingest(
    state: &AppState,
    screen: &DeviceScreen,
    records: Vec<PlayRecord>,
) -> Result<IngestAck, AppError> {
    for record in &records {
        if record.body.screen_id != screen.id {
            return Err(AppError::BadRequest(format!(
                "record seq {} names screen {:?}, but the request is signed by screen {:?}",
                record.body.seq, record.body.screen_id, screen.id
            )));
        }
        if record.body.seq == 0 || record.body.seq > i64::MAX as u64 {
            return Err(AppError::BadRequest(format!(
                "record seq {} is out of range (1..2^63)",
                record.body.seq
            )));
        }
    }
    let db = state.db();
    let tz_name: String = sqlx::query_scalar("SELECT timezone FROM venues WHERE id = $1")
        .bind(&screen.venue_id)
        .fetch_one(db.pool())
        .await?;
    let tz = jiff::tz::TimeZone::get(&tz_name).map_err(AppError::internal)?;

    // Signatures on a blocking thread: a batch of thousands is CPU work.
    let key = screen.key;
    let (valid, mut findings) = tokio::task::spawn_blocking(move || {
        let checks = verify_all(&records, &key);
        let mut valid: BTreeMap<u64, PlayRecord> = BTreeMap::new();
        let mut findings = Vec::new();
        for (record, check) in records.into_iter().zip(checks) {
            let seq = record.body.seq;
            if let Err(error) = check {
                let kind = match error {
                    PopError::BadSignature { .. } | PopError::MalformedSignature { .. } => {
                        FindingKind::BadSignature
                    }
                    _ => FindingKind::BadHash,
                };
                findings.push(NewFinding {
                    kind,
                    seq,
                    detail: error.to_string(),
                });
                continue;
            }
            match valid.get(&seq) {
                Some(first) if first.hash != record.hash => findings.push(NewFinding {
                    kind: FindingKind::Fork,
                    seq,
                    detail: format!(
                        "batch carries two different records for seq {seq} ({} and {})",
                        first.hash, record.hash
                    ),
                }),
                Some(_) => {}
                None => {
                    valid.insert(seq, record);
                }
            }
        }
        (valid, findings)
    })
    .await
    .map_err(AppError::internal)?;
    let mut rejected = findings.len() as u64;
    let mut days = HashMap::with_capacity(valid.len());
    for record in valid.values() {
        days.insert(record.body.seq, local_day(record.body.started_at_ms, &tz)?);
    }

    let mut tx = db.begin_write().await?;
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

    // 1. Insert, learning which rows are new.
    let now = now_ms();
    let all: Vec<&PlayRecord> = valid.values().collect();
    let mut inserted: Vec<u64> = Vec::with_capacity(all.len());
    for chunk in all.chunks(db.insert_chunk_rows(RECORD_COLUMNS)) {
        inserted.extend(insert_records(&mut tx, screen, chunk, &days, now).await?);
    }
    let inserted_set: std::collections::HashSet<u64> = inserted.iter().copied().collect();

    // 2. Not inserted: an identical re-upload, or a fork.
    let mut duplicates = 0;
    let others: Vec<&PlayRecord> = all
        .iter()
        .copied()
        .filter(|r| !inserted_set.contains(&r.body.seq))
        .collect();
    if !others.is_empty() {
        let stored = stored_hashes(&mut tx, &screen.id, others.iter().map(|r| r.body.seq)).await?;
        for record in others {
            let seq = record.body.seq;
            match stored.get(&seq) {
                Some(hash) if *hash == record.hash => duplicates += 1,
                Some(hash) => {
                    rejected += 1;
                    findings.push(NewFinding {
                        kind: FindingKind::Fork,
                        seq,
                        detail: format!("a different record for seq {seq} is already stored ({hash}); refused {}", record.hash),
                    });
                }
                None => {}
            }
        }
    }

    // 3. Rollup cells (venue, campaign, local day): totals of the new rows,
    // and the verified share of every record the chain head passes below.
    let mut cells: HashMap<(String, String, String), (Rollup, Rollup)> = HashMap::new();
    for seq in &inserted {
        let record = &valid[seq];
        cells
            .entry((
                screen.venue_id.clone(),
                record.body.campaign.clone(),
                days[seq].clone(),
            ))
            .or_default()
            .0
            .add(record.body.duration_ms, record.body.outcome);
    }

    // 4. Advance the verified chain head as far as records link. Fast path
    // in memory over the rows this call stored (the usual upload continues
    // the chain); then the database, for rows stored earlier beyond a gap
    // that this batch closed.
    let before = acked_seq;
    for (seq, record) in valid.range(acked_seq + 1..) {
        if *seq != acked_seq + 1 || !inserted_set.contains(seq) || record.prev_hash != acked_hash {
            break;
        }
        acked_seq = *seq;
        acked_hash.clone_from(&record.hash);
        cells
            .entry((
                screen.venue_id.clone(),
                record.body.campaign.clone(),
                days[seq].clone(),
            ))
            .or_default()
            .1
            .add(record.body.duration_ms, record.body.outcome);
    }
    loop {
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, duration_ms, outcome, campaign, day, venue_id FROM pop_records \
             WHERE screen_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq",
        )
        .bind(&screen.id)
        .bind(to_i64(acked_seq))
        .bind(to_i64(acked_seq) + ADVANCE_STEP)
        .fetch_all(&mut *tx.tx)
        .await?;
        let mut advanced = 0;
        for row in &rows {
            let seq = get_u64(row, "seq")?;
            let prev_hash: String = row.try_get("prev_hash")?;
            if seq != acked_seq + 1 {
                break;
            }
            if prev_hash != acked_hash {
                findings.push(NewFinding {
                    kind: FindingKind::BrokenLink,
                    seq,
                    detail: format!("record seq {seq} links to {prev_hash}, but record {acked_seq} has hash {acked_hash}"),
                });
                break;
            }
            acked_seq = seq;
            acked_hash = row.try_get("hash")?;
            advanced += 1;
            let outcome: String = row.try_get("outcome")?;
            cells
                .entry((
                    row.try_get("venue_id")?,
                    row.try_get("campaign")?,
                    row.try_get("day")?,
                ))
                .or_default()
                .1
                .add(get_u64(row, "duration_ms")?, outcome_from_str(&outcome));
        }
        if advanced < ADVANCE_STEP as usize {
            break;
        }
    }
    for ((venue, campaign, day), (totals, verified)) in &cells {
        add_rollup(&mut tx, venue, campaign, day, &screen.id, totals, verified).await?;
    }
    if acked_seq != before {
        sqlx::query("UPDATE screens SET pop_acked_seq = $1, pop_acked_hash = $2 WHERE id = $3")
            .bind(to_i64(acked_seq))
            .bind(&acked_hash)
            .bind(&screen.id)
            .execute(&mut *tx.tx)
            .await?;
        sqlx::query("UPDATE audit_findings SET resolved_at_ms = $1 WHERE screen_id = $2 AND kind = 'gap' AND seq <= $3 AND resolved_at_ms IS NULL")
            .bind(now)
            .bind(&screen.id)
            .bind(to_i64(acked_seq))
            .execute(&mut *tx.tx)
            .await?;
    }

    // 5. A hole between the chain head and stored later records is a gap.
    let next_stored: Option<i64> =
        sqlx::query_scalar("SELECT MIN(seq) FROM pop_records WHERE screen_id = $1 AND seq > $2")
            .bind(&screen.id)
            .bind(to_i64(acked_seq))
            .fetch_one(&mut *tx.tx)
            .await?;
    if let Some(next) = next_stored
        && next as u64 > acked_seq + 1
    {
        findings.push(NewFinding {
            kind: FindingKind::Gap,
            seq: acked_seq + 1,
            detail: format!("records {}..={} are missing", acked_seq + 1, next - 1),
        });
    }

    let mut new_findings = Vec::with_capacity(findings.len());
    for finding in findings {
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
        new_findings.push(finding);
    }
    tx.commit().await?;
    state.metrics().pop_records_ingested(inserted.len() as u64);
    Ok(IngestAck {
        acked_seq,
        stored: inserted.len() as u64,
        duplicates,
        rejected,
        findings: new_findings,
    })
}

/// Checks every record's hash and signature, spread over the CPU cores
/// (signature checks dominate the cost of ingest).
pub(crate) fn verify_all(
    records: &[PlayRecord],
    key: &ed25519_dalek::VerifyingKey,
) -> Vec<Result<(), PopError>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if threads == 1 || records.len() < 64 {
        return records.iter().map(|record| record.verify(key)).collect();
    }
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|record| record.verify(key))
                        .collect::<Vec<_>>()
                })
            })
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

/// Adds to an airtime cell: `totals` of newly stored plays and the
/// `verified` share of plays the chain head passed.
async fn add_rollup(
    tx: &mut WriteTx,
    venue: &str,
    campaign: &str,
    day: &str,
    screen: &str,
    totals: &Rollup,
    verified: &Rollup,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO airtime_daily (venue_id, campaign, day, screen_id, duration_ms, plays, completed_plays, verified_duration_ms, verified_plays) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (venue_id, campaign, day, screen_id) DO UPDATE SET \
         duration_ms = airtime_daily.duration_ms + excluded.duration_ms, \
         plays = airtime_daily.plays + excluded.plays, \
         completed_plays = airtime_daily.completed_plays + excluded.completed_plays, \
         verified_duration_ms = airtime_daily.verified_duration_ms + excluded.verified_duration_ms, \
         verified_plays = airtime_daily.verified_plays + excluded.verified_plays",
    )
    .bind(venue)
    .bind(campaign)
    .bind(day)
    .bind(screen)
    .bind(to_i64(totals.duration_ms))
    .bind(to_i64(totals.plays))
    .bind(to_i64(totals.completed))
    .bind(to_i64(verified.duration_ms))
    .bind(to_i64(verified.plays))
    .execute(&mut *tx.tx)
    .await?;
    Ok(())
}

/// Multi-row insert of verified records; returns the seqs that were new.
async fn insert_records(
    tx: &mut WriteTx,
    screen: &DeviceScreen,
    records: &[&PlayRecord],
    days: &HashMap<u64, String>,
    now: i64,
) -> Result<Vec<u64>, AppError> {
    let mut sql = String::from(
        "INSERT INTO pop_records (screen_id, seq, play_id, item_id, campaign, media_sha256, manifest_version, \
         started_at_ms, ended_at_ms, duration_ms, frames_presented, frames_dropped, outcome, stale, prev_hash, hash, \
         signature, venue_id, day, received_at_ms) VALUES ",
    );
    for row in 0..records.len() {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..RECORD_COLUMNS {
            if column > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", row * RECORD_COLUMNS + column + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (screen_id, seq) DO NOTHING RETURNING seq");
    let mut query = sqlx::query(&sql);
    for record in records {
        let body = &record.body;
        query = query
            .bind(&screen.id)
            .bind(to_i64(body.seq))
            .bind(&body.play_id)
            .bind(&body.item_id)
            .bind(&body.campaign)
            .bind(&body.media_sha256)
            .bind(to_i64(body.manifest_version))
            .bind(body.started_at_ms)
            .bind(body.ended_at_ms)
            .bind(to_i64(body.duration_ms))
            .bind(to_i64(body.frames_presented))
            .bind(to_i64(body.frames_dropped))
            .bind(outcome_str(body.outcome))
            .bind(i64::from(body.stale))
            .bind(&record.prev_hash)
            .bind(&record.hash)
            .bind(&record.signature)
            .bind(&screen.venue_id)
            .bind(days.get(&body.seq).map(String::as_str).unwrap_or_default())
            .bind(now);
    }
    let rows = query.fetch_all(&mut *tx.tx).await?;
    rows.iter().map(|row| Ok(get_u64(row, "seq")?)).collect()
}

/// Stored hashes of these seqs of a screen.
async fn stored_hashes(
    tx: &mut WriteTx,
    screen_id: &str,
    seqs: impl Iterator<Item = u64>,
) -> Result<HashMap<u64, String>, AppError> {
    let seqs: Vec<u64> = seqs.collect();
    let (Some(min), Some(max)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(HashMap::new());
    };
    let rows = sqlx::query(
        "SELECT seq, hash FROM pop_records WHERE screen_id = $1 AND seq >= $2 AND seq <= $3",
    )
    .bind(screen_id)
    .bind(to_i64(*min))
    .bind(to_i64(*max))
    .fetch_all(&mut *tx.tx)
    .await?;
    let wanted: std::collections::HashSet<u64> = seqs.iter().copied().collect();
    let mut hashes = HashMap::new();
    for row in &rows {
        let seq = get_u64(row, "seq")?;
        if wanted.contains(&seq) {
            hashes.insert(seq, row.try_get("hash")?);
        }
    }
    Ok(hashes)
}
