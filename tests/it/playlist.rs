//! Playlist TOML: the samples in `playlists/`, the bad fixtures in
//! `tests/fixtures/playlist/bad/` (each with the exact errors expected),
//! the media check, the conversion to manifest parts, and
//! `ekran playlist check` as a real process.

// Test helpers outside #[test] fns are not covered by clippy.toml.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ekran::manifest::{Fit, Manifest, Media, Overlay, RootKeys};
use ekran::playlist::{self, MediaKind, Playlist, PlaylistError};
use jiff::civil::date;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/playlist")
}

/// Parses a sample without looking for its media (which the demo generates).
fn sample(name: &str) -> Playlist {
    let path = repo().join("playlists").join(name);
    let source = fs::read_to_string(&path).unwrap();
    playlist::parse(&source, &path).unwrap_or_else(|errors| panic!("{name}:\n{errors}"))
}

fn ekran() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ekran"))
}

#[test]
fn june26_sample_is_a_30_day_clip_campaign_with_the_hotline_ticker() {
    let playlist = sample("june26-2027.toml");
    assert_eq!(playlist.timezone, "Asia/Dushanbe");
    assert_eq!(playlist.flight.end, date(2027, 6, 26));
    assert_eq!(playlist.flight_days(), 30);
    assert!(
        playlist
            .items
            .iter()
            .any(|item| item.kind == MediaKind::Clip)
    );
    // The day's clip pre-empts the rotation on 26 June only.
    let day = playlist
        .items
        .iter()
        .find(|item| item.id == "june26-2027/june-26")
        .unwrap();
    assert_eq!(day.dates, vec![date(2027, 6, 26)]);
    assert!(day.priority > 0);
    assert_eq!(playlist.tickers.len(), 1);
    let ticker = &playlist.tickers[0].text;
    for number in ["98 787 66 66", "98 787 33 33", "98 708 76 76"] {
        assert!(ticker.contains(number), "ticker lacks {number}: {ticker}");
    }
    assert!(ticker.contains("Телефони боварӣ"), "{ticker}");
    assert!(ticker.contains("Khatlon"), "{ticker}");
}

#[test]
fn udhr_sample_has_one_poster_a_day_until_human_rights_day() {
    let playlist = sample("udhr-2026.toml");
    assert_eq!(playlist.flight.start, date(2026, 11, 10));
    assert_eq!(playlist.flight.end, date(2026, 12, 10));
    let posters: Vec<_> = playlist
        .items
        .iter()
        .filter(|item| item.id.starts_with("udhr-2026/article-day-"))
        .collect();
    assert_eq!(posters.len(), 30, "one poster per article");
    let mut day = date(2026, 11, 10);
    for (index, poster) in posters.iter().enumerate() {
        assert_eq!(poster.dates, vec![day], "{}", poster.id);
        assert_eq!(poster.kind, MediaKind::Still);
        assert_eq!(poster.duration_ms, Some(20_000));
        assert_eq!(
            poster.media,
            Path::new(&format!("media/poster-day-{:02}.png", index + 1))
        );
        day = day.tomorrow().unwrap();
    }
    // Every day of the flight has its poster; 10 December has the day's own.
    assert_eq!(day, date(2026, 12, 10));
    let last = playlist
        .items
        .iter()
        .find(|item| item.dates == vec![day])
        .unwrap();
    assert_eq!(last.id, "udhr-2026/human-rights-day");
}

/// One test per bad fixture: the exact list of `file:line:column: message`
/// lines in the `.expected` file beside it.
#[test]
fn bad_fixtures_report_every_expected_error() {
    let dir = fixtures().join("bad");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        let source = fs::read_to_string(&path).unwrap();
        let errors = playlist::parse(&source, Path::new(name))
            .err()
            .unwrap_or_else(|| panic!("{name} parsed without error"));
        assert!(errors.iter().all(PlaylistError::is_malformed), "{name}");
        let actual: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expected_path = path.with_extension("expected");
        let expected = fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "missing {}; actual:\n{}",
                expected_path.display(),
                actual.join("\n")
            )
        });
        let expected: Vec<&str> = expected.lines().filter(|line| !line.is_empty()).collect();
        assert_eq!(actual, expected, "{name}");
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} fixtures found in {}",
        dir.display()
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let source = fs::read_to_string(fixtures().join("bad/cyrillic-column.toml")).unwrap();
    let errors = playlist::parse(&source, Path::new("c.toml")).unwrap_err();
    let at = errors.iter().next().unwrap().location().unwrap().clone();
    let line = source.lines().nth(at.line - 1).unwrap();
    let pointed: String = line.chars().skip(at.column - 1).take(9).collect();
    assert_eq!(pointed, "\"душанбе\"");
}

#[test]
fn format_md_example_is_a_valid_playlist() {
    let text = fs::read_to_string(repo().join("playlists/FORMAT.md")).unwrap();
    let start = text.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + text[start..].find("```").unwrap();
    let playlist = playlist::parse(&text[start..end], Path::new("FORMAT.md"))
        .unwrap_or_else(|errors| panic!("{errors}"));
    let hotline = &playlist.items[0];
    assert_eq!(hotline.id, "june26-2027/hotline");
    assert_eq!(hotline.fit, Fit::Cover);
    assert_eq!(hotline.windows.len(), 2);
    assert!(
        hotline.windows[1].end < hotline.windows[1].start,
        "wrapping window"
    );
    assert_eq!(playlist.items.len(), 3, "one item and two daily posters");
    assert!(playlist.targets.matches("dyu-korvon-1", "elsewhere", &[]));
}

/// Writes a playlist naming two media files into a temporary folder.
fn playlist_with_media(dir: &Path) -> PathBuf {
    let path = dir.join("campaign.toml");
    fs::write(
        &path,
        r#"campaign = "Media check"
timezone = "Europe/Berlin"
[targets]
screens = ["*"]
[flight]
start = 2027-03-01
end = 2027-03-31
[[item]]
media = "media/clip.mp4"
[[item]]
media = "media/poster.png"
duration = 15
"#,
    )
    .unwrap();
    path
}

#[test]
fn missing_media_is_told_apart_from_a_malformed_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let path = playlist_with_media(dir.path());
    let errors = playlist::check_file(&path).unwrap_err();
    assert!(!errors.any_malformed());
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains(":9:9: media file missing: "),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains("media/clip.mp4"), "{}", messages[0]);
    assert!(messages[1].contains("media/poster.png"), "{}", messages[1]);

    fs::create_dir(dir.path().join("media")).unwrap();
    fs::write(dir.path().join("media/clip.mp4"), b"clip").unwrap();
    fs::write(dir.path().join("media/poster.png"), b"poster").unwrap();
    let playlist = playlist::check_file(&path).unwrap();
    assert_eq!(playlist.items[1].duration_ms, Some(15_000));
}

#[test]
fn converts_to_manifest_items_and_overlays() {
    let playlist = sample("june26-2027.toml");
    let seen = std::cell::RefCell::new(Vec::new());
    let (items, overlays) = playlist
        .to_manifest_parts(|path: &Path| {
            seen.borrow_mut().push(path.to_path_buf());
            Ok::<_, std::convert::Infallible>(Media {
                sha256: "0".repeat(64),
                size: 1,
                mime: playlist::mime_for_path(path).unwrap().to_owned(),
                url: format!("/media/{}", path.file_name().unwrap().to_str().unwrap()),
            })
        })
        .unwrap();
    assert_eq!(items.len(), playlist.items.len());
    assert_eq!(seen.borrow()[0], repo().join("playlists/media/clip-01.mp4"));
    let mut ids: Vec<&str> = items.iter().map(|item| item.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "ids are unique");
    assert!(items.iter().all(|item| item.campaign == playlist.campaign));
    let card = items
        .iter()
        .find(|item| item.id == "june26-2027/hotline-card")
        .unwrap();
    assert!(card.media.is_still());
    assert_eq!(card.duration_ms, Some(10_000));
    let Overlay::Ticker { text, flight, .. } = &overlays[0];
    assert!(text.contains("Телефон доверия"));
    assert_eq!(*flight, playlist.flight);

    // The parts form a manifest that survives JSON unchanged.
    let manifest = Manifest {
        schema: ekran::manifest::SCHEMA_VERSION,
        screen_id: "dyu-1".into(),
        version: 1,
        issued_at: "2027-05-27T00:00:00Z".parse().unwrap(),
        expires_at: "2027-07-27T00:00:00Z".parse().unwrap(),
        timezone: playlist.timezone.clone(),
        items,
        overlays,
        root: RootKeys {
            version: 1,
            keys: vec![],
            threshold: 1,
        },
    };
    let json = serde_json::to_string(&manifest).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), manifest);
}

#[test]
fn conversion_stops_at_the_first_media_error() {
    let playlist = sample("udhr-2026.toml");
    let result = playlist.to_manifest_parts(|path: &Path| -> Result<Media, String> {
        Err(format!("no such file: {}", path.display()))
    });
    let error = result.unwrap_err();
    assert!(
        error.ends_with("playlists/media/clip-rights-dignity-development.mp4"),
        "{error}"
    );
}

#[test]
fn cli_check_prints_a_summary_per_valid_file() {
    let output = ekran()
        .args(["playlist", "check", "--no-media-check"])
        .arg(repo().join("playlists/june26-2027.toml"))
        .arg(repo().join("playlists/udhr-2026.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0]
            .contains("5 items, 1 ticker, flight 2027-05-28 – 2027-06-26 (30 days), Asia/Dushanbe"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("32 items, 1 ticker, flight 2026-11-10 – 2026-12-10 (31 days)"),
        "{}",
        lines[1]
    );
}

#[test]
fn cli_check_exit_status_tells_missing_media_from_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = playlist_with_media(dir.path());
    let missing = ekran()
        .args(["playlist", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert_eq!(stderr.matches("media file missing").count(), 2, "{stderr}");

    let bad = fixtures().join("bad/many-errors.toml");
    let malformed = ekran()
        .args(["playlist", "check"])
        .arg(&path)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(malformed.status.code(), Some(1));
    let stderr = String::from_utf8(malformed.stderr).unwrap();
    let expected = fs::read_to_string(fixtures().join("bad/many-errors.expected")).unwrap();
    // Every error of the malformed file, after the other file's missing media.
    assert_eq!(
        stderr.lines().count(),
        2 + expected.lines().count(),
        "{stderr}"
    );
    assert!(
        stderr.contains("many-errors.toml:2:12: unknown time zone"),
        "{stderr}"
    );
}

#[test]
fn cli_check_passes_on_the_samples_once_their_media_exists() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["june26-2027.toml", "udhr-2026.toml"] {
        let copy = dir.path().join(name);
        fs::copy(repo().join("playlists").join(name), &copy).unwrap();
        let playlist = playlist::parse(&fs::read_to_string(&copy).unwrap(), &copy).unwrap();
        for item in &playlist.items {
            let media = playlist.media_path(item);
            fs::create_dir_all(media.parent().unwrap()).unwrap();
            fs::write(media, b"stand-in").unwrap();
        }
        files.push(copy);
    }
    let output = ekran()
        .args(["playlist", "check"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `ekran playlist preview` output rows: item id → plays.
fn preview(file: &str, date: &str) -> Vec<(String, usize)> {
    let output = ekran()
        .args(["playlist", "preview", "--date", date])
        .arg(repo().join("playlists").join(file))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .skip(2)
        .map(|row| {
            let mut columns = row.split_whitespace();
            let id = columns.next().unwrap().to_owned();
            (id, columns.next().unwrap().parse().unwrap())
        })
        .collect()
}

#[test]
fn cli_preview_shows_the_day_a_playlist_schedules() {
    // On 26 June the day's clip pre-empts the rotation, six times an hour.
    let june26 = preview("june26-2027.toml", "2027-06-26");
    assert!(
        june26.contains(&("june26-2027/june-26".to_owned(), 6 * 24)),
        "{june26:?}"
    );
    let june25 = preview("june26-2027.toml", "2027-06-25");
    assert!(
        june25.iter().all(|(id, _)| id != "june26-2027/june-26"),
        "{june25:?}"
    );
    assert_eq!(june25.len(), 4, "{june25:?}");

    // 15 November is day six of the poster campaign: article 6, and only it.
    let posters = preview("udhr-2026.toml", "2026-11-15");
    let ids: Vec<&str> = posters.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["udhr-2026/slogan", "udhr-2026/article-day-06"]);
    // Weight 2 for 20-second posters against weight 1 for 30-second clips:
    // posters get twice the airtime, so three times the plays.
    assert_eq!(posters[1].1, 3 * posters[0].1);

    let output = ekran()
        .args(["playlist", "preview", "--date", "2026-12-15"])
        .arg(repo().join("playlists/udhr-2026.toml"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("nothing plays")
    );
}
