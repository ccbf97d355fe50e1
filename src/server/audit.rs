//! The auditor's export (SPEC §7): for a campaign and a date range, the
//! signed proof-of-play records with their chain and the screens' public
//! keys, in one file that `ekran pop verify FILE` checks offline.
//!
//! A chain can only be checked without holes, so for each screen the
//! export holds every record from the first to the last one of the
//! campaign in the range, other campaigns' plays in between included, and
//! anchors the chain at the record just before.

use sqlx::Row;

use super::db::{Db, get_u64, to_i64};
use super::error::AppError;
use crate::pop::{
    AUDIT_FORMAT, AuditBundle, AuditScreen, ChainAnchor, Outcome, PlayBody, PlayRecord,
};

/// Most records one export may hold; narrow the range beyond it.
pub const MAX_EXPORT_RECORDS: i64 = 2_000_000;

/// Builds the export. `campaign` `None` means every campaign.
pub async fn export(
    db: &Db,
    campaign: Option<&str>,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
) -> Result<AuditBundle, AppError> {
    if to < from {
        return Err(AppError::BadRequest(format!(
            "export range is empty: to ({to}) is before from ({from})"
        )));
    }
    let spans = sqlx::query(
        "SELECT p.screen_id, MIN(p.seq) AS first_seq, MAX(p.seq) AS last_seq, s.public_key_pem \
         FROM pop_records p JOIN screens s ON s.id = p.screen_id \
         WHERE p.day >= $1 AND p.day <= $2 AND ($3 = '' OR p.campaign = $3) \
         GROUP BY p.screen_id, s.public_key_pem ORDER BY p.screen_id",
    )
    .bind(from.to_string())
    .bind(to.to_string())
    .bind(campaign.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let total: i64 = spans
        .iter()
        .map(|row| {
            Ok::<_, AppError>(
                row.try_get::<i64, _>("last_seq")? - row.try_get::<i64, _>("first_seq")? + 1,
            )
        })
        .sum::<Result<i64, _>>()?;
    if total > MAX_EXPORT_RECORDS {
        return Err(AppError::PayloadTooLarge(format!(
            "the export would hold {total} records (limit {MAX_EXPORT_RECORDS}): narrow the date range"
        )));
    }
    let mut screens = Vec::with_capacity(spans.len());
    let mut records = Vec::new();
    for span in &spans {
        let screen_id: String = span.try_get("screen_id")?;
        let first = get_u64(span, "first_seq")?;
        let last = get_u64(span, "last_seq")?;
        let anchor = if first > 1 {
            sqlx::query("SELECT hash FROM pop_records WHERE screen_id = $1 AND seq = $2")
                .bind(&screen_id)
                .bind(to_i64(first - 1))
                .fetch_optional(db.pool())
                .await?
                .map(|row| {
                    Ok::<_, AppError>(ChainAnchor {
                        seq: first - 1,
                        hash: row.try_get("hash")?,
                    })
                })
                .transpose()?
        } else {
            None
        };
        let rows = sqlx::query(
            "SELECT seq, play_id, item_id, campaign, media_sha256, manifest_version, started_at_ms, ended_at_ms, \
             duration_ms, frames_presented, frames_dropped, outcome, stale, prev_hash, hash, signature \
             FROM pop_records WHERE screen_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
        )
        .bind(&screen_id)
        .bind(to_i64(first))
        .bind(to_i64(last))
        .fetch_all(db.pool())
        .await?;
        for row in &rows {
            let outcome: String = row.try_get("outcome")?;
            records.push(PlayRecord {
                body: PlayBody {
                    screen_id: screen_id.clone(),
                    seq: get_u64(row, "seq")?,
                    play_id: row.try_get("play_id")?,
                    item_id: row.try_get("item_id")?,
                    campaign: row.try_get("campaign")?,
                    media_sha256: row.try_get("media_sha256")?,
                    manifest_version: get_u64(row, "manifest_version")?,
                    started_at_ms: row.try_get("started_at_ms")?,
                    ended_at_ms: row.try_get("ended_at_ms")?,
                    duration_ms: get_u64(row, "duration_ms")?,
                    frames_presented: get_u64(row, "frames_presented")?,
                    frames_dropped: get_u64(row, "frames_dropped")?,
                    outcome: match outcome.as_str() {
                        "completed" => Outcome::Completed,
                        "interrupted" => Outcome::Interrupted,
                        _ => Outcome::Failed,
                    },
                    stale: row.try_get::<i64, _>("stale")? != 0,
                },
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
                signature: row.try_get("signature")?,
            });
        }
        screens.push(AuditScreen {
            screen_id,
            public_key_pem: span.try_get("public_key_pem")?,
            anchor,
        });
    }
    Ok(AuditBundle {
        format: AUDIT_FORMAT.to_owned(),
        screens,
        records,
    })
}
