//! Airtime reports: seconds on screen, plays, completed plays and screens
//! per venue × campaign × local day (the venue's time zone), with the share
//! that rests on verified records, read from the `airtime_daily` rollup
//! that ingest maintains (never from the raw records), as JSON or CSV.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::db::{Db, get_u64};
use super::error::AppError;

/// One report row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AirtimeRow {
    /// Local date in the venue's time zone (`YYYY-MM-DD`), the day plays started.
    pub day: String,
    /// Venue id.
    pub venue: String,
    /// Campaign name as the records carry it.
    pub campaign: String,
    /// Seconds on screen (sum of play durations).
    pub seconds: f64,
    /// Plays.
    pub plays: u64,
    /// Plays that ran to their end.
    pub completed_plays: u64,
    /// Distinct screens that played it that day.
    pub screens: u64,
    /// Seconds backed by records in their screen's unbroken, signed chain.
    pub verified_seconds: f64,
    /// Plays backed by such records.
    pub verified_plays: u64,
    /// `verified_seconds / seconds` (1.0 when there is nothing to verify).
    pub verified_share: f64,
}

/// Filters of an airtime report. Dates are inclusive local dates.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AirtimeQuery {
    /// First day.
    pub from: jiff::civil::Date,
    /// Last day (inclusive).
    pub to: jiff::civil::Date,
    /// Only this venue.
    #[serde(default)]
    pub venue: Option<String>,
    /// Only this campaign.
    #[serde(default)]
    pub campaign: Option<String>,
}

/// Longest report span, so one request cannot ask for centuries.
pub const MAX_REPORT_DAYS: i32 = 3660;

/// Runs the report over the rollups.
pub async fn airtime(db: &Db, query: &AirtimeQuery) -> Result<Vec<AirtimeRow>, AppError> {
    if query.to < query.from {
        return Err(AppError::BadRequest(format!(
            "report range is empty: to ({}) is before from ({})",
            query.to, query.from
        )));
    }
    if (query.to - query.from).get_days() > MAX_REPORT_DAYS {
        return Err(AppError::BadRequest(format!(
            "report range is over {MAX_REPORT_DAYS} days"
        )));
    }
    let rows = sqlx::query(
        "SELECT day, venue_id, campaign, \
         CAST(SUM(duration_ms) AS BIGINT) AS duration_ms, CAST(SUM(plays) AS BIGINT) AS plays, \
         CAST(SUM(completed_plays) AS BIGINT) AS completed_plays, COUNT(DISTINCT screen_id) AS screens, \
         CAST(SUM(verified_duration_ms) AS BIGINT) AS verified_duration_ms, CAST(SUM(verified_plays) AS BIGINT) AS verified_plays \
         FROM airtime_daily WHERE day >= $1 AND day <= $2 AND ($3 = '' OR venue_id = $3) AND ($4 = '' OR campaign = $4) \
         GROUP BY day, venue_id, campaign ORDER BY day, venue_id, campaign",
    )
    .bind(query.from.to_string())
    .bind(query.to.to_string())
    .bind(query.venue.as_deref().unwrap_or(""))
    .bind(query.campaign.as_deref().unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let duration_ms = get_u64(row, "duration_ms")?;
            let verified_ms = get_u64(row, "verified_duration_ms")?;
            Ok(AirtimeRow {
                day: row.try_get("day")?,
                venue: row.try_get("venue_id")?,
                campaign: row.try_get("campaign")?,
                seconds: duration_ms as f64 / 1000.0,
                plays: get_u64(row, "plays")?,
                completed_plays: get_u64(row, "completed_plays")?,
                screens: get_u64(row, "screens")?,
                verified_seconds: verified_ms as f64 / 1000.0,
                verified_plays: get_u64(row, "verified_plays")?,
                verified_share: if duration_ms == 0 {
                    1.0
                } else {
                    verified_ms as f64 / duration_ms as f64
                },
            })
        })
        .collect()
}

/// The report as CSV with a header row.
pub fn to_csv(rows: &[AirtimeRow]) -> Result<String, AppError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).map_err(AppError::internal)?;
    }
    if rows.is_empty() {
        writer
            .write_record([
                "day",
                "venue",
                "campaign",
                "seconds",
                "plays",
                "completed_plays",
                "screens",
                "verified_seconds",
                "verified_plays",
                "verified_share",
            ])
            .map_err(AppError::internal)?;
    }
    let bytes = writer.into_inner().map_err(AppError::internal)?;
    String::from_utf8(bytes).map_err(AppError::internal)
}
