//! Proof-of-play records (SPEC §6): one signed, hash-chained record per
//! play, made on the screen box and verified by the server and by auditors.
//!
//! This module owns the record, its canonical bytes, the hash chain, the
//! screen-key signature and the chain verifier.

use serde::{Deserialize, Serialize};

/// `prev_hash` of a screen's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a play ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Played to its end (or its duration for stills).
    Completed,
    /// Cut short: power loss, kill, pre-emption; `ended_at` is the last presented frame.
    Interrupted,
    /// Could not be played (decoder error, stall, missing media).
    Failed,
}

/// The fields a record's hash covers: everything except `prev_hash`, `hash`
/// and `signature`. Serialised as compact JSON in this field order, which is
/// the record's canonical byte form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayBody {
    /// The screen that played it.
    pub screen_id: String,
    /// Contiguous per screen, starting at 1.
    pub seq: u64,
    /// Random id of this play.
    pub play_id: String,
    /// Manifest item id.
    pub item_id: String,
    /// Campaign credited with the airtime.
    pub campaign: String,
    /// SHA-256 of the media that was shown.
    pub media_sha256: String,
    /// Manifest version the item came from.
    pub manifest_version: u64,
    /// First presented frame, UTC milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// Last presented frame (or the cut), UTC milliseconds.
    pub ended_at_ms: i64,
    /// `ended_at_ms - started_at_ms`, stored so reports need no arithmetic.
    pub duration_ms: u64,
    /// Frames that reached the screen.
    pub frames_presented: u64,
    /// Frames decoded too late and skipped.
    pub frames_dropped: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The player was past its manifest's expiry when this played.
    pub stale: bool,
}

/// A chained, signed proof-of-play record as stored and uploaded.
///
/// Read through [`PlayRecordWire`], the same fields flat: serde's
/// `flatten` buffers every field of every record before building the body,
/// which made parsing a server's upload batch about twice as slow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PlayRecordWire")]
pub struct PlayRecord {
    /// The signed content.
    #[serde(flatten)]
    pub body: PlayBody,
    /// Lowercase hex hash of the previous record ([`GENESIS_HASH`] for seq 1).
    pub prev_hash: String,
    /// Lowercase hex SHA-256 over `prev_hash` (32 raw bytes) followed by the canonical body bytes.
    pub hash: String,
    /// Base64 Ed25519 signature by the screen key over the record's hash.
    pub signature: String,
}

/// [`PlayRecord`]'s JSON object read in one pass: the body's fields and the
/// chain fields side by side. Field for field the same as [`PlayBody`]
/// (with `deny_unknown_fields`) plus the three chain fields; the
/// `wire_form_reads_what_the_record_writes` test holds the two together.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayRecordWire {
    screen_id: String,
    seq: u64,
    play_id: String,
    item_id: String,
    campaign: String,
    media_sha256: String,
    manifest_version: u64,
    started_at_ms: i64,
    ended_at_ms: i64,
    duration_ms: u64,
    frames_presented: u64,
    frames_dropped: u64,
    outcome: Outcome,
    stale: bool,
    prev_hash: String,
    hash: String,
    signature: String,
}

impl From<PlayRecordWire> for PlayRecord {
    fn from(wire: PlayRecordWire) -> Self {
        PlayRecord {
            body: PlayBody {
                screen_id: wire.screen_id,
                seq: wire.seq,
                play_id: wire.play_id,
                item_id: wire.item_id,
                campaign: wire.campaign,
                media_sha256: wire.media_sha256,
                manifest_version: wire.manifest_version,
                started_at_ms: wire.started_at_ms,
                ended_at_ms: wire.ended_at_ms,
                duration_ms: wire.duration_ms,
                frames_presented: wire.frames_presented,
                frames_dropped: wire.frames_dropped,
                outcome: wire.outcome,
                stale: wire.stale,
            },
            prev_hash: wire.prev_hash,
            hash: wire.hash,
            signature: wire.signature,
        }
    }
}

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Prefix of every message a screen key signs for a record, so that a
/// proof-of-play signature can never be replayed as a signature over
/// anything else the same key signs (requests, enrollment).
pub const SIGNATURE_DOMAIN: &[u8] = b"ekran.pop.v1\0";

/// `format` of an auditor's export ([`AuditBundle`]).
pub const AUDIT_FORMAT: &str = "ekran-pop-audit/1";

/// Why a single record failed to verify, or an export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PopError {
    /// A hash field is not 64 lowercase hex digits.
    #[error("{field} {value:?} is not a SHA-256 hash: expected 64 lowercase hex digits")]
    MalformedHash {
        /// Which field (`prev_hash`, `hash`).
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// The stored hash does not match the body and `prev_hash`.
    #[error(
        "record seq {seq}: stored hash {stored} differs from the recomputed {computed}; \
         the record was altered after it was sealed"
    )]
    HashMismatch {
        /// The record's seq.
        seq: u64,
        /// The `hash` field as stored.
        stored: String,
        /// The hash of the stored body and `prev_hash`.
        computed: String,
    },
    /// The signature field is not base64 of 64 bytes.
    #[error("record seq {seq}: signature is not base64 of a 64-byte Ed25519 signature")]
    MalformedSignature {
        /// The record's seq.
        seq: u64,
    },
    /// The signature does not verify (strictly) with the screen key.
    #[error("record seq {seq}: signature does not verify with the screen's public key")]
    BadSignature {
        /// The record's seq.
        seq: u64,
    },
    /// The export is not JSON of the expected shape.
    #[error("malformed proof-of-play export: {0}")]
    MalformedBundle(#[source] serde_json::Error),
    /// The export declares a format this version does not read.
    #[error("unsupported export format {found:?}: this ekran reads {AUDIT_FORMAT:?}")]
    UnsupportedFormat {
        /// The `format` field found.
        found: String,
    },
}

/// Parses a lowercase hex SHA-256 into its 32 raw bytes. Uppercase is
/// refused so that every hash has exactly one text form and the chain can be
/// compared as strings.
fn parse_hash(field: &'static str, value: &str) -> Result<[u8; 32], PopError> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    let malformed = || PopError::MalformedHash {
        field,
        value: value.to_owned(),
    };
    if value.len() != 64 {
        return Err(malformed());
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(value.as_bytes().chunks_exact(2)) {
        let (Some(high), Some(low)) = (nibble(pair[0]), nibble(pair[1])) else {
            return Err(malformed());
        };
        *byte = high << 4 | low;
    }
    Ok(bytes)
}

impl PlayBody {
    /// The canonical byte form the hash covers: compact JSON, fields in
    /// declaration order, no whitespace.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_canonical(&mut bytes);
        bytes
    }

    /// Appends [`canonical_bytes`](Self::canonical_bytes) to `out`.
    fn write_canonical(&self, out: &mut Vec<u8>) {
        // Only strings, integers, booleans and a unit enum: serialisation cannot fail.
        serde_json::to_writer(out, self).expect("a PlayBody always serialises to JSON");
    }
}

/// The record hash: lowercase hex SHA-256 over the 32 raw bytes of
/// `prev_hash` followed by the body's canonical bytes.
pub fn record_hash(prev_hash: &str, body: &PlayBody) -> Result<String, PopError> {
    let prev = parse_hash("prev_hash", prev_hash)?;
    Ok(hex::encode(record_digest(&prev, body, &mut Vec::new())))
}

/// SHA-256 over the 32 raw bytes of `prev` and the canonical bytes of
/// `body`, which are written into `scratch` (reused across records).
fn record_digest(prev: &[u8; 32], body: &PlayBody, scratch: &mut Vec<u8>) -> [u8; 32] {
    scratch.clear();
    body.write_canonical(scratch);
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(&scratch[..]);
    hasher.finalize().into()
}

/// Length of the message a record's signature covers.
const SIGNED_MESSAGE_LEN: usize = SIGNATURE_DOMAIN.len() + 32;

/// The message the screen key signs: [`SIGNATURE_DOMAIN`] then the 32 raw hash bytes.
fn signed_message(hash: &[u8; 32]) -> [u8; SIGNED_MESSAGE_LEN] {
    let mut message = [0u8; SIGNED_MESSAGE_LEN];
    message[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
    message[SIGNATURE_DOMAIN.len()..].copy_from_slice(hash);
    message
}

/// Chains `body` after `prev_hash` and signs it with the screen key.
pub fn seal(body: PlayBody, prev_hash: &str, key: &SigningKey) -> Result<PlayRecord, PopError> {
    let prev = parse_hash("prev_hash", prev_hash)?;
    let hash = record_digest(&prev, &body, &mut Vec::new());
    let signature = key.sign(&signed_message(&hash));
    Ok(PlayRecord {
        body,
        prev_hash: prev_hash.to_owned(),
        hash: hex::encode(hash),
        signature: BASE64.encode(signature.to_bytes()),
    })
}

impl PlayRecord {
    /// Checks the record on its own: the hash matches the body and
    /// `prev_hash`, and the signature verifies strictly (weak keys and
    /// non-canonical signatures rejected) with the screen's key (a
    /// [`VerifyingKey`]; the server checks many records of one screen at
    /// once through its prepared key, with the same decisions).
    pub fn verify(&self, key: &impl StrictVerifier) -> Result<(), PopError> {
        self.verify_hash()?;
        self.verify_signature(key)
    }

    /// Checks that `hash` is the hash of `prev_hash` and the body, and
    /// returns its raw bytes (what the signature covers). `scratch` holds
    /// the canonical bytes while they are hashed.
    fn verify_hash_with(&self, scratch: &mut Vec<u8>) -> Result<[u8; 32], PopError> {
        let stored = parse_hash("hash", &self.hash)?;
        let prev = parse_hash("prev_hash", &self.prev_hash)?;
        let computed = record_digest(&prev, &self.body, scratch);
        if computed != stored {
            return Err(PopError::HashMismatch {
                seq: self.body.seq,
                stored: self.hash.clone(),
                computed: hex::encode(computed),
            });
        }
        Ok(stored)
    }

    fn verify_hash(&self) -> Result<(), PopError> {
        self.verify_hash_with(&mut Vec::new()).map(|_| ())
    }

    fn verify_signature(&self, key: &impl StrictVerifier) -> Result<(), PopError> {
        let hash = parse_hash("hash", &self.hash)?;
        let (message, signature) = self.signed_parts(&hash)?;
        if key.verifies_strictly(&message, &signature) {
            Ok(())
        } else {
            Err(PopError::BadSignature { seq: self.body.seq })
        }
    }

    /// The message the signature must cover (for the record's raw `hash`)
    /// and the signature, decoded.
    fn signed_parts(
        &self,
        hash: &[u8; 32],
    ) -> Result<([u8; SIGNED_MESSAGE_LEN], Signature), PopError> {
        let malformed = || PopError::MalformedSignature { seq: self.body.seq };
        // Room for what 88 base64 characters may decode to; exactly 64 must come out.
        let mut raw = [0u8; 66];
        let len = BASE64
            .decode_slice(&self.signature, &mut raw)
            .map_err(|_| malformed())?;
        let raw: [u8; 64] = raw[..len].try_into().map_err(|_| malformed())?;
        Ok((signed_message(hash), Signature::from_bytes(&raw)))
    }
}

/// [`PlayRecord::verify`] for many records of one screen at once: the same
/// result for each record, in order, with the signatures checked as one
/// batch (one field inversion for all of them).
#[cfg(feature = "server")]
pub fn verify_records(
    records: &[PlayRecord],
    key: &crate::prepared_key::PreparedKey,
) -> Vec<Result<(), PopError>> {
    let mut results = Vec::with_capacity(records.len());
    let mut signed = Vec::with_capacity(records.len());
    let mut scratch = Vec::with_capacity(512);
    for (index, record) in records.iter().enumerate() {
        match record
            .verify_hash_with(&mut scratch)
            .and_then(|hash| record.signed_parts(&hash))
        {
            Ok(parts) => {
                signed.push((index, parts));
                results.push(Ok(()));
            }
            Err(error) => results.push(Err(error)),
        }
    }
    let items: Vec<(&[u8], &Signature)> = signed
        .iter()
        .map(|(_, (message, signature))| (message.as_slice(), signature))
        .collect();
    for ((index, _), verified) in signed.iter().zip(key.verify_strict_batch(&items)) {
        if !verified {
            results[*index] = Err(PopError::BadSignature {
                seq: records[*index].body.seq,
            });
        }
    }
    results
}

/// A screen key that checks Ed25519 signatures the strict way
/// (`verify_strict`: canonical `s`, no small-order key or `R`).
pub trait StrictVerifier {
    /// Whether `signature` is a strictly valid signature of `message`.
    fn verifies_strictly(&self, message: &[u8], signature: &Signature) -> bool;
}

impl StrictVerifier for VerifyingKey {
    fn verifies_strictly(&self, message: &[u8], signature: &Signature) -> bool {
        self.verify_strict(message, signature).is_ok()
    }
}

/// One problem the chain verifier found. Each kind is distinct so that a
/// server or auditor can tell missing records from tampered ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// Records `after + 1 ..= next - 1` are missing.
    Gap {
        /// Last seq present before the hole (0 or the anchor when the hole is at the start).
        after: u64,
        /// First seq present after the hole.
        next: u64,
    },
    /// Two or more different records claim the same seq.
    Fork {
        /// The contested seq.
        seq: u64,
        /// The distinct hashes found at that seq (sorted).
        hashes: Vec<String>,
    },
    /// The input lists a record after one with a higher or equal seq.
    Reordered {
        /// Index of the record in the input.
        position: usize,
        /// Its seq.
        seq: u64,
        /// The highest seq listed before it.
        after_seq: u64,
    },
    /// The record's `prev_hash` is not the hash of the record before it.
    BrokenLink {
        /// The record whose link is broken.
        seq: u64,
        /// The `prev_hash` it carries.
        prev_hash: String,
    },
    /// The hash is malformed or does not match the record's content.
    BadHash {
        /// The record.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The signature is malformed or does not verify with the screen key.
    BadSignature {
        /// The record.
        seq: u64,
    },
    /// A record at or below the chain's starting point that cannot be placed
    /// in it (seq 0, or below the anchor).
    BeforeStart {
        /// The record.
        seq: u64,
        /// The chain's starting seq (0, or the anchor's).
        start: u64,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Gap { after, next } if next - after == 2 => {
                write!(f, "gap: record {} is missing", after + 1)
            }
            Finding::Gap { after, next } => {
                write!(f, "gap: records {}..={} are missing", after + 1, next - 1)
            }
            Finding::Fork { seq, hashes } => write!(
                f,
                "fork: {} different records claim seq {seq} ({})",
                hashes.len(),
                hashes.join(", ")
            ),
            Finding::Reordered {
                position,
                seq,
                after_seq,
            } => write!(
                f,
                "reordered: record seq {seq} (entry {position}) comes after seq {after_seq}"
            ),
            Finding::BrokenLink { seq, prev_hash } => write!(
                f,
                "broken link: record seq {seq} has prev_hash {prev_hash}, which is not the hash of record {}",
                seq.saturating_sub(1)
            ),
            Finding::BadHash { seq, detail } => {
                write!(f, "bad hash: record seq {seq}: {detail}")
            }
            Finding::BadSignature { seq } => write!(
                f,
                "bad signature: record seq {seq} is not signed by this screen's key"
            ),
            Finding::BeforeStart { seq, start } => write!(
                f,
                "record seq {seq} lies at or before the chain start {start} and cannot be linked"
            ),
        }
    }
}

/// What [`verify_chain`] concluded about one screen's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Records examined (including duplicates).
    pub records: usize,
    /// Seqs whose record has a correct hash and signature, is the only
    /// record at its seq, and links to its predecessor when that is present.
    pub verified_seqs: Vec<u64>,
    /// Highest seq up to which the chain is complete and verified from the
    /// start (genesis or anchor); the start itself when nothing follows it.
    pub highest_contiguous: u64,
    /// Everything wrong, in seq order within each kind of check.
    pub findings: Vec<Finding>,
}

impl ChainReport {
    /// True when every record verified and nothing is missing, forked or out of order.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies one screen's records as a chain.
///
/// `records` are taken in the order given (a record listed after a higher
/// seq is reported as [`Finding::Reordered`], then placed by its seq).
/// Exact duplicates (the same record uploaded twice) are benign and merged.
/// The chain starts at genesis (seq 0, [`GENESIS_HASH`]) or, with `anchor`,
/// at an already acknowledged `(seq, hash)`: the next record must link to it.
pub fn verify_chain(
    records: &[PlayRecord],
    key: &VerifyingKey,
    anchor: Option<(u64, String)>,
) -> ChainReport {
    let mut report = ChainReport {
        records: records.len(),
        ..ChainReport::default()
    };
    let (start_seq, start_hash) = anchor.unwrap_or((0, GENESIS_HASH.to_owned()));

    // Input order.
    let mut highest_listed: Option<u64> = None;
    for (position, record) in records.iter().enumerate() {
        let seq = record.body.seq;
        match highest_listed {
            Some(after_seq) if seq <= after_seq && !is_repeat(records, position) => {
                report.findings.push(Finding::Reordered {
                    position,
                    seq,
                    after_seq,
                });
            }
            _ => {}
        }
        highest_listed = Some(highest_listed.map_or(seq, |h| h.max(seq)));
    }

    // Each record on its own; distinct records grouped by seq.
    let mut by_seq: BTreeMap<u64, Vec<&PlayRecord>> = BTreeMap::new();
    let mut sound: BTreeSet<(u64, &str)> = BTreeSet::new();
    for record in records {
        let variants = by_seq.entry(record.body.seq).or_default();
        if variants.contains(&record) {
            continue;
        }
        variants.push(record);
        let seq = record.body.seq;
        let hash_ok = match record.verify_hash() {
            Ok(()) => true,
            Err(error) => {
                let detail = match error {
                    PopError::HashMismatch {
                        stored, computed, ..
                    } => format!(
                        "stored {stored} but the content hashes to {computed}; \
                         the record was altered after it was sealed"
                    ),
                    other => other.to_string(),
                };
                report.findings.push(Finding::BadHash { seq, detail });
                false
            }
        };
        let signature_ok = match record.verify_signature(key) {
            Ok(()) => true,
            Err(PopError::MalformedHash { .. }) => false, // already reported as BadHash
            Err(_) => {
                report.findings.push(Finding::BadSignature { seq });
                false
            }
        };
        if hash_ok && signature_ok {
            sound.insert((seq, record.hash.as_str()));
        }
    }

    // Forks, including a record that contradicts the anchor.
    for (&seq, variants) in &by_seq {
        let mut hashes: BTreeSet<&str> = variants.iter().map(|r| r.hash.as_str()).collect();
        if seq == start_seq && anchor_given(start_seq, &start_hash) {
            hashes.insert(start_hash.as_str());
        }
        if hashes.len() > 1 {
            report.findings.push(Finding::Fork {
                seq,
                hashes: hashes.into_iter().map(str::to_owned).collect(),
            });
        }
    }

    // Links and gaps, walking up from the start.
    let mut previous_seq = start_seq;
    let mut previous_hashes: Vec<&str> = vec![start_hash.as_str()];
    let mut contiguous = true;
    report.highest_contiguous = start_seq;
    for (&seq, variants) in &by_seq {
        if seq <= start_seq {
            // A re-sent copy of the anchor record is fine and a different one is
            // already a fork; anything lower cannot be placed in this chain.
            if seq < start_seq || seq == 0 {
                report.findings.push(Finding::BeforeStart {
                    seq,
                    start: start_seq,
                });
            }
            continue;
        }
        let after_gap = seq != previous_seq + 1;
        if after_gap {
            report.findings.push(Finding::Gap {
                after: previous_seq,
                next: seq,
            });
            contiguous = false;
        }
        let mut links_ok = true;
        for record in variants {
            if !after_gap && !previous_hashes.contains(&record.prev_hash.as_str()) {
                report.findings.push(Finding::BrokenLink {
                    seq,
                    prev_hash: record.prev_hash.clone(),
                });
                links_ok = false;
            }
        }
        let single = variants.len() == 1;
        let verified = single && links_ok && sound.contains(&(seq, variants[0].hash.as_str()));
        if verified {
            report.verified_seqs.push(seq);
        }
        contiguous = contiguous && verified;
        if contiguous {
            report.highest_contiguous = seq;
        }
        previous_seq = seq;
        previous_hashes = variants.iter().map(|r| r.hash.as_str()).collect();
    }
    report
}

/// True when the record at `position` repeats, byte for byte, one listed earlier:
/// a re-upload, not a reordering.
fn is_repeat(records: &[PlayRecord], position: usize) -> bool {
    records[..position].contains(&records[position])
}

/// True when the chain start is a real anchor rather than genesis.
fn anchor_given(start_seq: u64, start_hash: &str) -> bool {
    start_seq != 0 || start_hash != GENESIS_HASH
}

/// An auditor's export (SPEC §7): signed records with the chain and the
/// public keys of the screens that made them, verifiable offline with
/// `ekran pop verify FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditBundle {
    /// Always [`AUDIT_FORMAT`].
    pub format: String,
    /// The screens whose records are included, with their public keys.
    pub screens: Vec<AuditScreen>,
    /// The records, in any order; grouped by `screen_id` for verification.
    pub records: Vec<PlayRecord>,
}

/// A screen as it appears in an [`AuditBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditScreen {
    /// The screen id its records carry.
    pub screen_id: String,
    /// The screen's Ed25519 public key, SubjectPublicKeyInfo PEM.
    pub public_key_pem: String,
    /// Seq and hash of the last record before the export's first one, when
    /// the export starts mid-chain (a date range); absent: from genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<ChainAnchor>,
}

/// An acknowledged point in a chain that later records link to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainAnchor {
    /// Seq of the anchor record.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl AuditBundle {
    /// Parses an export, refusing formats this version does not know.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PopError> {
        #[derive(Deserialize)]
        struct FormatOnly {
            format: String,
        }
        // Check the format first so a future layout gets a clear message,
        // not a confusing field error.
        let probe: FormatOnly = serde_json::from_slice(bytes).map_err(PopError::MalformedBundle)?;
        if probe.format != AUDIT_FORMAT {
            return Err(PopError::UnsupportedFormat {
                found: probe.format,
            });
        }
        serde_json::from_slice(bytes).map_err(PopError::MalformedBundle)
    }
}

/// Airtime credited to one campaign on one screen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CampaignAirtime {
    /// The campaign.
    pub campaign: String,
    /// Verified plays (any outcome).
    pub plays: u64,
    /// Verified plays that ran to their end.
    pub completed_plays: u64,
    /// Sum of `duration_ms` over verified plays.
    pub airtime_ms: u64,
    /// Plays whose records did not verify; not included above.
    pub unverified_plays: u64,
    /// Sum of `duration_ms` over unverified plays.
    pub unverified_airtime_ms: u64,
}

/// The audit of one screen's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenAudit {
    /// The screen.
    pub screen_id: String,
    /// Why the screen's key could not be used, if so (then nothing verifies).
    pub key_error: Option<String>,
    /// The chain verification.
    pub chain: ChainReport,
    /// Airtime per campaign, sorted by campaign.
    pub airtime: Vec<CampaignAirtime>,
}

/// Problems with the export itself rather than with one screen's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BundleProblem {
    /// Records name a screen the export lists no key for.
    UnknownScreen {
        /// The screen id on the records.
        screen_id: String,
        /// How many records name it.
        records: usize,
    },
    /// A screen is listed twice.
    DuplicateScreen {
        /// The screen id.
        screen_id: String,
    },
}

impl fmt::Display for BundleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleProblem::UnknownScreen { screen_id, records } => write!(
                f,
                "{records} record(s) name screen {screen_id:?}, which the export lists no public key for"
            ),
            BundleProblem::DuplicateScreen { screen_id } => {
                write!(f, "screen {screen_id:?} is listed more than once")
            }
        }
    }
}

/// What [`verify_bundle`] concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// One entry per listed screen, in the export's order.
    pub screens: Vec<ScreenAudit>,
    /// Problems with the export as a whole.
    pub problems: Vec<BundleProblem>,
}

impl AuditReport {
    /// True when every record of every screen verified with no finding and
    /// the export itself has no problem.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
            && self
                .screens
                .iter()
                .all(|s| s.key_error.is_none() && s.chain.is_clean())
    }
}

/// Verifies every screen's chain in an export and totals airtime from the
/// records that verified.
pub fn verify_bundle(bundle: &AuditBundle) -> AuditReport {
    let mut problems = Vec::new();
    let mut records_by_screen: BTreeMap<&str, Vec<PlayRecord>> = BTreeMap::new();
    for record in &bundle.records {
        records_by_screen
            .entry(record.body.screen_id.as_str())
            .or_default()
            .push(record.clone());
    }
    let mut seen = BTreeSet::new();
    let mut screens = Vec::new();
    for screen in &bundle.screens {
        if !seen.insert(screen.screen_id.as_str()) {
            problems.push(BundleProblem::DuplicateScreen {
                screen_id: screen.screen_id.clone(),
            });
            continue;
        }
        let records = records_by_screen
            .remove(screen.screen_id.as_str())
            .unwrap_or_default();
        screens.push(audit_screen(screen, &records));
    }
    for (screen_id, records) in records_by_screen {
        problems.push(BundleProblem::UnknownScreen {
            screen_id: screen_id.to_owned(),
            records: records.len(),
        });
    }
    AuditReport { screens, problems }
}

fn audit_screen(screen: &AuditScreen, records: &[PlayRecord]) -> ScreenAudit {
    let anchor = screen
        .anchor
        .as_ref()
        .map(|anchor| (anchor.seq, anchor.hash.clone()));
    let (chain, key_error) = match crate::keys::verifying_key_from_pem(&screen.public_key_pem) {
        Ok(key) => (verify_chain(records, &key, anchor), None),
        Err(error) => (
            ChainReport {
                records: records.len(),
                ..ChainReport::default()
            },
            Some(format!(
                "public key of screen {:?} is unusable: {error}",
                screen.screen_id
            )),
        ),
    };
    let verified: BTreeSet<u64> = chain.verified_seqs.iter().copied().collect();
    let mut airtime: BTreeMap<&str, CampaignAirtime> = BTreeMap::new();
    let mut counted = BTreeSet::new();
    for record in records {
        // A re-sent duplicate is one play, not two.
        if !counted.insert((record.body.seq, record.hash.as_str())) {
            continue;
        }
        let body = &record.body;
        let entry = airtime
            .entry(body.campaign.as_str())
            .or_insert_with(|| CampaignAirtime {
                campaign: body.campaign.clone(),
                ..CampaignAirtime::default()
            });
        if verified.contains(&body.seq) {
            entry.plays += 1;
            entry.airtime_ms += body.duration_ms;
            if body.outcome == Outcome::Completed {
                entry.completed_plays += 1;
            }
        } else {
            entry.unverified_plays += 1;
            entry.unverified_airtime_ms += body.duration_ms;
        }
    }
    ScreenAudit {
        screen_id: screen.screen_id.clone(),
        key_error,
        chain,
        airtime: airtime.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn screen_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn body(seq: u64) -> PlayBody {
        PlayBody {
            screen_id: "dushanbe-mall-01".into(),
            seq,
            play_id: format!("play-{seq}"),
            item_id: "clip-26-june".into(),
            campaign: "Drug-free June".into(),
            media_sha256: "ab".repeat(32),
            manifest_version: 12,
            started_at_ms: 1_782_000_000_000 + seq as i64 * 30_000,
            ended_at_ms: 1_782_000_000_000 + seq as i64 * 30_000 + 29_960,
            duration_ms: 29_960,
            frames_presented: 749,
            frames_dropped: 1,
            outcome: Outcome::Completed,
            stale: false,
        }
    }

    /// Records 1..=n, each sealed after the previous.
    fn chain(n: u64) -> Vec<PlayRecord> {
        let key = screen_key();
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let record = seal(body(seq), &prev, &key).unwrap();
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    /// The batch path (through a prepared key) decides every record
    /// exactly as the one-by-one path does, errors included.
    #[cfg(feature = "server")]
    #[test]
    fn batch_verification_matches_one_by_one() {
        let mut records = chain(40);
        records[3].signature = "not base64!".into();
        records[5].body.duration_ms += 1;
        records[7].hash = "zz".into();
        records[9].signature = records[10].signature.clone();
        let key = screen_key().verifying_key();
        let batch = verify_records(&records, &crate::prepared_key::PreparedKey::new(&key));
        let one_by_one: Vec<_> = records.iter().map(|r| r.verify(&key)).collect();
        let text = |results: &[Result<(), PopError>]| -> Vec<String> {
            results.iter().map(|r| format!("{r:?}")).collect()
        };
        assert_eq!(text(&batch), text(&one_by_one));
        assert_eq!(batch.iter().filter(|r| r.is_ok()).count(), 36);
        assert!(matches!(batch[9], Err(PopError::BadSignature { seq: 10 })));
    }

    fn verify(records: &[PlayRecord]) -> ChainReport {
        verify_chain(records, &screen_key().verifying_key(), None)
    }

    /// The flat wire form reads back every record as written, needs each
    /// of the written fields, and refuses any other.
    #[test]
    fn wire_form_reads_what_the_record_writes() {
        let record = chain(2).pop().unwrap();
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<PlayRecord>(&text).unwrap(), record);
        let serde_json::Value::Object(fields) = serde_json::to_value(&record).unwrap() else {
            panic!("a record writes a JSON object");
        };
        assert_eq!(fields.len(), 17);
        for name in fields.keys() {
            let mut missing = fields.clone();
            missing.remove(name);
            let error = serde_json::from_value::<PlayRecord>(missing.into())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("missing field `{name}`")),
                "{error}"
            );
        }
        let mut extra = fields.clone();
        extra.insert("airtime_bonus".into(), 1.into());
        let error = serde_json::from_value::<PlayRecord>(extra.into())
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `airtime_bonus`"), "{error}");
    }

    #[test]
    fn canonical_bytes_are_compact_json_in_field_order() {
        let text = String::from_utf8(body(3).canonical_bytes()).unwrap();
        let expected = concat!(
            r#"{"screen_id":"dushanbe-mall-01","seq":3,"play_id":"play-3","#,
            r#""item_id":"clip-26-june","campaign":"Drug-free June","#,
            r#""media_sha256":"abababababababababababababababababababababababababababababababab","#,
            r#""manifest_version":12,"started_at_ms":1782000090000,"ended_at_ms":1782000119960,"#,
            r#""duration_ms":29960,"frames_presented":749,"frames_dropped":1,"#,
            r#""outcome":"completed","stale":false}"#
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn hash_covers_raw_prev_hash_bytes_then_body() {
        let b = body(1);
        let mut hasher = Sha256::new();
        hasher.update([0u8; 32]);
        hasher.update(b.canonical_bytes());
        assert_eq!(
            record_hash(GENESIS_HASH, &b).unwrap(),
            hex::encode(hasher.finalize())
        );
    }

    #[test]
    fn signature_is_over_domain_and_hash() {
        let record = &chain(1)[0];
        let hash: [u8; 32] = hex::decode(&record.hash).unwrap().try_into().unwrap();
        let mut message = b"ekran.pop.v1\0".to_vec();
        message.extend_from_slice(&hash);
        let signature: [u8; 64] = BASE64
            .decode(&record.signature)
            .unwrap()
            .try_into()
            .unwrap();
        screen_key()
            .verifying_key()
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .unwrap();
    }

    #[test]
    fn uppercase_or_short_prev_hash_is_refused() {
        assert!(matches!(
            record_hash(&GENESIS_HASH.replace('0', "A"), &body(1)),
            Err(PopError::MalformedHash {
                field: "prev_hash",
                ..
            })
        ));
        assert!(seal(body(1), "00", &screen_key()).is_err());
    }

    #[test]
    fn a_hash_is_64_lowercase_hex_digits_and_nothing_else() {
        let hash = "0123456789abcdef".repeat(4);
        assert_eq!(
            parse_hash("hash", &hash).unwrap().to_vec(),
            hex::decode(&hash).unwrap()
        );
        // Every byte value in every position: accepted exactly when it is a
        // lowercase hex digit, and then decoded as one.
        for position in 0..64 {
            for byte in 0..=255u8 {
                let mut text = hash.clone().into_bytes();
                text[position] = byte;
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                let parsed = parse_hash("hash", &text);
                if byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase() {
                    assert_eq!(parsed.unwrap().to_vec(), hex::decode(&text).unwrap());
                } else {
                    assert!(
                        matches!(parsed, Err(PopError::MalformedHash { field: "hash", .. })),
                        "{text:?}"
                    );
                }
            }
        }
        for length in [0, 63, 65, 128] {
            assert!(parse_hash("hash", &"a".repeat(length)).is_err());
        }
    }

    #[test]
    fn sealed_record_verifies_and_round_trips_through_json() {
        let record = &chain(1)[0];
        let json = serde_json::to_string(record).unwrap();
        let back: PlayRecord = serde_json::from_str(&json).unwrap();
        back.verify(&screen_key().verifying_key()).unwrap();
    }

    #[test]
    fn other_key_is_a_bad_signature() {
        let record = &chain(1)[0];
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert!(matches!(
            record.verify(&other),
            Err(PopError::BadSignature { seq: 1 })
        ));
    }

    #[test]
    fn clean_chain_has_no_findings() {
        let report = verify(&chain(5));
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.verified_seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(report.highest_contiguous, 5);
    }

    #[test]
    fn empty_chain_is_clean_at_genesis() {
        let report = verify(&[]);
        assert!(report.is_clean());
        assert_eq!(report.highest_contiguous, 0);
    }

    #[test]
    fn missing_record_is_a_gap_only() {
        let mut records = chain(5);
        records.remove(2);
        let report = verify(&records);
        assert_eq!(report.findings, vec![Finding::Gap { after: 2, next: 4 }]);
        assert_eq!(report.highest_contiguous, 2);
        // Records after the hole are still individually vouched for.
        assert_eq!(report.verified_seqs, vec![1, 2, 4, 5]);
    }

    #[test]
    fn missing_first_record_is_a_gap_from_genesis() {
        let records = chain(3)[1..].to_vec();
        let report = verify(&records);
        assert_eq!(report.findings, vec![Finding::Gap { after: 0, next: 2 }]);
        assert_eq!(report.highest_contiguous, 0);
    }

    #[test]
    fn two_records_with_one_seq_are_a_fork() {
        let mut records = chain(3);
        let mut other = body(2);
        other.item_id = "poster-day-14".into();
        let forged = seal(other, &records[0].hash, &screen_key()).unwrap();
        let forged_hash = forged.hash.clone();
        records.insert(2, forged);
        let report = verify(&records);
        let mut hashes = vec![records[1].hash.clone(), forged_hash];
        hashes.sort();
        assert!(
            report.findings.contains(&Finding::Fork { seq: 2, hashes }),
            "{:?}",
            report.findings
        );
        assert!(
            !report
                .findings
                .iter()
                .any(|f| matches!(f, Finding::BadSignature { .. }))
        );
        assert_eq!(report.highest_contiguous, 1);
        assert!(!report.verified_seqs.contains(&2));
    }

    #[test]
    fn exact_duplicate_is_not_a_fork() {
        let mut records = chain(3);
        records.push(records[1].clone());
        let report = verify(&records);
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.highest_contiguous, 3);
    }

    #[test]
    fn out_of_order_input_is_reordered_but_chain_still_verifies() {
        let mut records = chain(4);
        records.swap(1, 2);
        let report = verify(&records);
        assert_eq!(
            report.findings,
            vec![Finding::Reordered {
                position: 2,
                seq: 2,
                after_seq: 3
            }]
        );
        assert_eq!(report.highest_contiguous, 4);
    }

    #[test]
    fn wrong_prev_hash_is_a_broken_link() {
        let mut records = chain(3);
        // Re-sealed, so hash and signature are valid, but it links to the wrong record.
        records[2] = seal(body(3), GENESIS_HASH, &screen_key()).unwrap();
        let report = verify(&records);
        assert_eq!(
            report.findings,
            vec![Finding::BrokenLink {
                seq: 3,
                prev_hash: GENESIS_HASH.into()
            }]
        );
        assert_eq!(report.highest_contiguous, 2);
    }

    #[test]
    fn edited_body_is_a_bad_hash() {
        let mut records = chain(3);
        records[1].body.duration_ms *= 10;
        let report = verify(&records);
        assert!(
            matches!(
                report.findings.as_slice(),
                [Finding::BadHash { seq: 2, .. }]
            ),
            "{:?}",
            report.findings
        );
        assert_eq!(report.highest_contiguous, 1);
    }

    #[test]
    fn edited_body_with_recomputed_hash_is_a_bad_signature() {
        let mut records = chain(3);
        records[1].body.duration_ms *= 10;
        records[1].hash = record_hash(&records[1].prev_hash, &records[1].body).unwrap();
        let report = verify(&records);
        // The next record still points at the original hash, so its link breaks too.
        assert!(report.findings.contains(&Finding::BadSignature { seq: 2 }));
        assert!(report.findings.contains(&Finding::BrokenLink {
            seq: 3,
            prev_hash: chain(3)[1].hash.clone()
        }));
        assert!(
            !report
                .findings
                .iter()
                .any(|f| matches!(f, Finding::BadHash { .. }))
        );
    }

    #[test]
    fn anchor_continues_a_chain_mid_way() {
        let records = chain(6);
        let anchor = Some((3, records[2].hash.clone()));
        let key = screen_key().verifying_key();
        let report = verify_chain(&records[3..], &key, anchor.clone());
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.highest_contiguous, 6);
        // A re-sent anchor record is fine; an older one cannot be placed.
        let report = verify_chain(&records[2..], &key, anchor.clone());
        assert!(report.is_clean(), "{:?}", report.findings);
        let report = verify_chain(&records[1..], &key, anchor);
        assert_eq!(
            report.findings,
            vec![Finding::BeforeStart { seq: 2, start: 3 }]
        );
    }

    #[test]
    fn record_contradicting_the_anchor_is_a_fork_and_breaks_the_link() {
        let records = chain(4);
        let key = screen_key().verifying_key();
        let wrong_anchor = "cd".repeat(32);
        let report = verify_chain(&records[2..], &key, Some((3, wrong_anchor.clone())));
        assert!(
            report
                .findings
                .iter()
                .any(|f| matches!(f, Finding::Fork { seq: 3, .. }))
        );
        let report = verify_chain(&records[3..], &key, Some((3, wrong_anchor)));
        assert!(matches!(
            report.findings.as_slice(),
            [Finding::BrokenLink { seq: 4, .. }]
        ));
        assert_eq!(report.highest_contiguous, 3);
    }

    fn bundle(records: Vec<PlayRecord>) -> AuditBundle {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let pem = screen_key()
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap();
        AuditBundle {
            format: AUDIT_FORMAT.into(),
            screens: vec![AuditScreen {
                screen_id: "dushanbe-mall-01".into(),
                public_key_pem: pem,
                anchor: None,
            }],
            records,
        }
    }

    #[test]
    fn bundle_totals_airtime_from_verified_records_only() {
        let mut records = chain(4);
        records[3].body.outcome = Outcome::Interrupted;
        records[3].body.duration_ms = 1_000;
        let report = verify_bundle(&bundle(records));
        assert!(!report.is_clean());
        let airtime = &report.screens[0].airtime[0];
        assert_eq!(airtime.campaign, "Drug-free June");
        assert_eq!(
            (airtime.plays, airtime.completed_plays, airtime.airtime_ms),
            (3, 3, 3 * 29_960)
        );
        assert_eq!(
            (airtime.unverified_plays, airtime.unverified_airtime_ms),
            (1, 1_000)
        );
    }

    #[test]
    fn bundle_reports_unknown_and_duplicate_screens() {
        let mut records = chain(2);
        records[1].body.screen_id = "elsewhere".into();
        let mut b = bundle(records);
        b.screens.push(b.screens[0].clone());
        let report = verify_bundle(&b);
        assert_eq!(
            report.problems,
            vec![
                BundleProblem::DuplicateScreen {
                    screen_id: "dushanbe-mall-01".into()
                },
                BundleProblem::UnknownScreen {
                    screen_id: "elsewhere".into(),
                    records: 1
                },
            ]
        );
    }

    #[test]
    fn bundle_with_unusable_key_verifies_nothing() {
        let mut b = bundle(chain(2));
        b.screens[0].public_key_pem = "not a key".into();
        let report = verify_bundle(&b);
        assert!(report.screens[0].key_error.is_some());
        assert!(!report.is_clean());
        assert_eq!(report.screens[0].airtime[0].unverified_plays, 2);
    }

    #[test]
    fn bundle_format_is_checked_first() {
        let json = br#"{"format":"ekran-pop-audit/9","screens":[],"rows":[]}"#;
        assert!(matches!(
            AuditBundle::from_json(json),
            Err(PopError::UnsupportedFormat { .. })
        ));
        let json = serde_json::to_vec(&bundle(chain(2))).unwrap();
        assert!(verify_bundle(&AuditBundle::from_json(&json).unwrap()).is_clean());
    }

    proptest! {
        /// Any single-byte change to a sealed record's stored JSON that still
        /// parses into a different record is detected.
        #[test]
        fn any_single_byte_change_is_detected(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let record = chain(1).remove(0);
            let mut json = serde_json::to_vec(&record).unwrap();
            let at = position.index(json.len());
            prop_assume!(json[at] != byte);
            json[at] = byte;
            if let Ok(changed) = serde_json::from_slice::<PlayRecord>(&json) {
                prop_assume!(changed != record);
                prop_assert!(changed.verify(&screen_key().verifying_key()).is_err());
            }
        }

        /// Shuffling a clean chain only ever yields Reordered findings; the
        /// chain itself still verifies to its end.
        #[test]
        fn shuffled_chain_is_only_reordered(order in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle()) {
            let records = chain(12);
            let shuffled: Vec<PlayRecord> = order.iter().map(|&i| records[i].clone()).collect();
            let report = verify(&shuffled);
            prop_assert!(report.findings.iter().all(|f| matches!(f, Finding::Reordered { .. })), "{:?}", report.findings);
            prop_assert_eq!(report.highest_contiguous, 12);
            prop_assert_eq!(report.verified_seqs.len(), 12);
        }

        /// Dropping records yields exactly one Gap per run of missing seqs
        /// (trailing losses are invisible without a later record) and nothing else.
        #[test]
        fn dropped_records_are_only_gaps(keep in prop::collection::vec(any::<bool>(), 12)) {
            let records = chain(12);
            let kept: Vec<PlayRecord> = records.iter().zip(&keep).filter(|(_, k)| **k).map(|(r, _)| r.clone()).collect();
            let report = verify(&kept);
            let present: Vec<u64> = kept.iter().map(|r| r.body.seq).collect();
            let mut expected = Vec::new();
            let mut previous = 0;
            for &seq in &present {
                if seq != previous + 1 {
                    expected.push(Finding::Gap { after: previous, next: seq });
                }
                previous = seq;
            }
            prop_assert_eq!(&report.findings, &expected);
            prop_assert_eq!(&report.verified_seqs, &present);
        }
    }
}
