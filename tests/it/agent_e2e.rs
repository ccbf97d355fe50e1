//! The whole agent ([`ekran::agent::run::run`]) against the real server:
//! publish → fetch, verify, download, activate, play; proof-of-play made
//! from the engine's events reaches the server; a restart plays from disk
//! before any network and skips enrollment; tampered and rolled-back
//! envelopes are refused, the playing manifest stays, and the reason
//! reaches the server in the next heartbeat.
//!
//! The playback engine is played by the test: [`TestPort`] hands each call
//! to the test, which answers with real timestamps.

use std::sync::Arc;
use std::time::Duration;

use ekran::agent::boot::{ManifestStore, Slot};
use ekran::agent::client::ServerClock;
use ekran::agent::config::PlayerConfig;
use ekran::agent::enroll::PairingEvent;
use ekran::agent::run::{self, PlayEvent, PlayEvents, PlayRequest, PlaybackPort};
use ekran::trust::{ManualClock, TrustState};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::agent_e2e_support::{Rig, eventually, png, within};
use crate::server_support::Backend;

/// What the agent asked the engine to do.
#[derive(Debug)]
pub enum PortCall {
    Play(PlayRequest, PlayEvents),
    Preroll(PlayRequest),
    Fallback,
    Pairing(PairingEvent),
    Stop,
}

/// A playback port that hands every call to the test.
pub struct TestPort(pub mpsc::UnboundedSender<PortCall>);

impl PlaybackPort for TestPort {
    fn play(&mut self, request: PlayRequest, events: PlayEvents) {
        let _ = self.0.send(PortCall::Play(request, events));
    }
    fn preroll(&mut self, next: &PlayRequest) {
        let _ = self.0.send(PortCall::Preroll(next.clone()));
    }
    fn show_fallback(&mut self) {
        let _ = self.0.send(PortCall::Fallback);
    }
    fn show_pairing(&mut self, event: &PairingEvent) {
        let _ = self.0.send(PortCall::Pairing(event.clone()));
    }
    fn stop(&mut self) {
        let _ = self.0.send(PortCall::Stop);
    }
}

/// A running agent and the test's end of its playback port.
pub struct Agent {
    pub calls: mpsc::UnboundedReceiver<PortCall>,
    /// The last preroll hint seen by [`Agent::next_play`].
    pub last_preroll: Option<PlayRequest>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Agent {
    pub fn start(config: PlayerConfig) -> Self {
        Self::start_with_clock(config, Arc::new(ServerClock::system()))
    }

    pub fn start_with_clock(config: PlayerConfig, clock: Arc<ServerClock>) -> Self {
        let (sender, calls) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run::run_with_clock(config, TestPort(sender), clock, async {
                let _ = stopped.await;
            })
            .await
            .expect("agent ran");
        });
        Self {
            calls,
            last_preroll: None,
            stop: Some(stop),
            task,
        }
    }

    /// The next play request (skipping prerolls and fallbacks).
    pub async fn next_play(&mut self) -> (PlayRequest, PlayEvents) {
        within(Duration::from_secs(20), async {
            loop {
                match self.calls.recv().await.expect("agent running") {
                    PortCall::Play(request, events) => return (request, events),
                    PortCall::Preroll(next) => self.last_preroll = Some(next),
                    PortCall::Pairing(PairingEvent::Show(pairing)) => {
                        panic!("unexpected pairing code {pairing:?}")
                    }
                    _ => {}
                }
            }
        })
        .await
    }

    /// Plays `request` to its end as an engine would: started now, finished
    /// `millis` later with `frames` presented.
    pub async fn play_through(&mut self, events: &PlayEvents, millis: u64, frames: u64) {
        let started = Timestamp::now();
        events.send(PlayEvent::Started {
            presented_at: started,
            decoder: Some("pngdec".into()),
        });
        tokio::time::sleep(Duration::from_millis(millis)).await;
        events.send(PlayEvent::Finished {
            first_presented_at: started,
            last_presented_at: Timestamp::now(),
            frames_presented: frames,
            frames_dropped: 1,
        });
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within(Duration::from_secs(20), self.task)
            .await
            .expect("agent task");
    }
}

pub(crate) fn manifest_store(config: &PlayerConfig) -> ManifestStore {
    ManifestStore::new(&run::manifest_dir(config))
}

/// The server's stored heartbeat of `screen`, if any.
async fn heartbeat(rig: &Rig, screen: &str) -> Option<serde_json::Value> {
    let row = sqlx::query("SELECT status_json FROM heartbeats WHERE screen_id = $1")
        .bind(screen)
        .fetch_optional(rig.server.state.db().pool())
        .await
        .unwrap()?;
    let json: String = row.try_get("status_json").unwrap();
    Some(serde_json::from_str(&json).unwrap())
}

/// (count, distinct seqs, max seq) of the server's records of `screen`.
async fn stored_records(rig: &Rig, screen: &str) -> (i64, i64, i64) {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d, COALESCE(MAX(seq), 0) AS m FROM pop_records WHERE screen_id = $1",
    )
    .bind(screen)
    .fetch_one(rig.server.state.db().pool())
    .await
    .unwrap();
    (row.get("n"), row.get("d"), row.get("m"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_playlist_is_fetched_verified_cached_activated_played_and_proven_sqlite() {
    published_playlist_is_fetched_verified_cached_activated_played_and_proven(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_playlist_is_fetched_verified_cached_activated_played_and_proven_postgres() {
    published_playlist_is_fetched_verified_cached_activated_played_and_proven(Backend::Postgres)
        .await;
}

async fn published_playlist_is_fetched_verified_cached_activated_played_and_proven(
    backend: Backend,
) {
    let rig = Rig::start_on(backend, |_| {}).await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-sync").await;
    let poster = png("poster-1");
    let hotline = png("hotline");
    let poster_sha = rig.upload_media(&poster).await;
    let hotline_sha = rig.upload_media(&hotline).await;
    let version = rig
        .publish(
            "june26",
            "scr-sync",
            &[
                ("poster-1", "media/poster-1.png", &poster_sha),
                ("hotline", "media/hotline.png", &hotline_sha),
            ],
        )
        .await;

    let mut agent = Agent::start(config.clone());
    let (request, events) = agent.next_play().await;
    assert_eq!(request.manifest_version, version);
    // The file handed to the engine is the verified, content-addressed copy.
    let bytes = std::fs::read(&request.media_path).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        request.item.media.sha256
    );
    assert!(request.media_path.ends_with(&request.item.media.sha256));
    let active = manifest_store(&config).load(Slot::Active).unwrap().unwrap();
    assert_eq!(active.manifest.version, version);
    assert!(
        manifest_store(&config)
            .load(Slot::Pending)
            .unwrap()
            .is_none()
    );
    let trust = TrustState::load(&config.trust_dir()).unwrap();
    assert_eq!(trust.manifest_version, Some(version));

    agent.play_through(&events, 30, 25).await;
    let (second, second_events) = agent.next_play().await;
    assert_ne!(second.play_id, request.play_id);
    // While the first played, the engine was told what would follow.
    let hint = agent.last_preroll.take().expect("a preroll hint");
    assert_eq!(hint.item.id, second.item.id);
    assert_ne!(second.item.id, request.item.id, "equal weights alternate");
    agent.play_through(&second_events, 30, 25).await;
    let _ = agent.next_play().await;

    // Both plays were journaled, uploaded and acknowledged, once each.
    let (count, distinct, max) =
        eventually(Duration::from_secs(20), "records on the server", || async {
            let stored = stored_records(&rig, "scr-sync").await;
            (stored.0 >= 2).then_some(stored)
        })
        .await;
    assert_eq!((count, distinct, max), (2, 2, 2));
    let row = sqlx::query(
        "SELECT item_id, outcome, frames_presented, duration_ms, stale FROM pop_records WHERE screen_id = $1 AND seq = 1",
    )
    .bind("scr-sync")
    .fetch_one(rig.server.state.db().pool())
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("item_id"), request.item.id);
    assert_eq!(row.get::<String, _>("outcome"), "completed");
    assert_eq!(row.get::<i64, _>("frames_presented"), 25);
    assert!(row.get::<i64, _>("duration_ms") >= 30);
    assert_eq!(row.get::<i64, _>("stale"), 0);

    // The heartbeat tells what plays and how the box is.
    let beat = eventually(
        Duration::from_secs(20),
        "a heartbeat with the backlog drained",
        || async {
            heartbeat(&rig, "scr-sync")
                .await
                .filter(|beat| beat["pop_acked_seq"] == 2)
        },
    )
    .await;
    assert_eq!(beat["manifest_version"], version);
    assert_eq!(beat["stale"], false);
    assert_eq!(beat["decoder"], "pngdec");
    assert!(beat["cache_bytes"].as_u64().unwrap() >= (poster.len() + hotline.len()) as u64);
    assert!(beat["disk_free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(beat["last_error"], serde_json::Value::Null);
    agent.stop().await;
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_plays_from_disk_without_network_and_skips_enrollment() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-boot").await;
    let sha = rig.upload_media(&png("boot")).await;
    let version = rig
        .publish("boot", "scr-boot", &[("boot", "media/boot.png", &sha)])
        .await;
    let mut agent = Agent::start(config.clone());
    let (request, events) = agent.next_play().await;
    // Stop mid-play: the play is journaled as interrupted at its last frame.
    events.send(PlayEvent::Started {
        presented_at: Timestamp::now(),
        decoder: None,
    });
    events.send(PlayEvent::Progress {
        last_presented_at: Timestamp::now(),
        frames_presented: 3,
        frames_dropped: 0,
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    agent.stop().await;
    rig.server.stop().await;

    // The server is gone. The box still boots straight into playback.
    let mut agent = Agent::start(config.clone());
    let (again, _events) = agent.next_play().await;
    assert_eq!(again.item.id, request.item.id);
    assert_eq!(again.manifest_version, version);
    assert!(again.media_path.exists());
    agent.stop().await;

    let mut journal = ekran::agent::journal::Journal::open(
        ekran::agent::journal::DirStorage::new(&config.journal_dir()).unwrap(),
        Default::default(),
    )
    .unwrap()
    .0;
    let pending = journal.pending(10).unwrap();
    let interrupted: Vec<_> = pending
        .iter()
        .filter(|record| record.body.play_id == request.play_id)
        .collect();
    assert_eq!(interrupted.len(), 1, "{pending:?}");
    assert_eq!(
        interrupted[0].body.outcome,
        ekran::pop::Outcome::Interrupted
    );
    assert_eq!(interrupted[0].body.frames_presented, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_rolled_back_envelopes_are_refused_and_reported() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-attack").await;
    let first = rig.upload_media(&png("first")).await;
    let old = rig
        .publish("attack", "scr-attack", &[("one", "media/one.png", &first)])
        .await;
    let second = rig.upload_media(&png("second")).await;
    let new = rig
        .publish("attack", "scr-attack", &[("two", "media/two.png", &second)])
        .await;

    let mut agent = Agent::start(config.clone());
    let (request, _) = agent.next_play().await;
    assert_eq!(request.manifest_version, new);
    let db = rig.server.state.db().pool().clone();
    let envelope_of = |version: u64| {
        let db = db.clone();
        async move {
            sqlx::query("SELECT envelope FROM publications WHERE screen_id = $1 AND version = $2")
                .bind("scr-attack")
                .bind(version as i64)
                .fetch_one(&db)
                .await
                .unwrap()
                .get::<String, _>("envelope")
        }
    };
    let inject = |version: i64, envelope: String| {
        let db = db.clone();
        let state = rig.server.state.clone();
        async move {
            let etag = hex::encode(Sha256::digest(envelope.as_bytes()));
            sqlx::query(
                "INSERT INTO publications (screen_id, version, envelope, etag, published_at_ms) VALUES ($1, $2, $3, $4, 0)",
            )
            .bind("scr-attack")
            .bind(version)
            .bind(envelope)
            .bind(etag)
            .execute(&db)
            .await
            .unwrap();
            state.notifier().notify("scr-attack");
        }
    };
    let active_version = || {
        manifest_store(&config)
            .load(Slot::Active)
            .unwrap()
            .unwrap()
            .manifest
            .version
    };

    // Rollback: the server serves the genuine, validly signed version 1 again.
    inject(90, envelope_of(old).await).await;
    let beat = eventually(
        Duration::from_secs(20),
        "rollback in the heartbeat",
        || async {
            heartbeat(&rig, "scr-attack").await.filter(|beat| {
                beat["last_error"]
                    .as_str()
                    .is_some_and(|error| error.contains("rollback"))
            })
        },
    )
    .await;
    assert_eq!(beat["manifest_version"], new, "{beat}");
    assert_eq!(active_version(), new);

    // Tampered: the current version's payload with one byte changed, signature kept.
    let genuine: serde_json::Value = serde_json::from_str(&envelope_of(new).await).unwrap();
    let mut payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        genuine["payload"].as_str().unwrap(),
    )
    .unwrap();
    let text = String::from_utf8(payload.clone()).unwrap();
    payload = text
        .replacen(&format!("\"version\":{new}"), "\"version\":77", 1)
        .into_bytes();
    assert_ne!(payload, text.as_bytes());
    let mut tampered = genuine.clone();
    tampered["payload"] =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &payload).into();
    inject(91, tampered.to_string()).await;
    let beat = eventually(
        Duration::from_secs(20),
        "the signature failure in the heartbeat",
        || async {
            heartbeat(&rig, "scr-attack").await.filter(|beat| {
                beat["last_error"]
                    .as_str()
                    .is_some_and(|error| error.contains("envelope rejected"))
            })
        },
    )
    .await;
    assert_eq!(beat["manifest_version"], new, "{beat}");
    assert_eq!(active_version(), new);
    let trust = TrustState::load(&config.trust_dir()).unwrap();
    assert_eq!(trust.manifest_version, Some(new));
    // The playing manifest's media are still in the cache.
    assert!(request.media_path.exists());
    agent.stop().await;
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_with_a_1970_clock_enrolls_syncs_and_records_server_time() {
    let rig = Rig::start().await;
    let config = rig.config();
    let clock = Arc::new(ServerClock::new(Arc::new(ManualClock::new(
        Timestamp::UNIX_EPOCH,
    ))));
    let mut agent = Agent::start_with_clock(config.clone(), clock);
    // First start: the pairing code is shown through the playback port.
    let code = within(Duration::from_secs(20), async {
        loop {
            if let PortCall::Pairing(PairingEvent::Show(pairing)) =
                agent.calls.recv().await.unwrap()
            {
                return pairing.code;
            }
        }
    })
    .await;
    assert_eq!(rig.approve(&code, "scr-1970").await.status(), 201);
    let sha = rig.upload_media(&png("1970")).await;
    rig.publish("epoch", "scr-1970", &[("epoch", "media/e.png", &sha)])
        .await;
    let (_, events) = agent.next_play().await;
    agent.play_through(&events, 10, 5).await;
    let _ = agent.next_play().await;
    // The record's times are the server's era, not 1970 (the test's events
    // carry real time; the trust floor was raised past 1970 too).
    let trust = TrustState::load(&config.trust_dir()).unwrap();
    assert!(trust.time_floor > "2020-01-01T00:00:00Z".parse().unwrap());
    let (count, _, _) = eventually(Duration::from_secs(20), "the record", || async {
        let stored = stored_records(&rig, "scr-1970").await;
        (stored.0 >= 1).then_some(stored)
    })
    .await;
    assert_eq!(count, 1);
    agent.stop().await;
    rig.server.stop().await;
}

/// The last error in the server's stored heartbeat, once it contains `needle`.
pub(crate) async fn heartbeat_error_containing(
    rig: &Rig,
    screen: &str,
    needle: &str,
) -> serde_json::Value {
    eventually(
        Duration::from_secs(20),
        &format!("{needle:?} in the heartbeat"),
        || async {
            heartbeat(rig, screen).await.filter(|beat| {
                beat["last_error"]
                    .as_str()
                    .is_some_and(|error| error.contains(needle))
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_over_the_cache_quota_is_reported_and_the_old_one_keeps_playing() {
    let rig = Rig::start().await;
    let mut config = rig.config();
    config.cache.quota_bytes = 10_000;
    rig.enroll_box(&config, "scr-quota").await;
    let small = rig.upload_media(&png("small")).await;
    let old = rig
        .publish(
            "quota",
            "scr-quota",
            &[("small", "media/small.png", &small)],
        )
        .await;
    let mut agent = Agent::start(config.clone());
    let (request, events) = agent.next_play().await;
    assert_eq!(request.manifest_version, old);

    let mut big = Vec::new();
    for name in ["big-1", "big-2", "big-3"] {
        big.push(rig.upload_media(&png(name)).await);
    }
    let items: Vec<(&str, &str, &str)> = vec![
        ("big-1", "media/big-1.png", &big[0]),
        ("big-2", "media/big-2.png", &big[1]),
        ("big-3", "media/big-3.png", &big[2]),
    ];
    rig.publish("quota", "scr-quota", &items).await;
    let beat = heartbeat_error_containing(&rig, "scr-quota", "quota").await;
    assert_eq!(beat["manifest_version"], old, "{beat}");
    assert_eq!(
        manifest_store(&config)
            .load(Slot::Active)
            .unwrap()
            .unwrap()
            .manifest
            .version,
        old
    );
    // The screen plays on: the next item is still from the old manifest.
    agent.play_through(&events, 10, 3).await;
    let (next, _) = agent.next_play().await;
    assert_eq!(next.manifest_version, old);
    assert!(next.media_path.exists());

    // The operator publishes a playlist that fits: the box is not stuck on
    // the one that did not, and switches.
    let fits = rig.upload_media(&png("fits")).await;
    let fixed = rig
        .publish("quota", "scr-quota", &[("fits", "media/fits.png", &fits)])
        .await;
    eventually(
        Duration::from_secs(20),
        "the fitting manifest active",
        || async {
            let active = manifest_store(&config).load(Slot::Active).ok()??;
            (active.manifest.version == fixed).then_some(())
        },
    )
    .await;
    agent.stop().await;
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_media_bytes_are_refused_then_fetched_again_once_the_server_is_fixed() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-subst").await;
    let first = rig.upload_media(&png("first")).await;
    let old = rig
        .publish(
            "subst",
            "scr-subst",
            &[("first", "media/first.png", &first)],
        )
        .await;
    let mut agent = Agent::start(config.clone());
    let (_, events) = agent.next_play().await;

    // The server's copy of the new clip is replaced by other bytes of the same length.
    let genuine = png("second");
    let second = rig.upload_media(&genuine).await;
    let stored = rig.stored_media_path(&second);
    let mut forged = genuine.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    std::fs::write(&stored, &forged).unwrap();
    let new = rig
        .publish(
            "subst",
            "scr-subst",
            &[("second", "media/second.png", &second)],
        )
        .await;
    let beat = heartbeat_error_containing(&rig, "scr-subst", "substituted").await;
    assert_eq!(beat["manifest_version"], old, "{beat}");
    let cached = config.cache_dir().join("media").join(&second);
    assert!(
        !cached.exists(),
        "substituted bytes must never enter the cache"
    );
    let store = manifest_store(&config);
    assert_eq!(
        store.load(Slot::Active).unwrap().unwrap().manifest.version,
        old
    );
    assert_eq!(
        store.load(Slot::Pending).unwrap().unwrap().manifest.version,
        new
    );

    // The operator repairs the server; the retry activates the new manifest.
    std::fs::write(&stored, &genuine).unwrap();
    eventually(
        Duration::from_secs(20),
        "the new manifest active",
        || async {
            let active = manifest_store(&config).load(Slot::Active).ok()??;
            (active.manifest.version == new).then_some(())
        },
    )
    .await;
    assert_eq!(std::fs::read(&cached).unwrap(), genuine);
    // The play on screen finishes; the agent switches at the next item
    // (at most one more old play, if the switch reached it a moment late).
    agent.play_through(&events, 10, 3).await;
    let (mut next, mut next_events) = agent.next_play().await;
    if next.manifest_version == old {
        agent.play_through(&next_events, 10, 3).await;
        (next, next_events) = agent.next_play().await;
    }
    drop(next_events);
    assert_eq!(next.manifest_version, new);
    assert_eq!(next.item.id, "subst/second");
    agent.stop().await;
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_manifest_keeps_playing_marked_stale_in_heartbeats_and_records() {
    let rig = Rig::start_with(|config| config.manifest_ttl_secs = 1).await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-stale").await;
    let sha = rig.upload_media(&png("freeze")).await;
    rig.publish("freeze", "scr-stale", &[("freeze", "media/f.png", &sha)])
        .await;
    let mut agent = Agent::start(config.clone());
    let (_, events) = agent.next_play().await;
    // Past expires_at (one second after issue) the screen does not go black…
    eventually(Duration::from_secs(20), "a stale heartbeat", || async {
        heartbeat(&rig, "scr-stale")
            .await
            .filter(|beat| beat["stale"] == true)
    })
    .await;
    agent.play_through(&events, 10, 3).await;
    let (next, next_events) = agent.next_play().await;
    assert_eq!(next.item.id, "freeze/freeze");
    // …and what plays now is recorded as stale.
    agent.play_through(&next_events, 10, 3).await;
    let _ = agent.next_play().await;
    let stale: i64 = eventually(Duration::from_secs(20), "the stale record", || async {
        sqlx::query("SELECT stale FROM pop_records WHERE screen_id = $1 AND seq = 2")
            .bind("scr-stale")
            .fetch_optional(rig.server.state.db().pool())
            .await
            .unwrap()
            .map(|row| row.get::<i64, _>("stale"))
    })
    .await;
    assert_eq!(stale, 1);
    agent.stop().await;
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_lost_from_the_cache_are_fetched_again_after_a_restart() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-repair").await;
    let sha = rig.upload_media(&png("repair")).await;
    let version = rig
        .publish("repair", "scr-repair", &[("repair", "media/r.png", &sha)])
        .await;
    let mut agent = Agent::start(config.clone());
    let (request, _) = agent.next_play().await;
    agent.stop().await;

    // Storage damage while the box was off: the only clip is gone.
    std::fs::remove_file(&request.media_path).unwrap();
    let mut agent = Agent::start(config.clone());
    // Nothing playable at boot: the fallback shows first…
    within(Duration::from_secs(20), async {
        loop {
            match agent.calls.recv().await.unwrap() {
                PortCall::Fallback => break,
                PortCall::Play(request, _) => panic!("played missing media {request:?}"),
                _ => {}
            }
        }
    })
    .await;
    // …until sync has fetched and verified the file again.
    let (again, _) = agent.next_play().await;
    assert_eq!(again.manifest_version, version);
    assert_eq!(
        hex::encode(Sha256::digest(std::fs::read(&again.media_path).unwrap())),
        sha
    );
    agent.stop().await;
    rig.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_box_that_boots_in_1970_keeps_its_schedule_by_the_time_floor() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-rtc").await;
    let sha = rig.upload_media(&png("rtc")).await;
    let version = rig
        .publish("rtc", "scr-rtc", &[("rtc", "media/rtc.png", &sha)])
        .await;
    let mut agent = Agent::start(config.clone());
    let (_, events) = agent.next_play().await;
    agent.play_through(&events, 10, 3).await;
    let _ = agent.next_play().await;
    agent.stop().await;
    rig.server.stop().await;

    // No real-time clock, no network: the box thinks it is 1970. The flight
    // (this month) is judged by the persisted time floor, so it still plays.
    let clock = Arc::new(ServerClock::new(Arc::new(ManualClock::new(
        Timestamp::UNIX_EPOCH,
    ))));
    let mut agent = Agent::start_with_clock(config.clone(), clock);
    let (request, events) = agent.next_play().await;
    assert_eq!(request.manifest_version, version);
    agent.play_through(&events, 10, 3).await;
    let _ = agent.next_play().await;
    agent.stop().await;
}
