//! Boot to play: with the network unplugged, the box plays the last
//! accepted manifest's cached items, survives damaged files, and activates
//! a pending manifest atomically.

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use ekran::agent::boot::{ManifestStore, Slot, boot};
use ekran::agent::cache::MediaCache;
use ekran::dsse::{self, MANIFEST_PAYLOAD_TYPE};
use ekran::manifest::{Manifest, Media, RootKeys};
use ekran::trust::{Acceptance, ManualClock, TrustState, accept_in_dir};
use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};

pub(crate) const SCREEN: &str = "kyiv-mall-02";

pub(crate) fn root_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

pub(crate) fn root() -> RootKeys {
    let pem = root_key()
        .verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    RootKeys {
        version: 1,
        keys: vec![pem],
        threshold: 1,
    }
}

pub(crate) fn media(bytes: &[u8], name: &str) -> Media {
    Media {
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
        mime: "image/png".to_owned(),
        url: format!("/media/{name}"),
    }
}

pub(crate) fn manifest(version: u64, media: &[&Media]) -> Manifest {
    let items: Vec<_> = media
        .iter()
        .enumerate()
        .map(|(n, media)| {
            json!({
                "id": format!("poster-{n}"), "campaign": "udhr-2026", "media": media,
                "duration_ms": 10_000, "flight": {"start": "2026-12-01", "end": "2026-12-31"},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "schema": 1, "screen_id": SCREEN, "version": version,
        "issued_at": "2026-12-01T06:00:00Z", "expires_at": "2026-12-08T06:00:00Z",
        "timezone": "Europe/Kyiv", "items": items, "root": root(),
    }))
    .unwrap()
}

/// The envelope exactly as the server would send it, and its payload.
pub(crate) fn envelope(manifest: &Manifest) -> (Vec<u8>, Vec<u8>) {
    let payload = manifest.to_json_bytes();
    let envelope = dsse::sign(MANIFEST_PAYLOAD_TYPE, &payload, &[&root_key()]);
    (serde_json::to_vec(&envelope).unwrap(), payload)
}

struct BoxDisk {
    _dir: tempfile::TempDir,
    trust: std::path::PathBuf,
    store: ManifestStore,
    cache: MediaCache,
    manifests: std::path::PathBuf,
}

fn enrolled_box(clock: &ManualClock) -> BoxDisk {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("trust");
    std::fs::create_dir_all(&trust).unwrap();
    TrustState::enroll(SCREEN, root(), clock)
        .unwrap()
        .save(&trust)
        .unwrap();
    let manifests = dir.path().join("manifests");
    let store = ManifestStore::new(&manifests);
    let cache = MediaCache::open(&dir.path().join("cache"), 1 << 20).unwrap();
    BoxDisk {
        _dir: dir,
        trust,
        store,
        cache,
        manifests,
    }
}

/// Accepts a manifest through the trust rules and stores it in `slot`.
fn accept_and_store(disk: &BoxDisk, manifest: &Manifest, slot: Slot, clock: &ManualClock) {
    let (envelope, payload) = envelope(manifest);
    let Acceptance::New {
        manifest: accepted, ..
    } = accept_in_dir(&disk.trust, &envelope, clock).unwrap()
    else {
        panic!("a new manifest");
    };
    disk.store
        .save(slot, &envelope, &payload, &accepted)
        .unwrap();
}

fn cache_file(cache: &MediaCache, bytes: &[u8], media: &Media) {
    std::fs::write(cache.temp_path(&media.sha256).unwrap(), bytes).unwrap();
    cache.commit(media).unwrap();
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::new("2026-12-02T10:00:00Z".parse::<Timestamp>().unwrap())
}

#[test]
fn boot_plays_the_cached_items_of_the_last_accepted_manifest() {
    let clock = clock();
    let disk = enrolled_box(&clock);
    let day1 = media(b"poster day 1", "day1");
    let day2 = media(b"poster day 2", "day2");
    accept_and_store(&disk, &manifest(5, &[&day1, &day2]), Slot::Active, &clock);
    cache_file(&disk.cache, b"poster day 1", &day1);

    let state = boot(&disk.trust, &disk.store, &disk.cache, &clock);
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    assert_eq!(state.active.as_ref().unwrap().manifest.version, 5);
    assert_eq!(
        state
            .playable
            .iter()
            .map(|item| item.id.as_str())
            .collect::<Vec<_>>(),
        ["poster-0"]
    );
    assert_eq!(state.missing, [day2]);
    assert!(!state.stale);

    // Weeks offline: still plays, marked stale.
    let later = ManualClock::new("2027-01-15T10:00:00Z".parse::<Timestamp>().unwrap());
    let state = boot(&disk.trust, &disk.store, &disk.cache, &later);
    assert_eq!(state.playable.len(), 1);
    assert!(state.stale);
}

#[test]
fn pending_manifest_activates_atomically_and_both_are_kept_from_eviction() {
    let clock = clock();
    let disk = enrolled_box(&clock);
    let old = media(b"old poster", "old");
    let new = media(b"new poster", "new");
    accept_and_store(&disk, &manifest(5, &[&old]), Slot::Active, &clock);
    accept_and_store(&disk, &manifest(6, &[&new]), Slot::Pending, &clock);
    cache_file(&disk.cache, b"old poster", &old);

    // Rebooted while version 6 downloads: version 5 plays.
    let state = boot(&disk.trust, &disk.store, &disk.cache, &clock);
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    assert_eq!(state.active.unwrap().manifest.version, 5);
    let in_use = disk.store.media_in_use();
    assert!(in_use.contains(&old.sha256) && in_use.contains(&new.sha256));

    cache_file(&disk.cache, b"new poster", &new);
    disk.store.activate_pending().unwrap();
    let state = boot(&disk.trust, &disk.store, &disk.cache, &clock);
    assert_eq!(state.active.unwrap().manifest.version, 6);
    assert_eq!(state.playable.len(), 1);
    assert!(disk.store.load(Slot::Pending).unwrap().is_none());
    assert!(
        !disk.store.media_in_use().contains(&old.sha256),
        "the old poster may now be evicted"
    );
}

#[test]
fn damaged_or_foreign_manifest_files_are_reported_not_played() {
    let clock = clock();
    let disk = enrolled_box(&clock);
    let poster = media(b"poster", "p");
    accept_and_store(&disk, &manifest(5, &[&poster]), Slot::Active, &clock);
    cache_file(&disk.cache, b"poster", &poster);
    let active = disk.manifests.join("active.json");

    // Storage damage inside the payload.
    let original = std::fs::read(&active).unwrap();
    let mut stored: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let payload = stored["payload"].as_str().unwrap().to_owned();
    let mut damaged = payload.clone().into_bytes();
    damaged[40] = if damaged[40] == b'A' { b'B' } else { b'A' };
    stored["payload"] = json!(String::from_utf8(damaged).unwrap());
    std::fs::write(&active, serde_json::to_vec(&stored).unwrap()).unwrap();
    let state = boot(&disk.trust, &disk.store, &disk.cache, &clock);
    assert!(state.active.is_none() && state.playable.is_empty());
    assert!(
        state.problems[0].contains("damaged"),
        "{:?}",
        state.problems
    );

    // A validly stored manifest the trust state never accepted (same
    // version, other payload) is not played either.
    let other = manifest(5, &[&poster, &poster]);
    let (envelope, payload) = envelope(&other);
    disk.store
        .save(Slot::Active, &envelope, &payload, &other)
        .unwrap();
    let state = boot(&disk.trust, &disk.store, &disk.cache, &clock);
    assert!(state.active.is_none());
    assert!(
        state.problems[0].contains("disagrees with the trust state"),
        "{:?}",
        state.problems
    );
}

#[test]
fn unenrolled_box_boots_with_nothing_to_play() {
    let dir = tempfile::tempdir().unwrap();
    let cache = MediaCache::open(&dir.path().join("cache"), 1 << 20).unwrap();
    let store = ManifestStore::new(&dir.path().join("manifests"));
    let state = boot(&dir.path().join("trust"), &store, &cache, &clock());
    assert!(state.trust.is_none() && state.active.is_none() && state.playable.is_empty());
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}

#[tokio::test]
async fn disk_full_while_fetching_the_next_manifest_keeps_the_old_one_playing() {
    use ekran::agent::cache::CacheError;
    use ekran::agent::download::Downloader;

    use super::agent_download::{TinyDisk, policy, serve_clips, url_of};

    // The whole data directory on a 64 KiB disk (or /dev/full behind the
    // download's temp file where mounting is not allowed).
    let disk = TinyDisk::new();
    let clock = clock();
    let data = disk.dir.path();
    let trust_dir = data.join("trust");
    std::fs::create_dir_all(&trust_dir).unwrap();
    TrustState::enroll(SCREEN, root(), &clock)
        .unwrap()
        .save(&trust_dir)
        .unwrap();
    let store = ManifestStore::new(&data.join("manifests"));
    let cache = MediaCache::open(&data.join("cache"), 1 << 30).unwrap();
    let boxed = BoxDisk {
        _dir: tempfile::tempdir().unwrap(),
        trust: trust_dir.clone(),
        store: store.clone(),
        cache: cache.clone(),
        manifests: data.join("manifests"),
    };

    let poster_bytes = vec![7u8; 8_000];
    let poster = media(&poster_bytes, "poster");
    let clip_bytes: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
    let clip = media(&clip_bytes, "clip");
    let (base, _seen) = serve_clips(vec![
        (poster.clone(), poster_bytes),
        (clip.clone(), clip_bytes),
    ])
    .await;
    let downloader = Downloader::new(policy());

    accept_and_store(&boxed, &manifest(5, &[&poster]), Slot::Active, &clock);
    downloader
        .fetch(&cache, &poster, &url_of(&base, &poster))
        .await
        .unwrap();
    accept_and_store(&boxed, &manifest(6, &[&clip]), Slot::Pending, &clock);
    if !disk.mounted {
        std::os::unix::fs::symlink("/dev/full", cache.temp_path(&clip.sha256).unwrap()).unwrap();
    }

    let error = downloader
        .fetch(&cache, &clip, &url_of(&base, &clip))
        .await
        .unwrap_err();
    assert!(matches!(error, CacheError::DiskFull { .. }), "{error}");
    // Nothing half-written anywhere; the old manifest still plays after a
    // reboot, and the new one waits to be fetched again.
    assert_eq!(
        std::fs::read_dir(data.join("cache/tmp")).unwrap().count(),
        0
    );
    let state = boot(&trust_dir, &store, &cache, &clock);
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    assert_eq!(state.active.unwrap().manifest.version, 5);
    assert_eq!(state.playable.len(), 1);
    assert!(cache.verify(&poster).unwrap());
    assert_eq!(
        store.load(Slot::Pending).unwrap().unwrap().manifest.version,
        6
    );
}
