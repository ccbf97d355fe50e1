//! Proof-of-play records (SPEC §6): one signed, hash-chained record per
//! play, made on the screen box and verified by the server and by auditors.
//!
//! This module owns the record, its canonical bytes, the hash chain, the
//! screen-key signature and the chain verifier.

use serde::{Deserialize, Serialize};

/// `prev_hash` of a screen's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a play ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Played to its end (or its duration for stills).
    Completed,
    /// Cut short: power loss, kill, pre-emption; `ended_at` is the last presented frame.
    Interrupted,
    /// Could not be played (decoder error, stall, missing media).
    Failed,
}

/// The fields a record's hash covers: everything except `prev_hash`, `hash`
/// and `signature`. Serialised as compact JSON in this field order, which is
/// the record's canonical byte form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayBody {
    /// The screen that played it.
    pub screen_id: String,
    /// Contiguous per screen, starting at 1.
    pub seq: u64,
    /// Random id of this play.
    pub play_id: String,
    /// Manifest item id.
    pub item_id: String,
    /// Campaign credited with the airtime.
    pub campaign: String,
    /// SHA-256 of the media that was shown.
    pub media_sha256: String,
    /// Manifest version the item came from.
    pub manifest_version: u64,
    /// First presented frame, UTC milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// Last presented frame (or the cut), UTC milliseconds.
    pub ended_at_ms: i64,
    /// `ended_at_ms - started_at_ms`, stored so reports need no arithmetic.
    pub duration_ms: u64,
    /// Frames that reached the screen.
    pub frames_presented: u64,
    /// Frames decoded too late and skipped.
    pub frames_dropped: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The player was past its manifest's expiry when this played.
    pub stale: bool,
}

/// A chained, signed proof-of-play record as stored and uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayRecord {
    /// The signed content.
    #[serde(flatten)]
    pub body: PlayBody,
    /// Lowercase hex hash of the previous record ([`GENESIS_HASH`] for seq 1).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 over `prev_hash` (32 raw bytes) followed by the canonical body bytes.
    pub hash: String,
    /// Base64 Ed25519 signature by the screen key over the record's hash.
    pub signature: String,
}
