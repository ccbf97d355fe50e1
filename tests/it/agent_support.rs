//! Shared helpers for the agent's tests: sample plays, the screen key,
//! sealing and chain verification.

use ed25519_dalek::SigningKey;
use ekran::pop::{self, Outcome, PlayBody, PlayRecord};

/// A fixed screen key: tests are reproducible.
pub fn screen_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// The n-th play of a 30-second clip.
pub fn play_body(n: u64) -> PlayBody {
    let started_at_ms = 1_782_460_800_000 + n as i64 * 30_000;
    PlayBody {
        screen_id: "scr-test-1".to_owned(),
        seq: n,
        play_id: format!("play-{n}"),
        item_id: "clip-26-june".to_owned(),
        campaign: "awareness-26-june".to_owned(),
        media_sha256: "5f".repeat(32),
        manifest_version: 3,
        started_at_ms,
        ended_at_ms: started_at_ms + 30_000,
        duration_ms: 30_000,
        frames_presented: 750,
        frames_dropped: 0,
        outcome: Outcome::Completed,
        stale: false,
    }
}

/// Chains `body` after `prev_hash`, signed with [`screen_key`].
pub fn seal(body: PlayBody, prev_hash: &str) -> PlayRecord {
    pop::seal(body, prev_hash, &screen_key()).unwrap()
}

/// Asserts `records` form one unbroken chain of valid signatures by
/// `screen_key` starting after `anchor` (the acknowledged head).
pub fn verify_chain_from(records: &[PlayRecord], anchor: (u64, String), screen_key: &SigningKey) {
    let report = pop::verify_chain(records, &screen_key.verifying_key(), Some(anchor.clone()));
    assert!(
        report.is_clean(),
        "chain after {anchor:?}: {:?}",
        report.findings
    );
    assert_eq!(
        report.highest_contiguous,
        records.last().map_or(anchor.0, |record| record.body.seq)
    );
}
