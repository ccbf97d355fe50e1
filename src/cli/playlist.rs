//! `ekran playlist …`: checks playlist TOML files (format in
//! `playlists/FORMAT.md`, rules in [`ekran::playlist`]) and previews the
//! day a playlist schedules ([`ekran::schedule`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ekran::manifest::{Manifest, Media, RootKeys, SCHEMA_VERSION};
use ekran::playlist::{self, Playlist, PlaylistErrors};
use ekran::schedule;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

/// Exit status when a playlist is malformed or unreadable.
const EXIT_MALFORMED: u8 = 1;
/// Exit status when every playlist is well-formed but media files are missing.
const EXIT_MEDIA_MISSING: u8 = 2;

#[derive(Debug, clap::Subcommand)]
pub enum PlaylistCmd {
    /// Validate playlist files: prints a one-line summary per valid file, or
    /// every error as `file:line:column: message`.
    ///
    /// Exit status: 0 when every file is valid and its media files exist,
    /// 1 when a playlist is malformed or unreadable, 2 when the playlists are
    /// valid but media files are missing.
    Check {
        /// Playlist files (`playlists/*.toml`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Check only the playlist text, not whether the media files exist.
        #[arg(long)]
        no_media_check: bool,
    },
    /// Show what a playlist plays on one local day: plays, airtime and share
    /// of each item, as a screen would schedule it (media files not needed).
    Preview {
        /// The playlist file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The local date to preview (default: the first day of the flight).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<Date>,
        /// Length assumed for clips without a `duration` (their real length
        /// is known only once decoded).
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        clip_seconds: u32,
    },
}

pub fn run(cmd: PlaylistCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PlaylistCmd::Check {
            files,
            no_media_check,
        } => Ok(check(&files, no_media_check)),
        PlaylistCmd::Preview {
            file,
            date,
            clip_seconds,
        } => preview(&file, date, clip_seconds),
    }
}

fn check(files: &[PathBuf], no_media_check: bool) -> ExitCode {
    let mut malformed = false;
    let mut media_missing = false;
    for file in files {
        let result = if no_media_check {
            std::fs::read_to_string(file)
                .map_err(|source| {
                    PlaylistErrors(vec![playlist::PlaylistError::Unreadable {
                        file: file.clone(),
                        source,
                    }])
                })
                .and_then(|source| playlist::parse(&source, file))
        } else {
            playlist::check_file(file)
        };
        match result {
            Ok(playlist) => println!("{}", summary(&playlist)),
            Err(errors) => {
                for error in errors.iter() {
                    eprintln!("{error}");
                }
                if errors.any_malformed()
                    || errors
                        .iter()
                        .any(|error| matches!(error, playlist::PlaylistError::Unreadable { .. }))
                {
                    malformed = true;
                } else {
                    media_missing = true;
                }
            }
        }
    }
    if malformed {
        ExitCode::from(EXIT_MALFORMED)
    } else if media_missing {
        ExitCode::from(EXIT_MEDIA_MISSING)
    } else {
        ExitCode::SUCCESS
    }
}

/// `file: ok: "campaign" (id), N items, M tickers, flight A – B (D days), zone`.
fn summary(playlist: &Playlist) -> String {
    let plural =
        |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    format!(
        "{}: ok: \"{}\" ({}), {}, {}, flight {} – {} ({} days), {}",
        playlist.file,
        playlist.campaign,
        playlist.campaign_id,
        plural(playlist.items.len(), "item"),
        plural(playlist.tickers.len(), "ticker"),
        playlist.flight.start,
        playlist.flight.end,
        playlist.flight_days(),
        playlist.timezone,
    )
}

fn preview(file: &Path, date: Option<Date>, clip_seconds: u32) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the playlist {}", file.display()))?;
    let playlist = match playlist::parse(&source, file) {
        Ok(playlist) => playlist,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(EXIT_MALFORMED));
        }
    };
    let day = date.unwrap_or(playlist.flight.start);
    // Media is not needed to schedule: a stand-in entry per item.
    let (items, overlays) = playlist.to_manifest_parts(|path| {
        Ok::<_, std::convert::Infallible>(Media {
            sha256: String::new(),
            size: 0,
            mime: playlist::mime_for_path(path).unwrap_or_default().to_owned(),
            url: path.display().to_string(),
        })
    })?;
    let manifest = Manifest {
        schema: SCHEMA_VERSION,
        screen_id: "preview".to_owned(),
        version: 0,
        issued_at: Timestamp::UNIX_EPOCH,
        expires_at: Timestamp::MAX,
        timezone: playlist.timezone.clone(),
        items,
        overlays,
        root: RootKeys {
            version: 1,
            keys: Vec::new(),
            threshold: 1,
        },
    };
    let plan = schedule::Schedule::new(&manifest)?;
    let time_zone = plan.time_zone().clone();
    let from = day.to_zoned(time_zone.clone())?.timestamp();
    let to = day.tomorrow()?.to_zoned(time_zone.clone())?.timestamp();
    let clip = SignedDuration::from_secs(i64::from(clip_seconds));
    let duration_of = |item: &ekran::manifest::Item| {
        item.duration_ms.map_or(clip, |ms| {
            SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        })
    };
    let plays = schedule::simulate(&manifest, from, to, duration_of)?;

    println!(
        "{}: \"{}\" on {} ({}), clips without a duration counted as {clip:#}",
        playlist.file,
        playlist.campaign,
        day.strftime("%A %Y-%m-%d"),
        playlist.timezone,
    );
    if plays.is_empty() {
        println!("  nothing plays: the screen shows its fallback all day");
        return Ok(ExitCode::SUCCESS);
    }
    let total: SignedDuration = plays
        .iter()
        .map(|(_, id)| {
            manifest
                .items
                .iter()
                .find(|item| &item.id == id)
                .map_or(SignedDuration::ZERO, duration_of)
        })
        .sum();
    println!(
        "  {:<40} {:>6} {:>14} {:>6}  {:>5}  {:>5}",
        "ITEM", "PLAYS", "AIRTIME", "SHARE", "FIRST", "LAST"
    );
    for item in &manifest.items {
        let starts: Vec<Timestamp> = plays
            .iter()
            .filter(|(_, id)| *id == item.id)
            .map(|(start, _)| *start)
            .collect();
        let (Some(first), Some(last)) = (starts.first(), starts.last()) else {
            continue;
        };
        let airtime = duration_of(item) * i32::try_from(starts.len()).unwrap_or(i32::MAX);
        let clock = |at: &Timestamp| at.to_zoned(time_zone.clone()).strftime("%H:%M").to_string();
        println!(
            "  {:<40} {:>6} {:>14} {:>5.1}%  {:>5}  {:>5}",
            item.id,
            starts.len(),
            format!("{airtime:#}"),
            100.0 * airtime.as_secs_f64() / total.as_secs_f64(),
            clock(first),
            clock(last),
        );
    }
    Ok(ExitCode::SUCCESS)
}
