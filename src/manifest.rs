//! The signed per-screen manifest payload (SPEC §4): what one screen may
//! play, compiled by the server from playlists and carried inside a DSSE
//! envelope of type [`crate::dsse::MANIFEST_PAYLOAD_TYPE`].
//!
//! This module owns the serde types and their validation. Whether a
//! verified manifest is *accepted* (rollback, expiry, key rotation) is
//! [`crate::trust`]'s job; what plays when is [`crate::schedule`]'s.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};

/// Version of the payload layout. Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Largest manifest payload a player accepts, in bytes (SPEC §4 size caps).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest single media file a manifest may declare, in bytes.
pub const MAX_MEDIA_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// The manifest payload: everything one screen needs to schedule and verify
/// its content until the next manifest arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version, [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The screen this manifest was compiled for.
    pub screen_id: String,
    /// Strictly increasing per screen; a lower one is a rollback.
    pub version: u64,
    /// When the server signed it. Also feeds the player's time floor.
    pub issued_at: Timestamp,
    /// After this instant the player keeps playing but reports itself stale.
    pub expires_at: Timestamp,
    /// IANA time zone of the screen's venue; flights and windows are read in it.
    pub timezone: String,
    /// Everything that may play, in playlist order.
    pub items: Vec<Item>,
    /// Drawn on top of whatever plays (ticker text).
    #[serde(default)]
    pub overlays: Vec<Overlay>,
    /// Root key set the signer claims. A version above the player's pinned
    /// one is a rotation and must be signed by the old and the new keys.
    pub root: RootKeys,
}

/// One schedulable entry: a clip or a still with the rules for when it plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Unique within the manifest; proof-of-play records name it.
    pub id: String,
    /// The campaign the airtime is credited to.
    pub campaign: String,
    /// The file to play, content-addressed.
    pub media: Media,
    /// Display time in milliseconds: required for stills; for clips it caps
    /// the play (absent: play the clip to its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// How the picture fills the screen.
    #[serde(default)]
    pub fit: Fit,
    /// Inclusive date range, in the manifest's time zone, outside which the
    /// item never plays.
    pub flight: Flight,
    /// Day-of-week + time-of-day windows; empty means all day every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// If not empty, the item plays only on these local dates (e.g. the
    /// poster of the day).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<Date>,
    /// Share of voice relative to the other items of the same tier.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Higher tiers pre-empt lower ones while they have something to play.
    #[serde(default)]
    pub priority: u8,
    /// Optional cap on plays per clock hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_plays_per_hour: Option<u32>,
}

fn default_weight() -> u32 {
    1
}

/// A media file as the manifest pins it: the player uses the bytes only if
/// they hash to `sha256` and are exactly `size` long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Exact length in bytes; downloads stop here.
    pub size: u64,
    /// `video/mp4`, `video/x-matroska`, `video/webm`, `image/png`, `image/jpeg`.
    pub mime: String,
    /// Where to fetch it, absolute or relative to the server URL.
    pub url: String,
}

impl Media {
    /// Stills are shown for the item's `duration_ms`; everything else is decoded as video.
    pub fn is_still(&self) -> bool {
        self.mime.starts_with("image/")
    }
}

/// How a picture of another aspect ratio fills the screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Whole picture visible, letterboxed.
    #[default]
    Contain,
    /// Screen filled, picture cropped.
    Cover,
}

/// Inclusive range of local dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flight {
    /// First day the item may play.
    pub start: Date,
    /// Last day the item may play (inclusive).
    pub end: Date,
}

/// A weekly time window in local time. `end` before `start` wraps past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Days the window opens on; empty means every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Weekday>,
    /// Local opening time.
    pub start: Time,
    /// Local closing time (exclusive).
    pub end: Time,
}

/// Day of the week, serialised as its three-letter English abbreviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<Weekday> for jiff::civil::Weekday {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Mon => jiff::civil::Weekday::Monday,
            Weekday::Tue => jiff::civil::Weekday::Tuesday,
            Weekday::Wed => jiff::civil::Weekday::Wednesday,
            Weekday::Thu => jiff::civil::Weekday::Thursday,
            Weekday::Fri => jiff::civil::Weekday::Friday,
            Weekday::Sat => jiff::civil::Weekday::Saturday,
            Weekday::Sun => jiff::civil::Weekday::Sunday,
        }
    }
}

impl From<jiff::civil::Weekday> for Weekday {
    fn from(day: jiff::civil::Weekday) -> Self {
        match day {
            jiff::civil::Weekday::Monday => Weekday::Mon,
            jiff::civil::Weekday::Tuesday => Weekday::Tue,
            jiff::civil::Weekday::Wednesday => Weekday::Wed,
            jiff::civil::Weekday::Thursday => Weekday::Thu,
            jiff::civil::Weekday::Friday => Weekday::Fri,
            jiff::civil::Weekday::Saturday => Weekday::Sat,
            jiff::civil::Weekday::Sunday => Weekday::Sun,
        }
    }
}

/// Something drawn over the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Overlay {
    /// Text scrolling along the bottom edge (any Unicode).
    Ticker {
        /// The campaign the ticker belongs to.
        campaign: String,
        /// The text, e.g. hotline numbers.
        text: String,
        /// Same rules as items: only inside the flight and windows.
        flight: Flight,
        /// Empty means always within the flight.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        windows: Vec<Window>,
    },
}

/// The root key set a manifest is signed under (SPEC §4 key rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootKeys {
    /// Starts at 1; a player accepts only its pinned version or the next one.
    pub version: u32,
    /// Public keys of this version, SubjectPublicKeyInfo PEM.
    pub keys: Vec<String>,
    /// How many distinct keys of this version must sign.
    pub threshold: u32,
}
