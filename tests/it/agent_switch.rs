//! A new manifest activated while the old one plays (SPEC §4, §5): the play
//! already committed to the engine (maybe prerolled, its file open) still
//! plays and is recorded; the new manifest's first play is prerolled at
//! its start, so the switch is as gapless as any other; and the old media
//! leave the cache only as they go off screen, never while the engine
//! may still open them.

use std::time::Duration;

use ekran::agent::boot::{ManifestStore, Slot};
use ekran::agent::run::{self, PlayEvent, PlayEvents, PlayRequest};
use jiff::Timestamp;

use crate::agent_e2e::{Agent, PortCall};
use crate::agent_e2e_support::{Rig, eventually, png, within};

fn started(events: &PlayEvents) -> Timestamp {
    let at = Timestamp::now();
    events.send(PlayEvent::Started {
        presented_at: at,
        decoder: Some("pngdec".into()),
    });
    at
}

fn finished(events: &PlayEvents, first: Timestamp) {
    events.send(PlayEvent::Finished {
        first_presented_at: first,
        last_presented_at: Timestamp::now(),
        frames_presented: 10,
        frames_dropped: 0,
    });
}

/// The next preroll hint the agent gives the engine.
async fn next_preroll(agent: &mut Agent) -> PlayRequest {
    within(Duration::from_secs(20), async {
        loop {
            match agent.calls.recv().await.expect("agent running") {
                PortCall::Preroll(next) => return next,
                PortCall::Play(request, _) => panic!("a play before the preroll: {request:?}"),
                _ => {}
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_activated_mid_play_switches_at_the_boundary_and_evicts_once_off_screen() {
    let rig = Rig::start().await;
    let config = rig.config();
    rig.enroll_box(&config, "scr-switch").await;
    let mut old = Vec::new();
    for name in ["one", "two", "three"] {
        let sha = rig.upload_media(&png(name)).await;
        old.push((name, format!("media/{name}.png"), sha));
    }
    let items: Vec<(&str, &str, &str)> = old
        .iter()
        .map(|(id, path, sha)| (*id, path.as_str(), sha.as_str()))
        .collect();
    let v1 = rig.publish("switch", "scr-switch", &items).await;

    let mut agent = Agent::start(config.clone());
    let (first, first_events) = agent.next_play().await;
    assert_eq!(first.manifest_version, v1);
    let first_at = started(&first_events);
    let committed = next_preroll(&mut agent).await;
    assert_eq!(committed.manifest_version, v1);
    let idle = old
        .iter()
        .map(|(_, _, sha)| sha)
        .find(|sha| **sha != first.item.media.sha256 && **sha != committed.item.media.sha256)
        .unwrap()
        .clone();

    // Version 2, another still, activates while `first` is on screen.
    let new_sha = rig.upload_media(&png("new")).await;
    let v2 = rig
        .publish(
            "switch",
            "scr-switch",
            &[("new", "media/new.png", &new_sha)],
        )
        .await;
    let store = ManifestStore::new(&run::manifest_dir(&config));
    eventually(Duration::from_secs(20), "version 2 activated", || async {
        let active = store.load(Slot::Active).unwrap().unwrap();
        (active.manifest.version == v2).then_some(())
    })
    .await;
    // What nobody plays went at once; what is on screen or prerolled stays.
    eventually(Duration::from_secs(10), "the idle file evicted", || async {
        (!first.media_path.with_file_name(&idle).exists()).then_some(())
    })
    .await;
    assert!(first.media_path.exists(), "the file on screen was evicted");
    assert!(
        committed.media_path.exists(),
        "the prerolled file was evicted"
    );

    // The committed play comes next, as promised to the engine.
    finished(&first_events, first_at);
    let (second, second_events) = agent.next_play().await;
    assert_eq!(second.play_id, committed.play_id);
    assert_eq!(second.manifest_version, v1);
    let second_at = started(&second_events);
    // Its successor comes from version 2, prerolled like any other.
    let switch = next_preroll(&mut agent).await;
    assert_eq!(switch.manifest_version, v2);
    assert_eq!(switch.item.media.sha256, new_sha);
    eventually(
        Duration::from_secs(10),
        "the finished file evicted",
        || async { (!first.media_path.exists()).then_some(()) },
    )
    .await;
    assert!(second.media_path.exists(), "the file on screen was evicted");

    finished(&second_events, second_at);
    let (third, third_events) = agent.next_play().await;
    assert_eq!(third.play_id, switch.play_id);
    let third_at = started(&third_events);
    eventually(
        Duration::from_secs(10),
        "the last old file evicted",
        || async { (!second.media_path.exists()).then_some(()) },
    )
    .await;
    assert!(third.media_path.exists());
    finished(&third_events, third_at);
    agent.stop().await;
    rig.server.stop().await;
}
