//! `ekran playlist …`: checks playlist TOML files (format in
//! `playlists/FORMAT.md`, rules in [`ekran::playlist`]).

use std::path::PathBuf;
use std::process::ExitCode;

use ekran::playlist::{self, Playlist, PlaylistErrors};

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
}

pub fn run(cmd: PlaylistCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PlaylistCmd::Check {
            files,
            no_media_check,
        } => Ok(check(&files, no_media_check)),
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
