//! The player's configuration file (`ekran player --config FILE`, SPEC §5):
//! a TOML file in which every field has a default, so an empty file is a
//! valid configuration and an operator writes only what differs.
//!
//! Unknown fields are rejected with their name (a misspelt `quota_byte`
//! must not silently fall back to the default). `deploy/player.toml` is the
//! commented example; a test keeps the two in agreement.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the player config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown field or a value of the wrong type.
    #[error("invalid player config {path}: {message}")]
    Parse {
        /// The file (or `<string>`).
        path: PathBuf,
        /// The parser's message, with line, column and the field's name.
        message: String,
    },
    /// The values parse but make no sense together.
    #[error("invalid player config {path}: {field}: {problem}")]
    Invalid {
        /// The file (or `<string>`).
        path: PathBuf,
        /// Dotted name of the offending field, e.g. `download.backoff_cap`.
        field: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
}

/// Everything the player reads from its config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayerConfig {
    /// Base URL of the Ekran server's device API, e.g. `https://signage.example.org`.
    pub server_url: String,
    /// Where the box keeps its state: screen identity (key, id), trust state,
    /// media cache and proof-of-play journal. Must survive reboots. The
    /// default is ekran-player.service's `StateDirectory`.
    pub data_dir: PathBuf,
    /// Media cache limits.
    pub cache: CacheConfig,
    /// How media are fetched.
    pub download: DownloadConfig,
    /// Talking to the server: heartbeats and proof-of-play uploads.
    pub sync: SyncConfig,
    /// Screen output, read by the playback engine.
    pub output: OutputConfig,
}

impl Default for PlayerConfig {
    fn default() -> Self {
        Self {
            server_url: "http://127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("/var/lib/ekran-player"),
            cache: CacheConfig::default(),
            download: DownloadConfig::default(),
            sync: SyncConfig::default(),
            output: OutputConfig::default(),
        }
    }
}

/// Media cache limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most bytes the media cache (verified files plus downloads in
    /// progress) may take. A manifest that does not fit is reported as a
    /// quota overflow, never crashed on. Default 8 GiB.
    pub quota_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            quota_bytes: 8 * 1024 * 1024 * 1024,
        }
    }
}

/// How media are fetched: limits for metered links and against hostile or
/// broken servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadConfig {
    /// Average download rate cap in bytes per second; 0 means unlimited.
    /// For venues on metered mobile links.
    pub rate_limit_bytes_per_s: u64,
    /// Local-time windows (the venue's time zone from the manifest) in which
    /// downloads may run, as `"HH:MM-HH:MM"`; a window may wrap past
    /// midnight (`"22:00-06:00"`). Empty: any time.
    pub allowed_hours: Vec<HourWindow>,
    /// A download slower than this over `throughput_window` is aborted and
    /// retried later (a trickling server must not hold the box forever).
    pub min_throughput_bytes_per_s: u64,
    /// The span over which `min_throughput_bytes_per_s` is measured.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub throughput_window: Duration,
    /// No byte at all for this long aborts the attempt (connect included).
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub stall_timeout: Duration,
    /// First retry delay; doubled on each failure up to `backoff_cap`, with jitter.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub backoff_base: Duration,
    /// Longest delay between retries.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub backoff_cap: Duration,
    /// Attempts per file before the sync round gives up on it (the next
    /// round starts again); resumed attempts keep the bytes already fetched.
    pub max_attempts: u32,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            rate_limit_bytes_per_s: 0,
            allowed_hours: Vec::new(),
            // 4 KiB/s over 30 s: far below any working link (a 3G trickle
            // still does 10× that), far above a deliberate 1 byte/s drip.
            min_throughput_bytes_per_s: 4096,
            throughput_window: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

/// A daily local-time window `start-end`; `end` before `start` wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HourWindow {
    /// Opening time (inclusive).
    pub start: Time,
    /// Closing time (exclusive).
    pub end: Time,
}

impl HourWindow {
    /// Whether `time` falls inside the window.
    pub fn contains(&self, time: Time) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }
}

impl TryFrom<String> for HourWindow {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let (start, end) = text
            .split_once('-')
            .ok_or_else(|| format!("hour window {text:?} must look like \"01:00-06:00\""))?;
        let parse = |part: &str| {
            part.trim().parse::<Time>().map_err(|error| {
                format!("hour window {text:?}: {part:?} is not a time of day: {error}")
            })
        };
        let window = Self {
            start: parse(start)?,
            end: parse(end)?,
        };
        if window.start == window.end {
            return Err(format!("hour window {text:?} is empty (start equals end)"));
        }
        Ok(window)
    }
}

impl From<HourWindow> for String {
    fn from(window: HourWindow) -> Self {
        format!(
            "{}-{}",
            window.start.strftime("%H:%M"),
            window.end.strftime("%H:%M")
        )
    }
}

/// Talking to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// How often the box reports its health.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub heartbeat_interval: Duration,
    /// Proof-of-play records per upload request.
    pub upload_batch_size: usize,
    /// First retry delay after a failed upload or poll; doubled up to `backoff_cap`, with jitter.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub backoff_base: Duration,
    /// Longest delay between upload or poll retries.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub backoff_cap: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(60),
            upload_batch_size: 500,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(600),
        }
    }
}

/// Graphics API the renderer asks wgpu for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphicsBackend {
    /// Vulkan (v3dv on a Pi, lavapipe in CI).
    #[default]
    Vulkan,
    /// OpenGL ES through EGL, for Pi drivers where Vulkan misbehaves.
    Gl,
}

/// Screen output, read by the playback engine (its owner may extend it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Output width in pixels; 0 takes the display's native mode.
    pub width: u32,
    /// Output height in pixels; 0 takes the display's native mode.
    pub height: u32,
    /// Clockwise rotation in degrees for portrait-mounted screens: 0, 90, 180 or 270.
    pub rotation: u16,
    /// Render offscreen instead of opening a window (tests, CI, screenshots).
    pub headless: bool,
    /// Write PNG snapshots of rendered frames here (mostly with `headless`).
    pub snapshot_dir: Option<PathBuf>,
    /// Graphics API: `vulkan` or `gl`.
    pub backend: GraphicsBackend,
    /// GStreamer decoder element names to prefer, best first (e.g.
    /// `["v4l2slh265dec", "v4l2h264dec"]`); empty: GStreamer's ranks decide.
    pub decoders: Vec<String>,
    /// Audio volume from 0.0 (muted, the default: screens in shops play
    /// silently unless the venue asks for sound) to 1.0.
    pub volume: f64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            width: 0,
            height: 0,
            rotation: 0,
            headless: false,
            snapshot_dir: None,
            backend: GraphicsBackend::Vulkan,
            decoders: Vec::new(),
            volume: 0.0,
        }
    }
}

impl PlayerConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges and relations between fields.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            problem,
        };
        if !(self.server_url.starts_with("http://") || self.server_url.starts_with("https://")) {
            return Err(invalid(
                "server_url",
                format!("{:?} must start with http:// or https://", self.server_url),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must name a directory".to_owned()));
        }
        if self.download.backoff_base.is_zero()
            || self.download.backoff_base > self.download.backoff_cap
        {
            return Err(invalid(
                "download.backoff_base",
                "must be above zero and at most download.backoff_cap".to_owned(),
            ));
        }
        if self.sync.backoff_base.is_zero() || self.sync.backoff_base > self.sync.backoff_cap {
            return Err(invalid(
                "sync.backoff_base",
                "must be above zero and at most sync.backoff_cap".to_owned(),
            ));
        }
        if self.download.throughput_window.is_zero() {
            return Err(invalid(
                "download.throughput_window",
                "must be above zero".to_owned(),
            ));
        }
        if self.download.stall_timeout.is_zero() {
            return Err(invalid(
                "download.stall_timeout",
                "must be above zero".to_owned(),
            ));
        }
        if self.download.max_attempts == 0 {
            return Err(invalid(
                "download.max_attempts",
                "must be at least 1".to_owned(),
            ));
        }
        if self.sync.heartbeat_interval.is_zero() {
            return Err(invalid(
                "sync.heartbeat_interval",
                "must be above zero".to_owned(),
            ));
        }
        if self.sync.upload_batch_size == 0 {
            return Err(invalid(
                "sync.upload_batch_size",
                "must be at least 1".to_owned(),
            ));
        }
        if ![0, 90, 180, 270].contains(&self.output.rotation) {
            return Err(invalid(
                "output.rotation",
                format!("{} is not one of 0, 90, 180, 270", self.output.rotation),
            ));
        }
        if !(0.0..=1.0).contains(&self.output.volume) {
            return Err(invalid(
                "output.volume",
                format!("{} is outside 0.0..=1.0", self.output.volume),
            ));
        }
        Ok(())
    }

    /// The screen's private key (PKCS#8 PEM, made at enrollment, never leaves the box).
    pub fn screen_key_path(&self) -> PathBuf {
        self.data_dir.join("screen.key")
    }

    /// The persisted trust state (pinned root keys, accepted manifest, time floor).
    pub fn trust_dir(&self) -> PathBuf {
        self.data_dir.join("trust")
    }

    /// The accepted manifests (active and pending), see [`super::boot`].
    pub fn manifests_dir(&self) -> PathBuf {
        self.data_dir.join("manifests")
    }

    /// Root of the media cache (`media/` and `tmp/` below it).
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// The proof-of-play journal's directory.
    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    /// Whether downloads may run at `local_time` (the venue's time of day).
    pub fn download_allowed_at(&self, local_time: Time) -> bool {
        self.download.allowed_hours.is_empty()
            || self
                .download
                .allowed_hours
                .iter()
                .any(|window| window.contains(local_time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PlayerConfig, ConfigError> {
        PlayerConfig::parse(text, Path::new("player.toml"))
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), PlayerConfig::default());
    }

    #[test]
    fn deploy_example_parses_and_matches_the_defaults_it_documents() {
        let example = include_str!("../../deploy/player.toml");
        let config = parse(example).unwrap();
        // The example sets the values a real box uses; everything it only
        // documents in comments must stay the default.
        assert_eq!(config.server_url, "https://signage.example.org");
        assert_eq!(config.sync, SyncConfig::default());
        assert_eq!(config.output, OutputConfig::default());
        // Uncommenting every commented-out line must give a valid file too:
        // the example never documents a field that does not exist.
        let uncommented: String = example
            .lines()
            .map(|line| {
                line.strip_prefix("# ")
                    .filter(|rest| {
                        rest.split_once(" = ").is_some_and(|(key, _)| {
                            key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })
                    })
                    .unwrap_or(line)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        parse(&uncommented).unwrap();
    }

    #[test]
    fn unknown_field_is_rejected_by_name() {
        let error = parse("[cache]\nquota_byte = 5\n").unwrap_err().to_string();
        assert!(error.contains("quota_byte"), "{error}");
        let error = parse("servr_url = \"http://x\"\n").unwrap_err().to_string();
        assert!(error.contains("servr_url"), "{error}");
    }

    #[test]
    fn durations_and_hour_windows_parse_in_human_form() {
        let config = parse(
            "[download]\nallowed_hours = [\"22:00-06:00\", \"12:30-13:00\"]\nthroughput_window = \"2s\"\n\
             [sync]\nheartbeat_interval = \"5m\"\n",
        )
        .unwrap();
        assert_eq!(config.sync.heartbeat_interval, Duration::from_secs(300));
        assert_eq!(config.download.throughput_window, Duration::from_secs(2));
        let at = |h, m| Time::new(h, m, 0, 0).unwrap();
        assert!(config.download_allowed_at(at(23, 0)));
        assert!(config.download_allowed_at(at(5, 59)));
        assert!(config.download_allowed_at(at(12, 45)));
        assert!(!config.download_allowed_at(at(6, 0)));
        assert!(!config.download_allowed_at(at(13, 0)));
        assert!(PlayerConfig::default().download_allowed_at(at(13, 0)));
    }

    #[test]
    fn bad_values_name_the_field() {
        for (text, field) in [
            ("[output]\nrotation = 45\n", "output.rotation"),
            ("[output]\nvolume = 1.5\n", "output.volume"),
            ("server_url = \"ftp://x\"\n", "server_url"),
            (
                "[download]\nbackoff_base = \"10m\"\nbackoff_cap = \"1m\"\n",
                "download.backoff_base",
            ),
            ("[sync]\nupload_batch_size = 0\n", "sync.upload_batch_size"),
            ("[download]\nallowed_hours = [\"25:00-06:00\"]\n", "25:00"),
            ("[download]\nallowed_hours = [\"06:00\"]\n", "06:00"),
            ("[output]\nbackend = \"metal\"\n", "metal"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(field), "{text:?} gave {error}");
        }
    }
}
