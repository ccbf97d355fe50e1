//! The TOML source form of a campaign playlist (SPEC §3): what a campaign
//! manager writes and reviews in git, and its validation with
//! `file:line:column` errors.
//!
//! This module owns the format (documented with a commented example in
//! `playlists/FORMAT.md`), [`parse`] (every error in one pass, each pointing
//! at the offending value), [`check_file`] (the same plus "is every media
//! file there"), and [`Playlist::to_manifest_parts`], the conversion the
//! server uses to compile a playlist into manifest items and overlays.
//!
//! Parsing runs in two stages so that one mistake does not hide the next:
//! the TOML is read into a spanned document first (syntax errors, all of
//! them), then each top-level part and each `[[item]]`, `[[daily]]` and
//! `[[ticker]]` table is deserialised on its own (shape errors, one per
//! table at most), and last the values are checked for meaning (dates,
//! time zone, weekdays, durations…), every check reporting at the span of
//! the value it rejects.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use jiff::civil::{Date, Time};
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::manifest::{Fit, Flight, Item, Media, Overlay, Weekday, Window};

/// Longest display time a still may ask for: a day. Anything longer is a typo.
const MAX_STILL_DURATION: SignedDuration = SignedDuration::from_hours(24);

/// Largest weight accepted; share of voice is relative, so this is generous.
const MAX_WEIGHT: i64 = 1_000_000;

/// A play-count cap above one play a second cannot bind and is a typo.
const MAX_PLAYS_PER_HOUR: i64 = 3600;

/// Longest ticker text, in characters: a ticker is one scrolling line.
const MAX_TICKER_CHARS: usize = 2000;

/// Hint appended to every "media file missing" error: sample media is not
/// committed but generated, so a missing file is usually not a typo.
pub const MEDIA_MISSING_HINT: &str =
    "relative to the playlist's folder; the demo generates the sample media";

/// Where in a playlist file something is: `file:line:column`, both 1-based,
/// the column counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file name as it was given to [`parse`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (not bytes: ticker text is Cyrillic).
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem found in a playlist.
#[derive(Debug, thiserror::Error)]
pub enum PlaylistError {
    /// The file is not a valid playlist: bad TOML, a wrong or missing key,
    /// or a value that means nothing (unknown time zone, a date outside the
    /// flight…). The message says what was expected.
    #[error("{at}: {message}")]
    Malformed {
        /// The offending value.
        at: Location,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The playlist is well-formed but names a media file that is not there.
    #[error("{at}: media file missing: {} ({MEDIA_MISSING_HINT})", path.display())]
    MediaMissing {
        /// The `media` value naming the file.
        at: Location,
        /// The path looked at (the playlist's folder joined with the value).
        path: PathBuf,
    },
    /// The playlist file itself could not be read.
    #[error("{}: cannot read the playlist: {source}", file.display())]
    Unreadable {
        /// The playlist file.
        file: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
}

impl PlaylistError {
    /// True when the playlist text itself is at fault (as opposed to a
    /// missing media file or an unreadable playlist).
    pub fn is_malformed(&self) -> bool {
        matches!(self, PlaylistError::Malformed { .. })
    }

    /// Where the problem is, when it is inside the file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PlaylistError::Malformed { at, .. } | PlaylistError::MediaMissing { at, .. } => {
                Some(at)
            }
            PlaylistError::Unreadable { .. } => None,
        }
    }
}

/// Every problem found in one playlist, in file order. Never empty.
#[derive(Debug)]
pub struct PlaylistErrors(pub Vec<PlaylistError>);

impl PlaylistErrors {
    /// The problems, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &PlaylistError> {
        self.0.iter()
    }

    /// True when at least one problem is in the playlist text itself.
    pub fn any_malformed(&self) -> bool {
        self.0.iter().any(PlaylistError::is_malformed)
    }
}

impl fmt::Display for PlaylistErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlaylistErrors {}

/// Which screens a campaign reaches. A screen is targeted when it matches
/// any entry of any list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    /// Venue ids, exact.
    pub venues: Vec<String>,
    /// Screen group names, exact.
    pub groups: Vec<String>,
    /// Screen-id patterns: `*` matches any run of characters, `?` one.
    pub screens: Vec<String>,
}

impl Targets {
    /// Whether a screen with this id, in this venue and these groups, is targeted.
    pub fn matches(&self, screen_id: &str, venue_id: &str, groups: &[&str]) -> bool {
        self.venues.iter().any(|venue| venue == venue_id)
            || self
                .groups
                .iter()
                .any(|group| groups.contains(&group.as_str()))
            || self
                .screens
                .iter()
                .any(|pattern| glob_matches(pattern, screen_id))
    }
}

/// `*`/`?` glob match over characters (iterative, with one backtrack point:
/// linear enough for ids, no pathological blow-up).
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether a media file is decoded as video or shown as a still picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A clip, played to its end unless `duration` caps it.
    Clip,
    /// A poster, shown for its `duration`.
    Still,
}

/// The MIME type the manifest declares for a media file, from its extension
/// (case-insensitive); `None` for a format Ekran does not play.
pub fn mime_for_path(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => return None,
    })
}

/// One schedulable entry of a validated playlist. `[[daily]]` tables are
/// already expanded: one entry per file, each with its single date.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistItem {
    /// Unique across campaigns: `<campaign id>/<local id>`.
    pub id: String,
    /// As written, relative to the playlist's folder.
    pub media: PathBuf,
    /// Where the `media` value is, for "media file missing" errors.
    pub media_at: Location,
    /// MIME type derived from the extension.
    pub mime: &'static str,
    /// Clip or still, derived from the extension.
    pub kind: MediaKind,
    /// Display time (stills) or cap (clips), in milliseconds.
    pub duration_ms: Option<u64>,
    /// How the picture fills the screen.
    pub fit: Fit,
    /// The item's own flight, within the campaign's (the campaign's by default).
    pub flight: Flight,
    /// Weekly windows; empty means all day every day.
    pub windows: Vec<Window>,
    /// If not empty, the only local dates the item plays on.
    pub dates: Vec<Date>,
    /// Share of voice within its priority tier.
    pub weight: u32,
    /// Higher tiers pre-empt lower ones while they have something to play.
    pub priority: u8,
    /// Optional cap on plays per clock hour.
    pub max_plays_per_hour: Option<u32>,
}

/// A ticker line drawn over the content while its flight and windows allow.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticker {
    /// The text, any Unicode, one line.
    pub text: String,
    /// Within the campaign's flight (the campaign's by default).
    pub flight: Flight,
    /// Weekly windows; empty means whenever the flight allows.
    pub windows: Vec<Window>,
}

/// A validated campaign playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    /// The file name given to [`parse`], for messages.
    pub file: String,
    /// Media paths are relative to this folder (the playlist file's folder).
    pub base_dir: PathBuf,
    /// Human campaign name; reports credit airtime to it.
    pub campaign: String,
    /// Short ASCII id, prefix of every item id (`id` or a slug of the name).
    pub campaign_id: String,
    /// Which screens get it.
    pub targets: Targets,
    /// IANA time zone the dates and windows are written in.
    pub timezone: String,
    /// The campaign's inclusive date range.
    pub flight: Flight,
    /// Everything that may play, in file order (`[[item]]` tables first,
    /// then the expanded `[[daily]]` tables).
    pub items: Vec<PlaylistItem>,
    /// Ticker overlays.
    pub tickers: Vec<Ticker>,
}

impl Playlist {
    /// Converts into manifest items and overlays. `media` is called once per
    /// item with the media file's path (the playlist's folder joined with the
    /// value written) and returns its pinned manifest entry (hash, size, URL);
    /// its first error stops the conversion.
    pub fn to_manifest_parts<E>(
        &self,
        media: impl Fn(&Path) -> Result<Media, E>,
    ) -> Result<(Vec<Item>, Vec<Overlay>), E> {
        let mut items = Vec::with_capacity(self.items.len());
        for item in &self.items {
            items.push(Item {
                id: item.id.clone(),
                campaign: self.campaign.clone(),
                media: media(&self.media_path(item))?,
                duration_ms: item.duration_ms,
                fit: item.fit,
                flight: item.flight,
                windows: item.windows.clone(),
                dates: item.dates.clone(),
                weight: item.weight,
                priority: item.priority,
                max_plays_per_hour: item.max_plays_per_hour,
            });
        }
        let overlays = self
            .tickers
            .iter()
            .map(|ticker| Overlay::Ticker {
                campaign: self.campaign.clone(),
                text: ticker.text.clone(),
                flight: ticker.flight,
                windows: ticker.windows.clone(),
            })
            .collect();
        Ok((items, overlays))
    }

    /// The path of an item's media file on disk.
    pub fn media_path(&self, item: &PlaylistItem) -> PathBuf {
        self.base_dir.join(&item.media)
    }

    /// Number of distinct local dates on which at least one item may play.
    pub fn flight_days(&self) -> i64 {
        (self.flight.end - self.flight.start).get_days() as i64 + 1
    }
}

/// Reads a playlist file, validates it and checks that every media file it
/// names exists. Errors are in file order; malformed-playlist errors and
/// missing-media errors are told apart ([`PlaylistError::is_malformed`]).
pub fn check_file(path: &Path) -> Result<Playlist, PlaylistErrors> {
    let source = std::fs::read_to_string(path).map_err(|source| {
        PlaylistErrors(vec![PlaylistError::Unreadable {
            file: path.to_path_buf(),
            source,
        }])
    })?;
    let playlist = parse(&source, path)?;
    let mut missing: Vec<PlaylistError> = playlist
        .items
        .iter()
        .filter_map(|item| {
            let media_path = playlist.media_path(item);
            (!media_path.is_file()).then(|| PlaylistError::MediaMissing {
                at: item.media_at.clone(),
                path: media_path,
            })
        })
        .collect();
    // `[[daily]]` items come after `[[item]]` ones but may sit above them.
    missing.sort_by(|a, b| a.location().cmp(&b.location()));
    if missing.is_empty() {
        Ok(playlist)
    } else {
        Err(PlaylistErrors(missing))
    }
}

/// Parses and validates playlist source text. `file` names it in error
/// locations and its folder is the base for media paths. Reports every
/// error it can find, not just the first.
pub fn parse(source: &str, file: &Path) -> Result<Playlist, PlaylistErrors> {
    let mut checker = Checker {
        source,
        file: file.display().to_string(),
        errors: Vec::new(),
    };
    let playlist = checker.parse_document(file);
    match playlist {
        Some(playlist) if checker.errors.is_empty() => Ok(playlist),
        _ => {
            let mut errors = checker.errors;
            errors.sort_by(|a, b| a.location().cmp(&b.location()));
            Err(PlaylistErrors(errors))
        }
    }
}

// --- Stage two: the shape of each table, deserialised with spans. ---

/// Top-level keys other than the repeated tables, each deserialised on its
/// own so that one bad key does not hide the others; `None` when missing
/// or of the wrong shape (already reported).
struct RawHeader {
    campaign: Option<Spanned<String>>,
    id: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    targets: Option<Spanned<RawTargets>>,
    flight: Option<Spanned<RawFlight>>,
    /// Keys present in the file, well-formed or not.
    present: Vec<String>,
}

/// Every key a playlist may have at the top level, for "unknown key" errors.
const TOP_LEVEL_KEYS: &str =
    "campaign, id, timezone, [targets], [flight], [[item]], [[daily]], [[ticker]]";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    venues: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    screens: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlight {
    start: Spanned<toml::Value>,
    end: Spanned<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default)]
    days: Vec<Spanned<String>>,
    start: Spanned<toml::Value>,
    end: Spanned<toml::Value>,
}

/// The rules shared by `[[item]]` and `[[daily]]` tables. Not deserialised
/// itself: `#[serde(flatten)]` would buffer the values and lose their spans
/// (and cannot deny unknown keys), so both tables list the fields and hand
/// them over with `into_rules`.
struct RawRules {
    duration: Option<Spanned<toml::Value>>,
    fit: Option<Spanned<String>>,
    flight: Option<Spanned<RawFlight>>,
    windows: Vec<Spanned<RawWindow>>,
    weight: Option<Spanned<toml::Value>>,
    priority: Option<Spanned<toml::Value>>,
    max_plays_per_hour: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: Option<Spanned<String>>,
    media: Spanned<String>,
    #[serde(default)]
    dates: Vec<Spanned<toml::Value>>,
    duration: Option<Spanned<toml::Value>>,
    fit: Option<Spanned<String>>,
    flight: Option<Spanned<RawFlight>>,
    #[serde(default)]
    windows: Vec<Spanned<RawWindow>>,
    weight: Option<Spanned<toml::Value>>,
    priority: Option<Spanned<toml::Value>>,
    max_plays_per_hour: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaily {
    id: Option<Spanned<String>>,
    start: Spanned<toml::Value>,
    media: Spanned<Vec<Spanned<String>>>,
    duration: Option<Spanned<toml::Value>>,
    fit: Option<Spanned<String>>,
    flight: Option<Spanned<RawFlight>>,
    #[serde(default)]
    windows: Vec<Spanned<RawWindow>>,
    weight: Option<Spanned<toml::Value>>,
    priority: Option<Spanned<toml::Value>>,
    max_plays_per_hour: Option<Spanned<toml::Value>>,
}

/// Moves the shared rule fields out of an `[[item]]` or `[[daily]]` table.
macro_rules! into_rules {
    ($raw:expr) => {
        RawRules {
            duration: $raw.duration,
            fit: $raw.fit,
            flight: $raw.flight,
            windows: $raw.windows,
            weight: $raw.weight,
            priority: $raw.priority,
            max_plays_per_hour: $raw.max_plays_per_hour,
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTicker {
    text: Spanned<String>,
    flight: Option<Spanned<RawFlight>>,
    #[serde(default)]
    windows: Vec<Spanned<RawWindow>>,
}

/// Collects errors while walking one source text.
struct Checker<'s> {
    source: &'s str,
    file: String,
    errors: Vec<PlaylistError>,
}

/// Item rules after validation, before the media path is attached.
struct Rules {
    duration_ms: Option<u64>,
    fit: Fit,
    flight: Flight,
    windows: Vec<Window>,
    weight: u32,
    priority: u8,
    max_plays_per_hour: Option<u32>,
}

impl Checker<'_> {
    fn location(&self, span: &Range<usize>) -> Location {
        let offset = span.start.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let at = self.location(span);
        self.errors.push(PlaylistError::Malformed {
            at,
            message: message.into(),
        });
    }

    fn toml_error(&mut self, error: &toml::de::Error, fallback: &Range<usize>) {
        let span = error.span().unwrap_or_else(|| fallback.clone());
        let message = error.message().trim().to_owned();
        self.error(&span, message);
    }

    /// Deserialises one spanned TOML value into `T`, recording a failure.
    fn shape<'de, T: Deserialize<'de>>(&mut self, value: Spanned<DeValue<'de>>) -> Option<T> {
        let span = value.span();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.toml_error(&error, &span);
                None
            }
        }
    }

    /// The elements of a repeated table (`[[item]]`), each deserialised alone.
    fn repeated<'de, T: Deserialize<'de>>(
        &mut self,
        key: &str,
        value: Option<Spanned<DeValue<'de>>>,
    ) -> Vec<Option<T>> {
        let Some(value) = value else {
            return Vec::new();
        };
        let span = value.span();
        match value.into_inner() {
            DeValue::Array(array) => array
                .into_iter()
                .map(|element| self.shape(element))
                .collect(),
            other => {
                self.error(
                    &span,
                    format!(
                        "`{key}` must be an array of tables (`[[{key}]]`), found a {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn parse_document(&mut self, file: &Path) -> Option<Playlist> {
        let (document, syntax_errors) = DeTable::parse_recoverable(self.source);
        if !syntax_errors.is_empty() {
            // A document that is not valid TOML is recovered only in part:
            // checking its meaning would report errors that are not there.
            let whole = 0..self.source.len();
            for error in &syntax_errors {
                self.toml_error(error, &whole);
            }
            return None;
        }
        let mut header = RawHeader {
            campaign: None,
            id: None,
            timezone: None,
            targets: None,
            flight: None,
            present: Vec::new(),
        };
        let (mut items, mut dailies, mut tickers) = (None, None, None);
        for (key, value) in document.into_inner() {
            header.present.push(key.get_ref().to_string());
            match key.get_ref().as_ref() {
                "campaign" => header.campaign = self.shape(value),
                "id" => header.id = self.shape(value),
                "timezone" => header.timezone = self.shape(value),
                "targets" => header.targets = self.shape(value),
                "flight" => header.flight = self.shape(value),
                "item" => items = Some(value),
                "daily" => dailies = Some(value),
                "ticker" => tickers = Some(value),
                unknown => self.error(
                    &key.span(),
                    format!("unknown key `{unknown}`, expected one of {TOP_LEVEL_KEYS}"),
                ),
            }
        }
        let raw_items: Vec<Option<RawItem>> = self.repeated("item", items);
        let raw_dailies: Vec<Option<RawDaily>> = self.repeated("daily", dailies);
        let raw_tickers: Vec<Option<RawTicker>> = self.repeated("ticker", tickers);

        // Meaning. Without a valid header the tables are still checked,
        // against a flight that admits every date; the playlist is rejected
        // anyway, but with every error found.
        let header = self.header(header);
        let campaign_flight = header.as_ref().map_or(
            Flight {
                start: Date::MIN,
                end: Date::MAX,
            },
            |header| header.flight,
        );
        let campaign_id = header.as_ref().map_or_else(
            || "campaign".to_owned(),
            |header| header.campaign_id.clone(),
        );

        let mut playlist_items = Vec::new();
        let mut ids: HashMap<String, Location> = HashMap::new();
        for (index, raw) in raw_items.into_iter().enumerate() {
            let Some(raw) = raw else { continue };
            let local_id = self.local_id(raw.id.as_ref(), || format!("item-{:02}", index + 1));
            let id_at = raw.id.as_ref().map(|id| self.location(&id.span()));
            if let Some(item) = self.item(raw, campaign_flight, &campaign_id, local_id) {
                self.unique_id(&mut ids, &item, id_at);
                playlist_items.push(item);
            }
        }
        for (index, raw) in raw_dailies.into_iter().enumerate() {
            let Some(raw) = raw else { continue };
            let prefix = self.local_id(raw.id.as_ref(), || format!("daily-{}", index + 1));
            for item in self.daily(raw, campaign_flight, &campaign_id, prefix) {
                self.unique_id(&mut ids, &item, None);
                playlist_items.push(item);
            }
        }
        let mut playlist_tickers = Vec::new();
        for raw in raw_tickers.into_iter().flatten() {
            if let Some(ticker) = self.ticker(raw, campaign_flight) {
                playlist_tickers.push(ticker);
            }
        }
        if playlist_items.is_empty() && self.errors.is_empty() {
            self.error(
                &(0..0),
                "the playlist has nothing to play: add at least one [[item]] or [[daily]] table",
            );
        }
        let header = header?;
        Some(Playlist {
            file: self.file.clone(),
            base_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            campaign: header.campaign,
            campaign_id: header.campaign_id,
            targets: header.targets,
            timezone: header.timezone,
            flight: header.flight,
            items: playlist_items,
            tickers: playlist_tickers,
        })
    }

    /// Reports an item id used before, at the explicit `id` value when there
    /// is one, else at the item's media (for derived ids).
    fn unique_id(
        &mut self,
        ids: &mut HashMap<String, Location>,
        item: &PlaylistItem,
        id_at: Option<Location>,
    ) {
        let at = id_at.unwrap_or_else(|| item.media_at.clone());
        if let Some(first) = ids.get(&item.id) {
            let message = format!(
                "item id `{}` is already used at {first}: ids must be unique in a playlist",
                item.id
            );
            self.errors.push(PlaylistError::Malformed { at, message });
        } else {
            ids.insert(item.id.clone(), at);
        }
    }
}

/// The validated top-level keys.
struct Header {
    campaign: String,
    campaign_id: String,
    timezone: String,
    targets: Targets,
    flight: Flight,
}

impl Checker<'_> {
    fn header(&mut self, raw: RawHeader) -> Option<Header> {
        let present = raw.present;
        let campaign = self.required(
            raw.campaign,
            &present,
            "campaign",
            "campaign = \"26 June 2027\"",
        );
        let campaign = campaign.and_then(|spanned| {
            let name = spanned.get_ref().trim().to_owned();
            if name.is_empty() {
                self.error(&spanned.span(), "`campaign` is empty: name the campaign");
                return None;
            }
            Some((name, spanned.span()))
        });
        let campaign_id = match (&raw.id, &campaign) {
            (Some(id), _) => self.id_value(id, "campaign id"),
            (None, Some((name, span))) => {
                let slug = slug(name);
                if slug.is_empty() {
                    self.error(
                        span,
                        "cannot derive an id from this name (no ASCII letters or digits): \
                         add `id = \"short-ascii-name\"`",
                    );
                    None
                } else {
                    Some(slug)
                }
            }
            (None, None) => None,
        };
        let timezone = self
            .required(
                raw.timezone,
                &present,
                "timezone",
                "timezone = \"Asia/Dushanbe\"",
            )
            .and_then(|timezone| self.timezone(&timezone));
        let targets = self
            .required(
                raw.targets,
                &present,
                "targets",
                "[targets] with screens = [\"*\"]",
            )
            .and_then(|targets| self.targets(&targets));
        let flight = self
            .required(
                raw.flight,
                &present,
                "flight",
                "[flight] with start = 2027-05-28 and end = 2027-06-26",
            )
            .and_then(|flight| self.flight(flight.get_ref(), None));
        Some(Header {
            campaign: campaign?.0,
            campaign_id: campaign_id?,
            timezone: timezone?,
            targets: targets?,
            flight: flight?,
        })
    }

    /// Reports a missing required top-level key (at the top of the file).
    fn required<T>(
        &mut self,
        value: Option<T>,
        present: &[String],
        key: &str,
        example: &str,
    ) -> Option<T> {
        if value.is_none() && !present.iter().any(|present| present == key) {
            self.error(&(0..0), format!("missing `{key}`: expected e.g. {example}"));
        }
        value
    }

    fn timezone(&mut self, raw: &Spanned<String>) -> Option<String> {
        let name = raw.get_ref();
        match jiff::tz::TimeZone::get(name) {
            Ok(_) => Some(name.clone()),
            Err(error) => {
                self.error(
                    &raw.span(),
                    format!(
                        "unknown time zone \"{name}\": expected an IANA name such as \
                         \"Asia/Dushanbe\" or \"Europe/Berlin\" ({error})"
                    ),
                );
                None
            }
        }
    }

    fn targets(&mut self, raw: &Spanned<RawTargets>) -> Option<Targets> {
        let targets = raw.get_ref();
        let mut ok = true;
        let mut names = |list: &[Spanned<String>], what: &str, pattern: bool| -> Vec<String> {
            let mut values = Vec::new();
            for entry in list {
                let value = entry.get_ref();
                let allowed = |c: char| {
                    c.is_alphanumeric()
                        || matches!(c, '-' | '_' | '.' | ':')
                        || (pattern && matches!(c, '*' | '?'))
                };
                if value.is_empty() || !value.chars().all(allowed) {
                    let expected = if pattern {
                        "letters, digits, `-_.:` and the wildcards `*` and `?`"
                    } else {
                        "letters, digits and `-_.:`"
                    };
                    self.error(
                        &entry.span(),
                        format!("invalid {what} \"{value}\": expected {expected}"),
                    );
                    ok = false;
                } else {
                    values.push(value.clone());
                }
            }
            values
        };
        let parsed = Targets {
            venues: names(&targets.venues, "venue id", false),
            groups: names(&targets.groups, "screen group", false),
            screens: names(&targets.screens, "screen pattern", true),
        };
        if ok && parsed.venues.is_empty() && parsed.groups.is_empty() && parsed.screens.is_empty() {
            self.error(
                &raw.span(),
                "no targets: the campaign would reach no screen; list `venues`, `groups` \
                 or `screens` (`screens = [\"*\"]` for every screen)",
            );
            ok = false;
        }
        ok.then_some(parsed)
    }

    /// Validates a flight; `within` is the campaign flight an item's own
    /// flight must stay inside.
    fn flight(&mut self, raw: &RawFlight, within: Option<Flight>) -> Option<Flight> {
        let start = self.date(&raw.start);
        let end = self.date(&raw.end);
        let (start, end) = (start?, end?);
        if end < start {
            self.error(
                &raw.end.span(),
                format!("the flight ends on {end}, before it starts on {start}"),
            );
            return None;
        }
        let flight = Flight { start, end };
        if let Some(campaign) = within
            && (start < campaign.start || end > campaign.end)
        {
            self.error(
                &raw.start.span(),
                format!(
                    "this flight ({start} – {end}) reaches outside the campaign's flight \
                     ({} – {}): an item plays only within the campaign's dates",
                    campaign.start, campaign.end
                ),
            );
            return None;
        }
        Some(flight)
    }

    fn date(&mut self, raw: &Spanned<toml::Value>) -> Option<Date> {
        let parsed = match raw.get_ref() {
            toml::Value::Datetime(datetime) => {
                match (datetime.date, datetime.time, datetime.offset) {
                    (Some(date), None, None) => {
                        Date::new(date.year as i16, date.month as i8, date.day as i8).ok()
                    }
                    _ => None,
                }
            }
            toml::Value::String(text) => text.parse::<Date>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                &raw.span(),
                format!(
                    "expected a date like 2027-06-26, found {}",
                    describe_value(raw.get_ref())
                ),
            );
        }
        parsed
    }

    fn time(&mut self, raw: &Spanned<toml::Value>) -> Option<Time> {
        let parsed = match raw.get_ref() {
            toml::Value::Datetime(datetime) => {
                match (datetime.date, datetime.time, datetime.offset) {
                    (None, Some(time), None) => Time::new(
                        time.hour as i8,
                        time.minute as i8,
                        time.second as i8,
                        time.nanosecond as i32,
                    )
                    .ok(),
                    _ => None,
                }
            }
            // "24:00" reads naturally as "until midnight"; a window ending at
            // 00:00 means the same (it wraps to the end of the day).
            toml::Value::String(text) if text == "24:00" => Some(Time::midnight()),
            toml::Value::String(text) => text.parse::<Time>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                &raw.span(),
                format!(
                    "expected a time of day like \"08:00\" or \"22:30\", found {}",
                    describe_value(raw.get_ref())
                ),
            );
        }
        parsed
    }

    fn windows(&mut self, raw: &[Spanned<RawWindow>]) -> Option<Vec<Window>> {
        let mut windows = Vec::new();
        let mut ok = true;
        for spanned in raw {
            let window = spanned.get_ref();
            let days = self.weekdays(&window.days);
            let start = self.time(&window.start);
            let end = self.time(&window.end);
            match (days, start, end) {
                (Some(_), Some(start), Some(end)) if start == end => {
                    self.error(
                        &window.end.span(),
                        format!(
                            "the window opens and closes at {start}: it would be empty; \
                             leave out `windows` to play all day"
                        ),
                    );
                    ok = false;
                }
                (Some(days), Some(start), Some(end)) => windows.push(Window { days, start, end }),
                _ => ok = false,
            }
        }
        ok.then_some(windows)
    }

    fn weekdays(&mut self, raw: &[Spanned<String>]) -> Option<Vec<Weekday>> {
        let mut days = BTreeSet::new();
        let mut ok = true;
        for entry in raw {
            match parse_days(entry.get_ref()) {
                Some(parsed) => days.extend(parsed.into_iter().map(weekday_index)),
                None => {
                    self.error(
                        &entry.span(),
                        format!(
                            "unknown weekday \"{}\": expected mon, tue, wed, thu, fri, sat, sun, \
                             a range like \"mon-fri\", \"weekdays\" or \"weekend\"",
                            entry.get_ref()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then(|| days.into_iter().map(|index| WEEKDAYS[index]).collect())
    }

    fn duration(&mut self, raw: &Spanned<toml::Value>) -> Option<u64> {
        let parsed = match raw.get_ref() {
            toml::Value::Integer(seconds) => Some(SignedDuration::from_secs(*seconds)),
            toml::Value::String(text) => text.parse::<SignedDuration>().ok(),
            _ => None,
        };
        match parsed {
            Some(duration) if duration > SignedDuration::ZERO && duration <= MAX_STILL_DURATION => {
                u64::try_from(duration.as_millis()).ok()
            }
            Some(duration) => {
                self.error(
                    &raw.span(),
                    format!("duration {duration:#} is out of range: expected more than 0s and at most 24h"),
                );
                None
            }
            None => {
                self.error(
                    &raw.span(),
                    format!(
                        "expected a duration like \"20s\" or \"1m 30s\" (or whole seconds), found {}",
                        describe_value(raw.get_ref())
                    ),
                );
                None
            }
        }
    }

    fn bounded(
        &mut self,
        raw: &Spanned<toml::Value>,
        what: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        match raw.get_ref() {
            toml::Value::Integer(value) if (min..=max).contains(value) => Some(*value),
            toml::Value::Integer(value) => {
                self.error(
                    &raw.span(),
                    format!("{what} {value} is out of range: expected {min} to {max}"),
                );
                None
            }
            other => {
                self.error(
                    &raw.span(),
                    format!(
                        "{what} must be a whole number from {min} to {max}, found {}",
                        describe_value(other)
                    ),
                );
                None
            }
        }
    }

    fn id_value(&mut self, raw: &Spanned<String>, what: &str) -> Option<String> {
        let value = raw.get_ref();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if value.is_empty() || !value.chars().all(allowed) {
            self.error(
                &raw.span(),
                format!(
                    "invalid {what} \"{value}\": expected ASCII letters, digits, `-`, `_` or `.`"
                ),
            );
            None
        } else {
            Some(value.clone())
        }
    }

    /// The explicit id of a table or a derived one. An invalid explicit id
    /// is reported and replaced by the derived one so checking goes on.
    fn local_id(
        &mut self,
        explicit: Option<&Spanned<String>>,
        derived: impl Fn() -> String,
    ) -> String {
        explicit
            .and_then(|id| self.id_value(id, "id"))
            .unwrap_or_else(derived)
    }

    fn rules(&mut self, raw: &RawRules, campaign_flight: Flight) -> Option<Rules> {
        let duration_ms = raw
            .duration
            .as_ref()
            .map(|duration| self.duration(duration));
        let fit = raw.fit.as_ref().map(|fit| self.fit(fit));
        let flight = match &raw.flight {
            Some(flight) => self.flight(flight.get_ref(), Some(campaign_flight)),
            None => Some(campaign_flight),
        };
        let windows = self.windows(&raw.windows);
        let weight = raw
            .weight
            .as_ref()
            .map(|weight| self.bounded(weight, "weight", 1, MAX_WEIGHT));
        let priority = raw
            .priority
            .as_ref()
            .map(|priority| self.bounded(priority, "priority", 0, u8::MAX.into()));
        let max_plays_per_hour = raw
            .max_plays_per_hour
            .as_ref()
            .map(|cap| self.bounded(cap, "max_plays_per_hour", 1, MAX_PLAYS_PER_HOUR));
        // `None` inside means "given but invalid" (reported above); absent
        // keys take their defaults.
        Some(Rules {
            duration_ms: duration_ms.map_or(Some(None), |parsed| parsed.map(Some))?,
            fit: fit.unwrap_or(Some(Fit::Contain))?,
            flight: flight?,
            windows: windows?,
            weight: weight.map_or(Some(1), |parsed| parsed.and_then(|w| u32::try_from(w).ok()))?,
            priority: priority
                .map_or(Some(0), |parsed| parsed.and_then(|p| u8::try_from(p).ok()))?,
            max_plays_per_hour: max_plays_per_hour.map_or(Some(None), |parsed| {
                parsed.and_then(|cap| u32::try_from(cap).ok()).map(Some)
            })?,
        })
    }

    fn fit(&mut self, raw: &Spanned<String>) -> Option<Fit> {
        match raw.get_ref().as_str() {
            "contain" => Some(Fit::Contain),
            "cover" => Some(Fit::Cover),
            other => {
                self.error(
                    &raw.span(),
                    format!(
                        "unknown fit \"{other}\": expected \"contain\" (whole picture, \
                         letterboxed) or \"cover\" (fills the screen, cropped)"
                    ),
                );
                None
            }
        }
    }

    /// Validates a media path: relative, of a format Ekran plays, and a
    /// still only with a `duration`.
    fn media_file(&mut self, media: &Spanned<String>, has_duration: bool) -> Option<MediaFile> {
        let path = PathBuf::from(media.get_ref());
        let span = media.span();
        if media.get_ref().trim().is_empty() {
            self.error(
                &span,
                "`media` is empty: expected a file path like \"media/clip-01.mp4\"",
            );
            return None;
        }
        if path.is_absolute() {
            self.error(
                &span,
                "media paths are relative to the playlist's folder, not absolute: \
                 expected e.g. \"media/clip-01.mp4\"",
            );
            return None;
        }
        let Some(mime) = mime_for_path(&path) else {
            self.error(
                &span,
                format!(
                    "unsupported media file \"{}\": expected .mp4, .m4v, .mkv, .webm (clips) \
                     or .png, .jpg, .jpeg (stills)",
                    path.display()
                ),
            );
            return None;
        };
        let kind = if mime.starts_with("image/") {
            MediaKind::Still
        } else {
            MediaKind::Clip
        };
        if kind == MediaKind::Still && !has_duration {
            self.error(
                &span,
                format!(
                    "\"{}\" is a still picture: it needs `duration`, e.g. duration = \"20s\"",
                    path.display()
                ),
            );
            return None;
        }
        Some(MediaFile {
            path,
            at: self.location(&span),
            mime,
            kind,
        })
    }

    fn item(
        &mut self,
        mut raw: RawItem,
        campaign_flight: Flight,
        campaign_id: &str,
        local_id: String,
    ) -> Option<PlaylistItem> {
        let media = self.media_file(&raw.media, raw.duration.is_some());
        let raw_dates = std::mem::take(&mut raw.dates);
        let rules = self.rules(&into_rules!(raw), campaign_flight);
        // Dates are checked against the item's flight when it is valid, else
        // against the campaign's, so a bad flight does not hide bad dates.
        let flight = rules.as_ref().map_or(campaign_flight, |rules| rules.flight);
        let mut dates = Vec::new();
        let mut dates_ok = true;
        for spanned in &raw_dates {
            let Some(date) = self.date(spanned) else {
                dates_ok = false;
                continue;
            };
            if dates.contains(&date) {
                self.error(
                    &spanned.span(),
                    format!("{date} is listed twice in `dates`"),
                );
                dates_ok = false;
            } else if !(flight.start..=flight.end).contains(&date) {
                self.error(
                    &spanned.span(),
                    format!(
                        "{date} is outside the flight ({} – {}): the item would never play on it",
                        flight.start, flight.end
                    ),
                );
                dates_ok = false;
            } else {
                dates.push(date);
            }
        }
        dates.sort();
        let (media, rules) = (media?, rules?);
        dates_ok
            .then(|| PlaylistItem::new(format!("{campaign_id}/{local_id}"), media, &rules, dates))
    }

    fn daily(
        &mut self,
        raw: RawDaily,
        campaign_flight: Flight,
        campaign_id: &str,
        prefix: String,
    ) -> Vec<PlaylistItem> {
        let has_duration = raw.duration.is_some();
        let files: Vec<Option<MediaFile>> = raw
            .media
            .get_ref()
            .iter()
            .map(|file| self.media_file(file, has_duration))
            .collect();
        let (start_raw, media_span) = (raw.start.clone(), raw.media.span());
        let rules = self.rules(&into_rules!(raw), campaign_flight);
        let start = self.date(&start_raw);
        if files.is_empty() {
            self.error(
                &media_span,
                "`media` lists no files: expected one file per day, e.g. [\"media/poster-day-01.png\"]",
            );
            return Vec::new();
        }
        let (Some(rules), Some(start)) = (rules, start) else {
            return Vec::new();
        };
        let days = i32::try_from(files.len()).unwrap_or(i32::MAX);
        let last = start.checked_add(jiff::Span::new().days(days - 1)).ok();
        let fits = last.is_some_and(|last| start >= rules.flight.start && last <= rules.flight.end);
        if !fits {
            let last = last.map_or_else(|| "far in the future".to_owned(), |last| last.to_string());
            self.error(
                &start_raw.span(),
                format!(
                    "{} files, one a day from {start}, run until {last}: outside the flight ({} – {})",
                    files.len(),
                    rules.flight.start,
                    rules.flight.end
                ),
            );
            return Vec::new();
        }
        let mut items = Vec::new();
        let mut date = start;
        for (index, file) in files.into_iter().enumerate() {
            if let Some(file) = file {
                let id = format!("{campaign_id}/{prefix}-day-{:02}", index + 1);
                items.push(PlaylistItem::new(id, file, &rules, vec![date]));
            }
            date = date.tomorrow().unwrap_or(date);
        }
        items
    }

    fn ticker(&mut self, raw: RawTicker, campaign_flight: Flight) -> Option<Ticker> {
        let text = raw.text.get_ref().trim().to_owned();
        let mut ok = true;
        if text.is_empty() {
            self.error(
                &raw.text.span(),
                "ticker `text` is empty: expected the line to scroll",
            );
            ok = false;
        } else if text.chars().any(char::is_control) {
            self.error(
                &raw.text.span(),
                "ticker text must be one line: expected no line breaks, tabs or control characters",
            );
            ok = false;
        } else if text.chars().count() > MAX_TICKER_CHARS {
            self.error(
                &raw.text.span(),
                format!("ticker text is longer than {MAX_TICKER_CHARS} characters: shorten it"),
            );
            ok = false;
        }
        let flight = match &raw.flight {
            Some(flight) => self.flight(flight.get_ref(), Some(campaign_flight)),
            None => Some(campaign_flight),
        };
        let windows = self.windows(&raw.windows);
        if !ok {
            return None;
        }
        Some(Ticker {
            text,
            flight: flight?,
            windows: windows?,
        })
    }
}

/// A validated media reference.
struct MediaFile {
    path: PathBuf,
    at: Location,
    mime: &'static str,
    kind: MediaKind,
}

impl PlaylistItem {
    fn new(id: String, media: MediaFile, rules: &Rules, dates: Vec<Date>) -> Self {
        PlaylistItem {
            id,
            media: media.path,
            media_at: media.at,
            mime: media.mime,
            kind: media.kind,
            duration_ms: rules.duration_ms,
            fit: rules.fit,
            flight: rules.flight,
            windows: rules.windows.clone(),
            dates,
            weight: rules.weight,
            priority: rules.priority,
            max_plays_per_hour: rules.max_plays_per_hour,
        }
    }
}

/// Monday first, the order windows list their days in.
const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

fn weekday_index(day: Weekday) -> usize {
    WEEKDAYS.iter().position(|&d| d == day).unwrap_or_default()
}

/// One day name (`mon`, `monday`), a range (`mon-fri`, wrapping `fri-mon`),
/// `weekdays` or `weekend`; case-insensitive.
fn parse_days(text: &str) -> Option<Vec<Weekday>> {
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "weekdays" => return Some(WEEKDAYS[..5].to_vec()),
        "weekend" | "weekends" => return Some(WEEKDAYS[5..].to_vec()),
        _ => {}
    }
    let one = |name: &str| -> Option<usize> {
        const NAMES: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        NAMES.iter().position(|full| {
            name.len() >= 3 && full.starts_with(name) && (name.len() == 3 || name == *full)
        })
    };
    match text.split_once('-') {
        None => one(&text).map(|index| vec![WEEKDAYS[index]]),
        Some((first, last)) => {
            let (first, last) = (one(first.trim())?, one(last.trim())?);
            let mut days = vec![WEEKDAYS[first]];
            let mut index = first;
            while index != last {
                index = (index + 1) % 7;
                days.push(WEEKDAYS[index]);
            }
            Some(days)
        }
    }
}

/// ASCII slug of a campaign name: lowercase letters and digits joined by `-`.
fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// Names a TOML value in an error message: its type and, for short ones, itself.
fn describe_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => format!("the string \"{text}\""),
        toml::Value::Integer(number) => format!("the integer {number}"),
        toml::Value::Float(number) => format!("the float {number}"),
        toml::Value::Boolean(flag) => format!("the boolean {flag}"),
        toml::Value::Datetime(datetime) => {
            let kind = match (datetime.date, datetime.time, datetime.offset) {
                (Some(_), Some(_), Some(_)) => "offset date-time",
                (Some(_), Some(_), None) => "local date-time",
                (Some(_), None, _) => "date",
                (None, Some(_), _) => "time",
                (None, None, _) => "date-time",
            };
            format!("the {kind} {datetime}")
        }
        toml::Value::Array(_) => "an array".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_patterns() {
        assert!(glob_matches("dyu-*", "dyu-korvon-01"));
        assert!(glob_matches("*-01", "dyu-korvon-01"));
        assert!(glob_matches("dyu-?-01", "dyu-a-01"));
        assert!(!glob_matches("dyu-?-01", "dyu-ab-01"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "aXXbYYbZc"));
        assert!(!glob_matches("a*b*c", "aXXbYYbZ"));
        assert!(!glob_matches("dyu-*", "khj-01"));
    }

    #[test]
    fn targets_match_any_list() {
        let targets = Targets {
            venues: vec!["korvon".into()],
            groups: vec!["supermarkets".into()],
            screens: vec!["khj-*".into()],
        };
        assert!(targets.matches("dyu-1", "korvon", &[]));
        assert!(targets.matches("dyu-1", "other", &["malls", "supermarkets"]));
        assert!(targets.matches("khj-7", "other", &[]));
        assert!(!targets.matches("dyu-1", "other", &["malls"]));
    }

    #[test]
    fn day_names_ranges_and_shorthands() {
        use Weekday::*;
        assert_eq!(parse_days("Mon"), Some(vec![Mon]));
        assert_eq!(parse_days("friday"), Some(vec![Fri]));
        assert_eq!(parse_days("mon-fri"), Some(vec![Mon, Tue, Wed, Thu, Fri]));
        assert_eq!(parse_days("fri-mon"), Some(vec![Fri, Sat, Sun, Mon]));
        assert_eq!(parse_days("weekend"), Some(vec![Sat, Sun]));
        assert_eq!(parse_days("fr"), None);
        assert_eq!(parse_days("frid"), None);
        assert_eq!(parse_days("mon-xyz"), None);
    }

    #[test]
    fn slugs_keep_ascii_words() {
        assert_eq!(
            slug("Freedom from torture — 26 June 2027"),
            "freedom-from-torture-26-june-2027"
        );
        assert_eq!(slug("Телефони боварӣ"), "");
    }

    #[test]
    fn mime_types_follow_extensions() {
        assert_eq!(mime_for_path(Path::new("a/B.MP4")), Some("video/mp4"));
        assert_eq!(mime_for_path(Path::new("poster.jpeg")), Some("image/jpeg"));
        assert_eq!(mime_for_path(Path::new("poster.gif")), None);
        assert_eq!(mime_for_path(Path::new("noext")), None);
    }
}
