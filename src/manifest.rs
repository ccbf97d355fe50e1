//! The signed per-screen manifest payload (SPEC §4): what one screen may
//! play, compiled by the server from playlists and carried inside a DSSE
//! envelope of type [`crate::dsse::MANIFEST_PAYLOAD_TYPE`].
//!
//! This module owns the serde types and their validation. Whether a
//! verified manifest is *accepted* (rollback, expiry, key rotation) is
//! [`crate::trust`]'s job; what plays when is [`crate::schedule`]'s.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};

/// Version of the payload layout. Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Largest manifest payload a player accepts, in bytes (SPEC §4 size caps).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest single media file a manifest may declare, in bytes.
pub const MAX_MEDIA_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Media types a manifest may declare: what the player decodes.
pub const ALLOWED_MIME_TYPES: &[&str] = &[
    "video/mp4",
    "video/x-matroska",
    "video/webm",
    "image/png",
    "image/jpeg",
];

/// Longest id (screen, item) or campaign name accepted, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Most root keys one version may list.
pub const MAX_ROOT_KEYS: usize = 16;

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

/// Why a manifest payload was refused. Each names the field (as a path
/// such as `items[2].media.sha256`) and what a valid one looks like.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The payload is bigger than [`MAX_MANIFEST_BYTES`]; it is not parsed.
    #[error("manifest is {size} bytes, over the {max}-byte limit; split the screen's playlists")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// Not JSON, or JSON of the wrong shape (unknown field, wrong type).
    #[error("malformed manifest JSON: {0}")]
    Malformed(#[source] serde_json::Error),
    /// A layout version this player does not read.
    #[error("manifest schema {found} is not supported: this player reads schema {SCHEMA_VERSION}")]
    UnsupportedSchema {
        /// The `schema` field found.
        found: u32,
    },
    /// A field holds a value the rules forbid.
    #[error("{field}: {problem}")]
    Invalid {
        /// Path of the offending field, e.g. `items[2].media.sha256`.
        field: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// Two items share an id.
    #[error(
        "items[{index}].id: {id:?} is already used by an earlier item; item ids must be unique"
    )]
    DuplicateItemId {
        /// Index of the second item.
        index: usize,
        /// The repeated id.
        id: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

impl Manifest {
    /// Parses and validates a payload: the size cap first (before any
    /// parsing), then the JSON shape, then [`Manifest::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size: bytes.len(),
                max: MAX_MANIFEST_BYTES,
            });
        }
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(ManifestError::Malformed)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The payload as compact JSON, the form the server signs.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Strings, numbers, dates and times only: serialisation cannot fail.
        serde_json::to_vec(self).expect("a Manifest always serialises to JSON")
    }

    /// The IANA time zone the manifest's dates and windows are read in.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, ManifestError> {
        jiff::tz::TimeZone::get(&self.timezone).map_err(|error| {
            invalid(
                "timezone",
                format!(
                    "{:?} is not a known IANA time zone (e.g. \"Asia/Dushanbe\"): {error}",
                    self.timezone
                ),
            )
        })
    }

    /// Checks every rule a well-formed manifest obeys; returns the first
    /// violation found.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.schema != SCHEMA_VERSION {
            return Err(ManifestError::UnsupportedSchema { found: self.schema });
        }
        check_id("screen_id", &self.screen_id)?;
        if self.version == 0 {
            return Err(invalid("version", "must be at least 1"));
        }
        if self.expires_at <= self.issued_at {
            return Err(invalid(
                "expires_at",
                format!(
                    "{} is not after issued_at {}; a manifest must be valid for some time",
                    self.expires_at, self.issued_at
                ),
            ));
        }
        self.time_zone()?;
        let mut ids = BTreeSet::new();
        for (index, item) in self.items.iter().enumerate() {
            item.validate(&format!("items[{index}]"))?;
            if !ids.insert(item.id.as_str()) {
                return Err(ManifestError::DuplicateItemId {
                    index,
                    id: item.id.clone(),
                });
            }
        }
        for (index, overlay) in self.overlays.iter().enumerate() {
            overlay.validate(&format!("overlays[{index}]"))?;
        }
        self.root.validate("root")
    }
}

/// Ids and campaign names: non-empty, bounded, no control characters (they
/// end up in logs, reports and CSV).
fn check_id(field: &str, value: &str) -> Result<(), ManifestError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(invalid(
            field,
            format!(
                "is {} bytes long; at most {MAX_ID_BYTES} are allowed",
                value.len()
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{value:?} contains control characters"),
        ));
    }
    Ok(())
}

impl Item {
    fn validate(&self, path: &str) -> Result<(), ManifestError> {
        check_id(&format!("{path}.id"), &self.id)?;
        check_id(&format!("{path}.campaign"), &self.campaign)?;
        self.media.validate(&format!("{path}.media"))?;
        match self.duration_ms {
            Some(0) => {
                return Err(invalid(
                    format!("{path}.duration_ms"),
                    "must be greater than 0",
                ));
            }
            None if self.media.is_still() => {
                return Err(invalid(
                    format!("{path}.duration_ms"),
                    format!("is required for the still {}", self.media.mime),
                ));
            }
            _ => {}
        }
        self.flight.validate(&format!("{path}.flight"))?;
        for (index, window) in self.windows.iter().enumerate() {
            window.validate(&format!("{path}.windows[{index}]"))?;
        }
        for (index, date) in self.dates.iter().enumerate() {
            if !self.flight.contains(*date) {
                return Err(invalid(
                    format!("{path}.dates[{index}]"),
                    format!(
                        "{date} lies outside the flight {}..={}, so the item could never play on it",
                        self.flight.start, self.flight.end
                    ),
                ));
            }
        }
        if self.weight == 0 {
            return Err(invalid(format!("{path}.weight"), "must be at least 1"));
        }
        if self.max_plays_per_hour == Some(0) {
            return Err(invalid(
                format!("{path}.max_plays_per_hour"),
                "must be at least 1 (omit it for no cap)",
            ));
        }
        Ok(())
    }
}

impl Media {
    fn validate(&self, path: &str) -> Result<(), ManifestError> {
        if !is_sha256_hex(&self.sha256) {
            return Err(invalid(
                format!("{path}.sha256"),
                format!("{:?} is not 64 lowercase hex digits", self.sha256),
            ));
        }
        if self.size == 0 || self.size > MAX_MEDIA_BYTES {
            return Err(invalid(
                format!("{path}.size"),
                format!("{} is outside 1..={MAX_MEDIA_BYTES} bytes", self.size),
            ));
        }
        if !ALLOWED_MIME_TYPES.contains(&self.mime.as_str()) {
            return Err(invalid(
                format!("{path}.mime"),
                format!(
                    "{:?} is not one of {}",
                    self.mime,
                    ALLOWED_MIME_TYPES.join(", ")
                ),
            ));
        }
        check_media_url(&self.url).map_err(|problem| invalid(format!("{path}.url"), problem))
    }
}

/// True for exactly 64 lowercase hex digits.
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A media URL is `http(s)://…` or a reference relative to the server URL
/// (`media/…`, `/media/…`). Refused: other schemes (`file:`, `data:`…),
/// dot segments (`..`, also percent-encoded), backslashes, Windows drive
/// paths, whitespace and control characters. The player names cached files
/// by sha256, so the URL never becomes a path; these rules keep a hostile
/// manifest from steering requests at local files or out of the server's
/// media tree.
fn check_media_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("must not be empty".into());
    }
    if url.len() > 2048 {
        return Err(format!(
            "is {} bytes long; at most 2048 are allowed",
            url.len()
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{url:?} contains whitespace or control characters"));
    }
    if url.contains('\\') {
        return Err(format!("{url:?} contains a backslash"));
    }
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("https://") {
        rest
    } else if let Some(rest) = lower.strip_prefix("http://") {
        rest
    } else if let Some(colon) = lower.find(':') {
        // A colon before any '/', '?' or '#' makes a scheme (`file:`, `c:`).
        let first_delimiter = lower.find(['/', '?', '#']).unwrap_or(lower.len());
        if colon < first_delimiter {
            return Err(format!(
                "{url:?} uses the scheme {:?}; only http, https or a path relative to the server are allowed",
                &url[..colon]
            ));
        }
        lower.as_str()
    } else {
        lower.as_str()
    };
    if rest.starts_with("//") && !lower.starts_with("http") {
        return Err(format!(
            "{url:?} is a scheme-relative URL; write http:// or https://"
        ));
    }
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let decoded = path.replace("%2e", ".").replace("%2f", "/");
    if decoded
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(format!("{url:?} contains a '.' or '..' path segment"));
    }
    Ok(())
}

impl Flight {
    /// True when `date` lies in the flight (both ends included).
    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && date <= self.end
    }

    fn validate(&self, path: &str) -> Result<(), ManifestError> {
        if self.start > self.end {
            return Err(invalid(
                path,
                format!("starts {} after it ends {}", self.start, self.end),
            ));
        }
        Ok(())
    }
}

impl Window {
    fn validate(&self, path: &str) -> Result<(), ManifestError> {
        if self.start == self.end {
            return Err(invalid(
                path,
                format!(
                    "opens and closes at {}, so it is never open; omit windows for all day",
                    self.start
                ),
            ));
        }
        Ok(())
    }
}

impl Overlay {
    fn validate(&self, path: &str) -> Result<(), ManifestError> {
        match self {
            Overlay::Ticker {
                campaign,
                text,
                flight,
                windows,
            } => {
                check_id(&format!("{path}.campaign"), campaign)?;
                if text.trim().is_empty() {
                    return Err(invalid(format!("{path}.text"), "must not be empty"));
                }
                flight.validate(&format!("{path}.flight"))?;
                for (index, window) in windows.iter().enumerate() {
                    window.validate(&format!("{path}.windows[{index}]"))?;
                }
                Ok(())
            }
        }
    }
}

impl RootKeys {
    /// Parses the listed keys. Fails on the first key that is not an Ed25519
    /// SubjectPublicKeyInfo PEM or is weak (small order).
    pub fn verifying_keys(&self) -> Result<Vec<ed25519_dalek::VerifyingKey>, ManifestError> {
        self.keys
            .iter()
            .enumerate()
            .map(|(index, pem)| {
                crate::keys::verifying_key_from_pem(pem).map_err(|error| {
                    invalid(
                        format!("root.keys[{index}]"),
                        format!("is not a usable Ed25519 public key: {error}"),
                    )
                })
            })
            .collect()
    }

    /// Checks version, threshold and keys; `path` names the field in errors.
    pub fn validate(&self, path: &str) -> Result<(), ManifestError> {
        if self.version == 0 {
            return Err(invalid(format!("{path}.version"), "must be at least 1"));
        }
        if self.keys.is_empty() || self.keys.len() > MAX_ROOT_KEYS {
            return Err(invalid(
                format!("{path}.keys"),
                format!(
                    "lists {} keys; 1..={MAX_ROOT_KEYS} are allowed",
                    self.keys.len()
                ),
            ));
        }
        let keys = self.verifying_keys()?;
        let distinct: BTreeSet<[u8; 32]> = keys.iter().map(|key| key.to_bytes()).collect();
        if distinct.len() != keys.len() {
            return Err(invalid(
                format!("{path}.keys"),
                "lists the same key twice; a threshold counts distinct keys",
            ));
        }
        if self.threshold == 0 || self.threshold as usize > keys.len() {
            return Err(invalid(
                format!("{path}.threshold"),
                format!("{} is outside 1..={}", self.threshold, keys.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePublicKey as _;

    fn root_pem(seed: u8) -> String {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    }

    fn sample() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "schema": 1,
            "screen_id": "dushanbe-mall-01",
            "version": 7,
            "issued_at": "2026-06-01T08:00:00Z",
            "expires_at": "2026-06-08T08:00:00Z",
            "timezone": "Asia/Dushanbe",
            "items": [
                {
                    "id": "clip-1", "campaign": "26 June",
                    "media": {"sha256": "ab".repeat(32), "size": 1_000_000, "mime": "video/mp4", "url": "/media/abab"},
                    "flight": {"start": "2026-05-28", "end": "2026-06-26"},
                    "windows": [{"days": ["mon", "fri"], "start": "22:00", "end": "02:00"}],
                    "weight": 3
                },
                {
                    "id": "poster-14", "campaign": "Poster of the day",
                    "media": {"sha256": "cd".repeat(32), "size": 52_000, "mime": "image/png", "url": "https://cdn.example.org/m/cdcd"},
                    "duration_ms": 10_000, "fit": "cover",
                    "flight": {"start": "2026-06-01", "end": "2026-06-30"},
                    "dates": ["2026-06-14"]
                }
            ],
            "overlays": [{"kind": "ticker", "campaign": "26 June", "text": "Хати боварӣ: 1313",
                          "flight": {"start": "2026-05-28", "end": "2026-06-26"}}],
            "root": {"version": 1, "keys": [root_pem(1), root_pem(2)], "threshold": 2}
        }))
        .unwrap()
    }

    fn problem_field(manifest: &Manifest) -> String {
        match manifest.validate() {
            Err(ManifestError::Invalid { field, .. }) => field,
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn sample_is_valid_and_round_trips() {
        let manifest = sample();
        manifest.validate().unwrap();
        let bytes = manifest.to_json_bytes();
        assert_eq!(Manifest::from_json(&bytes).unwrap(), manifest);
        assert_eq!(manifest.items[0].weight, 3);
        assert_eq!(manifest.items[1].weight, 1, "weight defaults to 1");
    }

    #[test]
    fn size_cap_is_checked_before_parsing() {
        let oversize = vec![b'{'; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            Manifest::from_json(&oversize),
            Err(ManifestError::TooLarge { size, .. }) if size == MAX_MANIFEST_BYTES + 1
        ));
    }

    #[test]
    fn unknown_fields_and_garbage_are_malformed() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["surprise"] = serde_json::json!(true);
        let bytes = serde_json::to_vec(&value).unwrap();
        assert!(matches!(
            Manifest::from_json(&bytes),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            Manifest::from_json(b"\xff\xfe"),
            Err(ManifestError::Malformed(_))
        ));
    }

    #[test]
    fn other_schema_is_unsupported() {
        let mut manifest = sample();
        manifest.schema = 2;
        assert!(matches!(
            manifest.validate(),
            Err(ManifestError::UnsupportedSchema { found: 2 })
        ));
    }

    #[test]
    fn duplicate_item_ids_are_refused() {
        let mut manifest = sample();
        manifest.items[1].id = "clip-1".into();
        assert!(matches!(
            manifest.validate(),
            Err(ManifestError::DuplicateItemId { index: 1, .. })
        ));
    }

    #[test]
    fn each_rule_names_its_field() {
        type Break = fn(&mut Manifest);
        let cases: &[(&str, Break)] = &[
            ("screen_id", |m| m.screen_id = " ".into()),
            ("version", |m| m.version = 0),
            ("expires_at", |m| m.expires_at = m.issued_at),
            ("timezone", |m| m.timezone = "Mars/Olympus_Mons".into()),
            ("items[0].id", |m| m.items[0].id = String::new()),
            ("items[0].id", |m| m.items[0].id = "a\u{7}b".into()),
            ("items[0].id", |m| {
                m.items[0].id = "x".repeat(MAX_ID_BYTES + 1)
            }),
            ("items[1].campaign", |m| m.items[1].campaign = String::new()),
            ("items[0].media.sha256", |m| {
                m.items[0].media.sha256 = "AB".repeat(32)
            }),
            ("items[0].media.sha256", |m| {
                m.items[0].media.sha256 = "ab".repeat(31)
            }),
            ("items[0].media.size", |m| m.items[0].media.size = 0),
            ("items[0].media.size", |m| {
                m.items[0].media.size = MAX_MEDIA_BYTES + 1
            }),
            ("items[0].media.mime", |m| {
                m.items[0].media.mime = "application/x-sh".into()
            }),
            ("items[1].duration_ms", |m| m.items[1].duration_ms = None),
            ("items[0].duration_ms", |m| m.items[0].duration_ms = Some(0)),
            ("items[0].flight", |m| {
                let flight = &mut m.items[0].flight;
                std::mem::swap(&mut flight.start, &mut flight.end);
            }),
            ("items[0].windows[0]", |m| {
                m.items[0].windows[0].end = m.items[0].windows[0].start
            }),
            ("items[1].dates[0]", |m| {
                m.items[1].dates[0] = jiff::civil::date(2026, 7, 1)
            }),
            ("items[0].weight", |m| m.items[0].weight = 0),
            ("items[0].max_plays_per_hour", |m| {
                m.items[0].max_plays_per_hour = Some(0)
            }),
            ("overlays[0].text", |m| {
                let Overlay::Ticker { text, .. } = &mut m.overlays[0];
                *text = " ".into();
            }),
            ("root.version", |m| m.root.version = 0),
            ("root.threshold", |m| m.root.threshold = 0),
            ("root.threshold", |m| m.root.threshold = 3),
            ("root.keys", |m| m.root.keys.clear()),
            ("root.keys", |m| m.root.keys[1] = m.root.keys[0].clone()),
            ("root.keys[1]", |m| {
                m.root.keys[1] =
                    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()
            }),
            // The identity point: small order, it "verifies" forged signatures.
            ("root.keys[0]", |m| {
                m.root.keys[0] = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END PUBLIC KEY-----\n".into()
            }),
        ];
        for (field, break_it) in cases {
            let mut manifest = sample();
            break_it(&mut manifest);
            assert_eq!(&problem_field(&manifest), field);
        }
    }

    #[test]
    fn media_urls_without_path_tricks() {
        for good in [
            "media/abab",
            "/media/abab",
            "/media/abab?token=1",
            "https://cdn.example.org/m/abab",
            "HTTP://cdn.example.org/m/a:b",
            "/media/a..b",
        ] {
            check_media_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "file:///etc/passwd",
            "FILE:/etc/shadow",
            "data:video/mp4;base64,AAAA",
            "c:/windows/x.mp4",
            "C:\\media\\x.mp4",
            "../../etc/passwd",
            "/media/../../etc/passwd",
            "/media/%2e%2e/secret",
            "/media/%2E%2E/secret",
            "https://cdn.example.org/m/../../x",
            "./x",
            "//evil.example/x",
            "/media/a b",
            "/media/a\nb",
        ] {
            assert!(check_media_url(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
