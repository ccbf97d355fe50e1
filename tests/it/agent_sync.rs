//! Applying manifests end to end: real DSSE envelopes through the trust
//! rules, media over HTTP on loopback, atomic activation. Attacks (rollback,
//! a tampered envelope, substituted media) leave the playing manifest, the
//! trust state and the cache untouched, and say why.

use std::collections::BTreeMap;
use std::path::Path;

use ekran::agent::boot::{ManifestStore, Slot, boot};
use ekran::agent::cache::{CacheError, MediaCache};
use ekran::agent::download::Downloader;
use ekran::agent::sync::{Applied, SyncError, Syncer};
use ekran::trust::{TrustError, TrustState};

use super::agent_boot::{SCREEN, clock, envelope, manifest, media, root};
use super::agent_download::{policy, serve_clips};

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[tokio::test]
async fn attacks_leave_the_playing_manifest_and_cache_untouched_and_good_manifests_activate() {
    let clock = clock();
    let data = tempfile::tempdir().unwrap();
    let trust_dir = data.path().join("trust");
    std::fs::create_dir_all(&trust_dir).unwrap();
    TrustState::enroll(SCREEN, root(), &clock)
        .unwrap()
        .save(&trust_dir)
        .unwrap();
    let store = ManifestStore::new(&data.path().join("manifests"));
    let cache = MediaCache::open(&data.path().join("cache"), 1 << 20).unwrap();

    let poster_bytes = b"poster for day 1".to_vec();
    let poster = media(&poster_bytes, "poster");
    let clip_bytes = b"the awareness clip".to_vec();
    let clip = media(&clip_bytes, "clip");
    // This server substitutes the clip's bytes (same length, other content).
    let (hostile, _) = serve_clips(vec![
        (poster.clone(), poster_bytes.clone()),
        (clip.clone(), b"the awareness clap".to_vec()),
    ])
    .await;
    let syncer = Syncer::new(
        &trust_dir,
        store.clone(),
        cache.clone(),
        Downloader::new(policy()),
        hostile,
    );

    // Version 5 activates.
    let (v5, _) = envelope(&manifest(5, &[&poster]));
    let applied = syncer.apply_envelope(&v5, &clock).await.unwrap();
    assert!(
        matches!(
            applied,
            Applied::Activated {
                version: 5,
                stale: false
            }
        ),
        "{applied:?}"
    );
    // Re-sent unchanged (an ETag miss): nothing happens.
    assert!(matches!(
        syncer.apply_envelope(&v5, &clock).await.unwrap(),
        Applied::Unchanged
    ));

    // Version 6's clip arrives substituted: accepted, but it waits; 5 plays on.
    let (v6, _) = envelope(&manifest(6, &[&clip]));
    let applied = syncer.apply_envelope(&v6, &clock).await.unwrap();
    let Applied::Waiting {
        version: 6,
        incomplete,
    } = applied
    else {
        panic!("{applied:?}")
    };
    assert!(
        matches!(&incomplete.failures[0].1, CacheError::HashMismatch { sha256, .. } if *sha256 == clip.sha256)
    );
    let state = boot(&trust_dir, &store, &cache, &clock);
    assert_eq!(state.active.as_ref().unwrap().manifest.version, 5);
    assert_eq!(state.playable.len(), 1);
    assert!(!cache.contains(&clip));

    // A rollback and a tampered envelope change nothing on disk.
    let before = snapshot(data.path());
    let (v4, _) = envelope(&manifest(4, &[&poster]));
    let error = syncer.apply_envelope(&v4, &clock).await.unwrap_err();
    assert!(
        matches!(
            error,
            SyncError::Rejected(TrustError::Rollback {
                offered: 4,
                accepted: 6
            })
        ),
        "{error}"
    );
    let (v7, _) = envelope(&manifest(7, &[&poster]));
    let mut tampered: serde_json::Value = serde_json::from_slice(&v7).unwrap();
    tampered["payload"] =
        serde_json::json!(tampered["payload"].as_str().unwrap().replacen('e', "f", 1));
    let error = syncer
        .apply_envelope(&serde_json::to_vec(&tampered).unwrap(), &clock)
        .await
        .unwrap_err();
    assert!(matches!(error, SyncError::Rejected(_)), "{error}");
    assert_eq!(
        snapshot(data.path()),
        before,
        "a rejected envelope writes nothing"
    );

    // Once the right bytes are served, the pending manifest activates and
    // the old poster, needed by nothing, is evicted.
    let (honest, _) = serve_clips(vec![(clip.clone(), clip_bytes.clone())]).await;
    let syncer = Syncer::new(
        &trust_dir,
        store.clone(),
        cache.clone(),
        Downloader::new(policy()),
        honest,
    );
    let applied = syncer.resume_pending(&clock).await.unwrap();
    assert!(
        matches!(applied, Applied::Activated { version: 6, .. }),
        "{applied:?}"
    );
    let state = boot(&trust_dir, &store, &cache, &clock);
    assert_eq!(state.active.unwrap().manifest.version, 6);
    assert_eq!(state.playable.len(), 1);
    assert!(
        !cache.contains(&poster),
        "media no manifest needs are evicted"
    );
    assert!(store.load(Slot::Pending).unwrap().is_none());
}
