//! Shared helpers for the agent's tests: sample plays, the screen key,
//! sealing and chain verification.

// Test code: a failed unwrap is the test failing.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use ekran::pop::{Outcome, PlayBody, PlayRecord};
use sha2::{Digest, Sha256};

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

/// Chains `body` after `prev_hash` (stand-in for `pop::seal` until it lands).
pub fn seal(body: PlayBody, prev_hash: &str) -> PlayRecord {
    let hash = record_hash(&body, prev_hash);
    PlayRecord {
        body,
        prev_hash: prev_hash.to_owned(),
        hash,
        signature: String::new(),
    }
}

fn record_hash(body: &PlayBody, prev_hash: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(hex::decode(prev_hash).unwrap());
    hasher.update(serde_json::to_vec(body).unwrap());
    hex::encode(hasher.finalize())
}

/// Asserts `records` form one unbroken chain starting after `anchor`.
pub fn verify_chain_from(records: &[PlayRecord], anchor: (u64, String)) {
    let (mut seq, mut hash) = anchor;
    for record in records {
        assert_eq!(record.body.seq, seq + 1, "gap or reorder in the chain");
        assert_eq!(
            record.prev_hash, hash,
            "record {} does not link",
            record.body.seq
        );
        assert_eq!(
            record.hash,
            record_hash(&record.body, &record.prev_hash),
            "record {} altered",
            record.body.seq
        );
        seq = record.body.seq;
        hash = record.hash.clone();
    }
}
