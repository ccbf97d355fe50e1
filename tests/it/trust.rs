//! Manifest acceptance end to end (SPEC §4): real DSSE envelopes, signed by
//! fixed seed keys and committed under `tests/fixtures/trust/`, fed to
//! [`ekran::trust::accept_in_dir`] against a committed trust state. One test
//! per fixture; after every rejected one the state directory must be byte
//! for byte what it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use ekran::dsse::{self, DsseError, MANIFEST_PAYLOAD_TYPE};
use ekran::manifest::{MAX_MEDIA_BYTES, Manifest, RootKeys};
use ekran::trust::{
    Acceptance, ManualClock, TrustError, TrustState, accept, accept_in_dir, payload_sha256,
};
use jiff::Timestamp;
use serde_json::{Value, json};

const SCREEN: &str = "dushanbe-mall-01";
/// Root v1 (pinned at enrollment): two keys, both must sign.
const ROOT_V1: (&[u8], u32) = (&[1, 2], 2);
/// Root v2 (the rotation target): three keys, two must sign.
const ROOT_V2: (&[u8], u32) = (&[3, 4, 5], 2);
/// Root v3: never reachable from v1 directly.
const ROOT_V3: (&[u8], u32) = (&[6, 7], 1);
/// A key nobody trusts.
const STRANGER: u8 = 9;
/// The accepted manifest version in the committed state.
const ACCEPTED_VERSION: u64 = 10;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trust")
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn root(version: u32, (seeds, threshold): (&[u8], u32)) -> RootKeys {
    RootKeys {
        version,
        keys: seeds
            .iter()
            .map(|&seed| {
                key(seed)
                    .verifying_key()
                    .to_public_key_pem(Default::default())
                    .unwrap()
            })
            .collect(),
        threshold,
    }
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// When the player runs the fixtures.
fn clock() -> ManualClock {
    ManualClock::new(ts("2026-06-12T12:00:00Z"))
}

/// A realistic manifest of the 26 June campaign at `version`.
fn manifest(version: u64) -> Manifest {
    serde_json::from_value(json!({
        "schema": 1,
        "screen_id": SCREEN,
        "version": version,
        "issued_at": "2026-06-12T06:00:00Z",
        "expires_at": "2026-06-19T06:00:00Z",
        "timezone": "Asia/Dushanbe",
        "items": [
            {
                "id": "clip-awareness-1", "campaign": "26-june",
                "media": {"sha256": "5d".repeat(32), "size": 18_500_000, "mime": "video/mp4", "url": "/media/5d5d"},
                "flight": {"start": "2026-05-28", "end": "2026-06-26"},
                "weight": 2
            },
            {
                "id": "poster-day-16", "campaign": "26-june",
                "media": {"sha256": "c3".repeat(32), "size": 412_000, "mime": "image/jpeg", "url": "/media/c3c3"},
                "duration_ms": 10_000, "fit": "cover",
                "flight": {"start": "2026-05-28", "end": "2026-06-26"},
                "dates": ["2026-06-12"]
            }
        ],
        "overlays": [{"kind": "ticker", "campaign": "26-june", "text": "Хати боварӣ: 1313",
                      "flight": {"start": "2026-05-28", "end": "2026-06-26"}}],
        "root": root(1, ROOT_V1),
    }))
    .unwrap()
}

fn signed(payload: &[u8], seeds: &[u8]) -> Value {
    let keys: Vec<SigningKey> = seeds.iter().map(|&seed| key(seed)).collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    serde_json::to_value(dsse::sign(MANIFEST_PAYLOAD_TYPE, payload, &refs)).unwrap()
}

fn signed_manifest(manifest: &Manifest, seeds: &[u8]) -> Value {
    signed(&manifest.to_json_bytes(), seeds)
}

/// The committed trust state: root v1 pinned, version 10 accepted.
fn initial_state() -> TrustState {
    TrustState {
        format: ekran::trust::STATE_FORMAT,
        screen_id: SCREEN.into(),
        root: root(1, ROOT_V1),
        manifest_version: Some(ACCEPTED_VERSION),
        manifest_sha256: Some(payload_sha256(&manifest(ACCEPTED_VERSION).to_json_bytes())),
        time_floor: ts("2026-06-10T00:00:00Z"),
    }
}

/// Every fixture envelope, by file stem, built from the seed keys.
/// Signatures are deterministic (Ed25519), so the bytes are reproducible.
fn fixture_envelopes() -> BTreeMap<&'static str, Vec<u8>> {
    let v1 = ROOT_V1.0;
    let mut out: BTreeMap<&'static str, Value> = BTreeMap::new();

    out.insert("accept-next-version", signed_manifest(&manifest(11), v1));
    out.insert(
        "accept-skipped-versions",
        signed_manifest(&manifest(15), v1),
    );
    let mut expired = manifest(11);
    expired.issued_at = ts("2026-05-01T06:00:00Z");
    expired.expires_at = ts("2026-05-08T06:00:00Z");
    out.insert("accept-expired-is-stale", signed_manifest(&expired, v1));
    // The accepted payload again, signed in the other key order.
    out.insert(
        "accept-same-version-unchanged",
        signed_manifest(&manifest(ACCEPTED_VERSION), &[2, 1]),
    );
    let mut rotation = manifest(11);
    rotation.root = root(2, ROOT_V2);
    out.insert(
        "accept-root-rotation",
        signed_manifest(&rotation, &[1, 2, 3, 4]),
    );

    let mut flipped = signed_manifest(&manifest(11), v1);
    let sig = flipped["signatures"][0]["sig"].as_str().unwrap();
    let mut raw = BASE64.decode(sig).unwrap();
    raw[10] ^= 0x01;
    flipped["signatures"][0]["sig"] = json!(BASE64.encode(raw));
    out.insert("reject-bad-signature", flipped);
    let mut swapped = signed_manifest(&manifest(11), v1);
    swapped["payload"] = json!(BASE64.encode(manifest(12).to_json_bytes()));
    out.insert("reject-payload-swapped", swapped);
    out.insert(
        "reject-unknown-key",
        signed_manifest(&manifest(11), &[STRANGER]),
    );
    out.insert(
        "reject-threshold-not-met",
        signed_manifest(&manifest(11), &[1]),
    );
    let mut duplicated = signed_manifest(&manifest(11), &[1]);
    let first = duplicated["signatures"][0].clone();
    duplicated["signatures"].as_array_mut().unwrap().push(first);
    out.insert("reject-duplicate-signatures", duplicated);
    let mut wrong_type = signed_manifest(&manifest(11), v1);
    wrong_type["payloadType"] = json!("application/json");
    out.insert("reject-wrong-payload-type", wrong_type);
    // The right type, signed as another type: PAE binds the type.
    let keys: Vec<SigningKey> = v1.iter().map(|&seed| key(seed)).collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let mut retyped = serde_json::to_value(dsse::sign(
        "application/json",
        &manifest(11).to_json_bytes(),
        &refs,
    ))
    .unwrap();
    retyped["payloadType"] = json!(MANIFEST_PAYLOAD_TYPE);
    out.insert("reject-payload-type-relabelled", retyped);
    out.insert(
        "reject-malformed-payload",
        signed(b"{\"schema\": 1, \"version\": ", v1),
    );
    let mut invalid = manifest(11);
    invalid.items[0].media.sha256 = "5D".repeat(32);
    out.insert("reject-invalid-manifest", signed_manifest(&invalid, v1));
    let mut traversal = manifest(11);
    traversal.items[0].media.url = "../../../etc/shadow".into();
    out.insert("reject-path-traversal-url", signed_manifest(&traversal, v1));
    let mut local_file = manifest(11);
    local_file.items[1].media.url = "file:///var/lib/ekran/key".into();
    out.insert("reject-file-url", signed_manifest(&local_file, v1));
    let mut endless = manifest(11);
    endless.items[0].media.size = MAX_MEDIA_BYTES + 1;
    out.insert("reject-endless-media", signed_manifest(&endless, v1));
    out.insert("reject-rollback", signed_manifest(&manifest(9), v1));
    let mut reused = manifest(ACCEPTED_VERSION);
    reused.items.truncate(1);
    out.insert("reject-version-reused", signed_manifest(&reused, v1));
    let mut other_screen = manifest(11);
    other_screen.screen_id = "khujand-bc-02".into();
    out.insert("reject-wrong-screen", signed_manifest(&other_screen, v1));
    let mut skip = manifest(11);
    skip.root = root(3, ROOT_V3);
    out.insert("reject-root-skip", signed_manifest(&skip, &[1, 2, 6, 7]));
    out.insert(
        "reject-rotation-old-keys-only",
        signed_manifest(&rotation, v1),
    );
    out.insert(
        "reject-rotation-new-keys-only",
        signed_manifest(&rotation, &[3, 4]),
    );
    out.insert(
        "reject-rotation-below-new-threshold",
        signed_manifest(&rotation, &[1, 2, 3]),
    );
    let mut mismatch = manifest(11);
    mismatch.root.keys[1] = root(1, (&[STRANGER], 1)).keys[0].clone();
    out.insert("reject-root-mismatch", signed_manifest(&mismatch, v1));

    let mut bytes: BTreeMap<&'static str, Vec<u8>> = out
        .into_iter()
        .map(|(name, envelope)| (name, serde_json::to_vec_pretty(&envelope).unwrap()))
        .collect();
    bytes.insert("reject-malformed-envelope", br#"{"payloadType": "application/vnd.ekran.manifest+json", "payload": "eyJzY2hlbWEiOjF9", "signatures": [{"keyid": "", "sig": 42}]"#.to_vec());
    bytes
}

fn fixture_path(name: &str) -> PathBuf {
    fixtures().join(format!("{name}.dsse.json"))
}

/// Deterministic signing: the committed files must equal a fresh build
/// from the seeds. `EKRAN_WRITE_FIXTURES=1` rewrites them after an
/// intentional change.
#[test]
fn committed_fixtures_are_what_the_seed_keys_produce() {
    let write = std::env::var_os("EKRAN_WRITE_FIXTURES").is_some();
    let state_path = fixtures().join("state.json");
    let state = serde_json::to_vec_pretty(&initial_state()).unwrap();
    if write {
        std::fs::create_dir_all(fixtures()).unwrap();
        std::fs::write(&state_path, &state).unwrap();
    }
    assert_eq!(
        std::fs::read(&state_path).unwrap(),
        state,
        "state.json is stale"
    );
    for (name, bytes) in fixture_envelopes() {
        if write {
            std::fs::write(fixture_path(name), &bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(fixture_path(name)).unwrap(),
            bytes,
            "{name} is stale"
        );
    }
}

/// Every file in the fixture folder is driven by a test below, and every
/// test has its file.
#[test]
fn every_fixture_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".dsse.json").map(str::to_owned))
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> = TESTED.iter().map(|name| name.to_string()).collect();
    tested.sort();
    assert_eq!(on_disk, tested);
}

/// Files and their bytes in a directory.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().into_string().unwrap(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// A state directory holding the committed state.
fn state_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("state.json"), TrustState::path(dir.path())).unwrap();
    dir
}

/// Feeds a rejected fixture to the player and checks that nothing changed on disk.
fn rejected(name: &str) -> TrustError {
    let dir = state_dir();
    let before = snapshot(dir.path());
    let envelope = std::fs::read(fixture_path(name)).unwrap();
    let error = match accept_in_dir(dir.path(), &envelope, &clock()) {
        Err(error) => error,
        Ok(outcome) => panic!("{name} was accepted: {outcome:?}"),
    };
    assert_eq!(
        snapshot(dir.path()),
        before,
        "{name}: state dir changed after a rejection"
    );
    error
}

/// Feeds an accepted fixture and returns the outcome and the state on disk after it.
fn accepted(name: &str) -> (Acceptance, TrustState) {
    let dir = state_dir();
    let envelope = std::fs::read(fixture_path(name)).unwrap();
    let outcome = accept_in_dir(dir.path(), &envelope, &clock())
        .unwrap_or_else(|error| panic!("{name} was rejected: {error}"));
    (outcome, TrustState::load(dir.path()).unwrap())
}

/// One test per fixture: `test_name: "file-stem" => |result| assertions`.
macro_rules! fixture_tests {
    ($($test:ident: $name:literal => $check:expr;)*) => {
        const TESTED: &[&str] = &[$($name),*];
        $(
            #[test]
            fn $test() {
                let check: fn(&str) = $check;
                check($name);
            }
        )*
    };
}

fn new_manifest(name: &str) -> (Manifest, bool, TrustState) {
    match accepted(name) {
        (
            Acceptance::New {
                manifest,
                stale,
                new_state,
            },
            on_disk,
        ) => {
            assert_eq!(
                *new_state, on_disk,
                "{name}: the returned state is the one persisted"
            );
            (*manifest, stale, on_disk)
        }
        (other, _) => panic!("{name}: expected a new manifest, got {other:?}"),
    }
}

/// The DSSE-level reason a rejected fixture was refused for.
fn envelope_error(name: &str) -> DsseError {
    match rejected(name) {
        TrustError::Envelope(error) => error,
        other => panic!("{name}: expected an envelope error, got {other}"),
    }
}

fixture_tests! {
    accept_next_version: "accept-next-version" => |name| {
        let (manifest, stale, state) = new_manifest(name);
        assert_eq!(manifest.version, 11);
        assert!(!stale);
        assert_eq!(state.manifest_version, Some(11));
        assert_eq!(state.root.version, 1);
        assert_eq!(state.time_floor, ts("2026-06-12T12:00:00Z"));
    };
    accept_skipped_versions: "accept-skipped-versions" => |name| {
        assert_eq!(new_manifest(name).2.manifest_version, Some(15));
    };
    accept_expired_is_stale: "accept-expired-is-stale" => |name| {
        let (manifest, stale, state) = new_manifest(name);
        assert!(stale, "an expired manifest still plays, marked stale");
        assert!(ekran::trust::is_stale(&state, &manifest, &ManualClock::new(Timestamp::UNIX_EPOCH)));
    };
    accept_same_version_unchanged: "accept-same-version-unchanged" => |name| {
        let dir = state_dir();
        let before = snapshot(dir.path());
        let envelope = std::fs::read(fixture_path(name)).unwrap();
        assert_eq!(accept_in_dir(dir.path(), &envelope, &clock()).unwrap(), Acceptance::Unchanged);
        assert_eq!(snapshot(dir.path()), before, "an unchanged manifest writes nothing");
    };
    accept_root_rotation: "accept-root-rotation" => |name| {
        let (_, _, state) = new_manifest(name);
        assert_eq!(state.root, root(2, ROOT_V2), "the new root is pinned");
    };
    reject_bad_signature: "reject-bad-signature" => |name| {
        // One of the two required signatures is broken: one good key is not enough.
        assert!(matches!(envelope_error(name), DsseError::ThresholdNotMet { verified: 1, threshold: 2 }));
    };
    reject_payload_swapped: "reject-payload-swapped" => |name| {
        assert!(matches!(envelope_error(name), DsseError::BadSignature { keyids } if keyids.len() == 2));
    };
    reject_unknown_key: "reject-unknown-key" => |name| {
        assert!(matches!(envelope_error(name), DsseError::UnknownKey { .. }));
    };
    reject_threshold_not_met: "reject-threshold-not-met" => |name| {
        assert!(matches!(envelope_error(name), DsseError::ThresholdNotMet { verified: 1, threshold: 2 }));
    };
    reject_duplicate_signatures: "reject-duplicate-signatures" => |name| {
        // One key's signature twice counts once.
        assert!(matches!(envelope_error(name), DsseError::ThresholdNotMet { verified: 1, threshold: 2 }));
    };
    reject_wrong_payload_type: "reject-wrong-payload-type" => |name| {
        assert!(matches!(envelope_error(name), DsseError::WrongPayloadType { .. }));
    };
    reject_payload_type_relabelled: "reject-payload-type-relabelled" => |name| {
        assert!(matches!(envelope_error(name), DsseError::BadSignature { .. }));
    };
    reject_malformed_envelope: "reject-malformed-envelope" => |name| {
        assert!(matches!(envelope_error(name), DsseError::Malformed(_)));
    };
    reject_malformed_payload: "reject-malformed-payload" => |name| {
        assert!(matches!(rejected(name), TrustError::Manifest(ekran::manifest::ManifestError::Malformed(_))));
    };
    reject_invalid_manifest: "reject-invalid-manifest" => |name| {
        assert!(rejected(name).to_string().contains("items[0].media.sha256"));
    };
    reject_path_traversal_url: "reject-path-traversal-url" => |name| {
        assert!(rejected(name).to_string().contains("items[0].media.url"));
    };
    reject_file_url: "reject-file-url" => |name| {
        assert!(rejected(name).to_string().contains("items[1].media.url"));
    };
    reject_endless_media: "reject-endless-media" => |name| {
        assert!(rejected(name).to_string().contains("items[0].media.size"));
    };
    reject_rollback: "reject-rollback" => |name| {
        assert!(matches!(rejected(name), TrustError::Rollback { offered: 9, accepted: 10 }));
    };
    reject_version_reused: "reject-version-reused" => |name| {
        assert!(matches!(rejected(name), TrustError::VersionReused { version: 10, .. }));
    };
    reject_wrong_screen: "reject-wrong-screen" => |name| {
        assert!(matches!(rejected(name), TrustError::WrongScreen { .. }));
    };
    reject_root_skip: "reject-root-skip" => |name| {
        assert!(matches!(rejected(name), TrustError::RootVersionSkip { pinned: 1, offered: 3, next: 2 }));
    };
    reject_rotation_old_keys_only: "reject-rotation-old-keys-only" => |name| {
        assert!(matches!(rejected(name), TrustError::RotationNotSignedByNewRoot { version: 2, .. }));
    };
    reject_rotation_new_keys_only: "reject-rotation-new-keys-only" => |name| {
        // The pinned keys never signed: the payload is not even read.
        assert!(matches!(envelope_error(name), DsseError::UnknownKey { .. }));
    };
    reject_rotation_below_new_threshold: "reject-rotation-below-new-threshold" => |name| {
        assert!(matches!(rejected(name), TrustError::RotationNotSignedByNewRoot { version: 2, .. }));
    };
    reject_root_mismatch: "reject-root-mismatch" => |name| {
        assert!(matches!(rejected(name), TrustError::RootMismatch { version: 1 }));
    };
}

#[test]
fn oversize_envelope_is_refused_unread_and_leaves_no_trace() {
    let dir = state_dir();
    let before = snapshot(dir.path());
    let oversize = vec![b' '; dsse::MAX_ENVELOPE_BYTES + 1];
    let error = accept_in_dir(dir.path(), &oversize, &clock()).unwrap_err();
    assert!(
        matches!(error, TrustError::Envelope(DsseError::Oversize { .. })),
        "{error}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn rotated_screen_accepts_the_new_root_alone_and_refuses_the_old() {
    let dir = state_dir();
    let rotation = std::fs::read(fixture_path("accept-root-rotation")).unwrap();
    accept_in_dir(dir.path(), &rotation, &clock()).unwrap();
    let mut next = manifest(12);
    next.root = root(2, ROOT_V2);
    let by_new = serde_json::to_vec(&signed_manifest(&next, &[4, 5])).unwrap();
    assert!(matches!(
        accept_in_dir(dir.path(), &by_new, &clock()).unwrap(),
        Acceptance::New { .. }
    ));
    // The old keys no longer suffice, even with the old root claimed.
    let by_old = serde_json::to_vec(&signed_manifest(&manifest(13), ROOT_V1.0)).unwrap();
    assert!(accept_in_dir(dir.path(), &by_old, &clock()).is_err());
}

#[test]
fn time_floor_survives_a_reboot_into_1970() {
    let dir = state_dir();
    let envelope = std::fs::read(fixture_path("accept-next-version")).unwrap();
    accept_in_dir(dir.path(), &envelope, &clock()).unwrap();
    let rebooted = ManualClock::new(Timestamp::UNIX_EPOCH);
    let state = TrustState::load(dir.path()).unwrap();
    assert_eq!(state.now(&rebooted), ts("2026-06-12T12:00:00Z"));
    // Pure acceptance agrees with the persisted path.
    let later = std::fs::read(fixture_path("accept-skipped-versions")).unwrap();
    match accept(&state, &later, &rebooted).unwrap() {
        Acceptance::New {
            new_state, stale, ..
        } => {
            assert!(!stale);
            assert_eq!(new_state.time_floor, ts("2026-06-12T12:00:00Z"));
        }
        other => panic!("{other:?}"),
    }
}

/// The sample campaigns in `playlists/`, compiled as the server would and
/// signed by the root, are accepted by a player: the playlist rules and the
/// manifest rules agree.
#[test]
fn sample_playlists_compile_to_manifests_a_player_accepts() {
    use sha2::Digest as _;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playlists");
    let mut version = ACCEPTED_VERSION;
    let state_dir = state_dir();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let playlist = ekran::playlist::parse(&source, &path)
            .unwrap_or_else(|errors| panic!("{}: {errors}", path.display()));
        let (items, overlays) = playlist
            .to_manifest_parts(|media| {
                // Stand-in content: the media files are made by a demo script.
                let sha256 = hex::encode(sha2::Sha256::digest(media.to_string_lossy().as_bytes()));
                Ok::<_, std::convert::Infallible>(ekran::manifest::Media {
                    url: format!("/media/{sha256}"),
                    sha256,
                    size: 1_000,
                    mime: ekran::playlist::mime_for_path(media).unwrap().to_owned(),
                })
            })
            .unwrap();
        version += 1;
        let mut compiled = manifest(version);
        compiled.timezone = playlist.timezone.clone();
        compiled.items = items;
        compiled.overlays = overlays;
        let envelope = serde_json::to_vec(&signed_manifest(&compiled, ROOT_V1.0)).unwrap();
        let outcome = accept_in_dir(state_dir.path(), &envelope, &clock())
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert!(
            matches!(outcome, Acceptance::New { .. }),
            "{}",
            path.display()
        );
    }
    assert!(
        version > ACCEPTED_VERSION + 1,
        "both sample playlists were compiled"
    );
}
