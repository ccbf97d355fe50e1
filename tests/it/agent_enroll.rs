//! Enrollment and signed requests against the real server: a fresh box
//! gets a pairing code, is approved by the operator, pins the server key
//! and persists its identity; a restart while waiting gets the same code;
//! a box whose clock booted in 1970 is corrected by the server's `Date`.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use ekran::agent::client::{Approval, DeviceClient, EnrollAnswer, ServerClock};
use ekran::agent::enroll::{self, EnrollOptions, PairingEvent};
use ekran::keys;
use ekran::trust::{Clock, ManualClock, TrustState};
use jiff::Timestamp;
use reqwest::Method;
use sha2::{Digest, Sha256};

use crate::agent_e2e_support::{Rig, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_box_enrolls_after_approval_and_pins_the_server_key() {
    let rig = Rig::start().await;
    let config = rig.config();
    assert!(enroll::load_identity(&config).unwrap().is_none());

    let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
    let mode = std::fs::metadata(config.screen_key_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the screen key must be private");
    let client = DeviceClient::new(
        &config.server_url,
        key.clone(),
        Arc::new(ServerClock::system()),
    )
    .unwrap();

    let (events, mut shown) = tokio::sync::mpsc::unbounded_channel();
    let trust_dir = config.trust_dir();
    let options = EnrollOptions::from_config(&config);
    let enrolling = {
        let client = client.clone();
        tokio::spawn(async move {
            enroll::enroll(
                &client,
                &trust_dir,
                &options,
                move |event| events.send(event).unwrap(),
                std::future::pending(),
            )
            .await
        })
    };
    let Some(PairingEvent::Show(pairing)) = shown.recv().await else {
        panic!("no pairing code shown")
    };
    assert_eq!(pairing.key_id, keys::key_id(&key.verifying_key()));
    assert_eq!(pairing.code.len(), 9, "{pairing:?}");
    // Not approved yet: the box is not a screen and has no identity on disk.
    assert!(matches!(
        client.identity().await.unwrap(),
        Approval::NotEnrolled(_)
    ));
    assert!(!TrustState::path(&config.trust_dir()).exists());

    let response = rig.approve(&pairing.code, "scr-lobby-1").await;
    assert_eq!(response.status(), 201);
    let trust = within(Duration::from_secs(20), enrolling)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        shown.recv().await,
        Some(PairingEvent::Approved {
            screen_id: "scr-lobby-1".into()
        })
    );

    // The identity is on disk: screen id, and the server's real signing key pinned.
    assert_eq!(trust.screen_id, "scr-lobby-1");
    assert_eq!(trust.manifest_version, None);
    let signer = rig.server.state.signer();
    let pinned = keys::verifying_key_from_pem(&trust.root.keys[0]).unwrap();
    assert_eq!(keys::key_id(&pinned), signer.key_id);
    let identity = enroll::load_identity(&config).unwrap().unwrap();
    assert_eq!(identity.trust, trust);
    assert_eq!(identity.key.to_bytes(), key.to_bytes());

    // Enrolling the same key again is refused by the server as already done.
    assert_eq!(
        client.enroll().await.unwrap(),
        EnrollAnswer::AlreadyEnrolled
    );
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_while_waiting_shows_the_same_code_and_approval_still_lands() {
    let rig = Rig::start().await;
    let config = rig.config();
    let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
    let client =
        DeviceClient::new(&config.server_url, key, Arc::new(ServerClock::system())).unwrap();
    let EnrollAnswer::Pending(first) = client.enroll().await.unwrap() else {
        panic!("expected a pairing code")
    };

    // "Restart": the key is read back from disk, not made anew.
    let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
    assert_eq!(keys::key_id(&key.verifying_key()), first.key_id);
    let client =
        DeviceClient::new(&config.server_url, key, Arc::new(ServerClock::system())).unwrap();
    let (events, mut shown) = tokio::sync::mpsc::unbounded_channel();
    let trust_dir = config.trust_dir();
    let options = EnrollOptions::from_config(&config);
    let enrolling = tokio::spawn(async move {
        enroll::enroll(
            &client,
            &trust_dir,
            &options,
            move |event| events.send(event).unwrap(),
            std::future::pending(),
        )
        .await
    });
    let Some(PairingEvent::Show(again)) = shown.recv().await else {
        panic!("no pairing code shown")
    };
    assert_eq!(again.code, first.code);
    assert_eq!(
        rig.approve(&again.code, "scr-restarted").await.status(),
        201
    );
    let trust = within(Duration::from_secs(20), enrolling)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trust.screen_id, "scr-restarted");
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_box_that_lost_its_identity_recovers_it_without_a_new_code() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-recover").await;
    // A crash between approval and saving: the trust state is gone, the key is not.
    std::fs::remove_file(TrustState::path(&config.trust_dir())).unwrap();
    let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
    let client =
        DeviceClient::new(&config.server_url, key, Arc::new(ServerClock::system())).unwrap();
    let mut shown = Vec::new();
    let trust = within(
        Duration::from_secs(20),
        enroll::enroll(
            &client,
            &config.trust_dir(),
            &EnrollOptions::from_config(&config),
            |event| shown.push(event),
            std::future::pending(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(trust.screen_id, "scr-recover");
    assert_eq!(
        shown,
        vec![PairingEvent::Approved {
            screen_id: "scr-recover".into()
        }],
        "no pairing code may be shown for an enrolled key"
    );
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_clock_in_1970_is_corrected_from_the_date_header() {
    let rig = Rig::start().await;
    let config = rig.config();
    let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
    let box_clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
    let clock = Arc::new(ServerClock::new(box_clock));
    let client = DeviceClient::new(&config.server_url, key, clock.clone()).unwrap();
    // The first signature carries 1970 and is refused; the client learns the
    // server's time from the refusal and signs again.
    let answer = client.enroll().await.unwrap();
    assert!(matches!(answer, EnrollAnswer::Pending(_)), "{answer:?}");
    let error = clock.now().duration_since(Timestamp::now()).abs();
    assert!(
        error < jiff::SignedDuration::from_secs(5),
        "corrected clock is off by {error:?}"
    );
    rig.server.stop().await;
}

#[tokio::test]
async fn client_signatures_verify_with_the_servers_verifier() {
    use ekran::server::device::{parse_auth_header, signing_string};
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let client = DeviceClient::new(
        "http://127.0.0.1:9",
        key.clone(),
        Arc::new(ServerClock::system()),
    )
    .unwrap();
    let body = br#"[{"seq":1}]"#;
    let header = client.authorization(&Method::POST, "/api/v1/device/pop?x=1", body);
    let parsed = parse_auth_header(&header).unwrap();
    assert_eq!(parsed.key_id, keys::key_id(&key.verifying_key()));
    let message = signing_string(
        "POST",
        "/api/v1/device/pop?x=1",
        &hex::encode(Sha256::digest(body)),
        parsed.ts_ms,
        &parsed.nonce,
    );
    key.verifying_key()
        .verify_strict(message.as_bytes(), &parsed.signature)
        .unwrap();
    // Every part is bound: another body does not verify.
    let other = signing_string(
        "POST",
        "/api/v1/device/pop?x=1",
        &hex::encode(Sha256::digest(b"[]")),
        parsed.ts_ms,
        &parsed.nonce,
    );
    assert!(
        key.verifying_key()
            .verify_strict(other.as_bytes(), &parsed.signature)
            .is_err()
    );
}
