//! The durable proof-of-play journal on the box (SPEC §6): records are
//! appended here before the next item starts, stay until the server
//! acknowledges them, and survive power cuts at any instant.
//!
//! # Format
//!
//! An fsynced append-only log, `journal.log`, of checksummed frames:
//! `"EKRJ"` magic, payload length (u32 LE), the first 8 bytes of the
//! payload's SHA-256, then the payload: one JSON entry. The file starts
//! with a `base` entry (the chain head before its first record), followed by
//! `record` entries and `ack` entries (the server acknowledged up to a seq,
//! with that record's hash). The chain head therefore survives even when
//! every record has been acknowledged and compacted away.
//!
//! - [`Journal::append`] returns only after the frame is fsynced. A failed
//!   fsync is returned as an error; the frame is cut off again so it can
//!   never surface later as a record nobody was told about.
//! - A torn or corrupt tail (a crash mid-write) fails its checksum and is
//!   truncated at open, with a warning. Corruption in the middle (bad
//!   media) costs only the damaged frames: the rest is kept, the damaged
//!   file is copied aside for inspection, and the chain gap is left for the
//!   server to report as an audit finding.
//! - Compaction (after acknowledgements) writes `journal.log.new`, fsyncs
//!   it, renames it over `journal.log` and fsyncs the directory. A crash at
//!   any point leaves one complete file; a crash after the server's
//!   acknowledgement but before the `ack` entry is durable only means the
//!   batch is uploaded again, which the server treats idempotently.
//! - `checkpoint` holds the play in progress in two alternating fixed-size
//!   slots (each a checksummed frame with a generation number), so a torn
//!   checkpoint write leaves the previous one readable. On restart the last
//!   checkpoint becomes an `interrupted` record ([`Journal::interrupted_play`]).
//!
//! All file access goes through the small [`Storage`] trait so tests can
//! simulate crashes that drop unsynced writes, torn writes and failing fsyncs.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use ed25519_dalek::SigningKey;

use crate::pop::{self, GENESIS_HASH, Outcome, PlayBody, PlayRecord};

/// The log file's name inside the journal directory.
pub const LOG_FILE: &str = "journal.log";
/// Compaction's output before it is renamed over [`LOG_FILE`].
pub const COMPACT_FILE: &str = "journal.log.new";
/// The play-in-progress checkpoint's file name.
pub const CHECKPOINT_FILE: &str = "checkpoint";

const MAGIC: [u8; 4] = *b"EKRJ";
const HEADER_LEN: usize = 16;
/// A record is a few hundred bytes; anything claiming more is garbage.
const MAX_PAYLOAD: usize = 64 * 1024;
/// Each checkpoint slot's size; a checkpoint is a few hundred bytes.
const CHECKPOINT_SLOT: usize = 4096;

/// What can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal: {op} {file} failed: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file inside the journal directory.
        file: String,
        /// What the OS said.
        source: io::Error,
    },
    /// fsync failed: the entry is not durable and was not acknowledged.
    #[error(
        "journal: fsync of {file} failed, nothing was acknowledged (check the storage: {source})"
    )]
    SyncFailed {
        /// The file that could not be synced.
        file: String,
        /// What the OS said.
        source: io::Error,
    },
    /// A failed fsync could not be rolled back; the in-memory state may no
    /// longer match the disk, so every operation is refused until reopened.
    #[error("journal: unusable after a failed fsync that could not be rolled back; reopen it")]
    Poisoned,
    /// The record does not extend the chain.
    #[error(
        "journal: record seq {got_seq} (prev {got_prev}) does not extend the chain head seq {head_seq} (hash {head_hash})"
    )]
    ChainMismatch {
        /// The journal's last seq.
        head_seq: u64,
        /// The journal's last hash.
        head_hash: String,
        /// The record's seq.
        got_seq: u64,
        /// The record's prev_hash.
        got_prev: String,
    },
    /// An acknowledgement for records the journal never wrote.
    #[error("journal: acknowledgement up to seq {up_to} is past the last record {head}")]
    AckBeyondHead {
        /// What the server acknowledged.
        up_to: u64,
        /// The journal's last seq.
        head: u64,
    },
    /// An entry is larger than a frame may be.
    #[error("journal: entry of {bytes} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// The entry's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The record could not be sealed (a malformed chain head).
    #[error("journal: cannot seal the record: {0}")]
    Seal(#[from] pop::PopError),
    /// A frame read back after open failed its checksum (the storage is failing).
    #[error("journal: frame at offset {offset} is corrupt: {reason}")]
    Corrupt {
        /// Byte offset in the log.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The file operations the journal needs; everything else about the
/// filesystem is hidden so that tests can model what a power cut keeps.
///
/// Nothing written is durable until [`Storage::sync`] (file contents) and,
/// for files created or renamed, [`Storage::sync_dir`] (the name) return.
pub trait Storage {
    /// The whole file, or `None` if it does not exist.
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// `len` bytes at `offset`.
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Writes `bytes` at `offset`, creating the file if missing.
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Makes the file's contents durable (fsync).
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Atomically replaces `to` with `from`.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Removes the file; succeeds if it does not exist.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Makes creations, renames and removals durable (fsync of the directory).
    fn sync_dir(&mut self) -> io::Result<()>;
}

/// [`Storage`] on a real directory, keeping the files it uses open.
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    open: HashMap<String, File>,
}

impl DirStorage {
    /// Uses `dir`, creating it (and its parents) if missing.
    pub fn new(dir: &Path) -> io::Result<Self> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            // The new directory's own name must survive a power cut too.
            if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            open: HashMap::new(),
        })
    }

    fn file(&mut self, name: &str) -> io::Result<&File> {
        if !self.open.contains_key(name) {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.dir.join(name))?;
            self.open.insert(name.to_owned(), file);
        }
        Ok(&self.open[name])
    }
}

impl Storage for DirStorage {
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; len];
        self.file(name)?.read_exact_at(&mut bytes, offset)?;
        Ok(bytes)
    }

    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file(name)?.write_all_at(bytes, offset)
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.file(name)?.set_len(len)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.file(name)?.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))?;
        self.open.remove(to);
        if let Some(file) = self.open.remove(from) {
            self.open.insert(to.to_owned(), file);
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.open.remove(name);
        match std::fs::remove_file(self.dir.join(name)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

/// One frame's payload in `journal.log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Entry {
    /// The chain head before the file's first record (seq 0 and
    /// [`GENESIS_HASH`] for a new journal).
    Base { seq: u64, hash: String },
    /// A sealed proof-of-play record.
    Record { record: Box<PlayRecord> },
    /// The server acknowledged every record up to `up_to_seq`, whose hash is `hash`.
    Ack { up_to_seq: u64, hash: String },
}

/// One checkpoint slot's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointSlot {
    /// Higher wins; the slot written is `generation % 2`.
    generation: u64,
    /// The play in progress, as the record it would become if cut now.
    play: Option<PlayBody>,
}

/// The last record of the chain: what the next record links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Its seq (0 before the first record).
    pub seq: u64,
    /// Its hash ([`GENESIS_HASH`] before the first record).
    pub hash: String,
}

/// What [`Journal::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes of a torn or corrupt tail that were cut off.
    pub truncated_tail_bytes: u64,
    /// Damaged regions skipped in the middle of the log.
    pub corrupt_regions: usize,
    /// Where the damaged log was copied for inspection, if it was.
    pub corrupt_copy: Option<String>,
    /// Records not yet acknowledged.
    pub pending: usize,
}

/// Tuning knobs; the defaults suit a box.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Compact once acknowledged bytes exceed this and the live records'
    /// bytes. Small values are for tests that exercise compaction.
    pub compact_min_dead_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        // 1 MiB: a few thousand records; compaction then copies at most as
        // much as it frees, so an SD card sees little write amplification.
        Self {
            compact_min_dead_bytes: 1024 * 1024,
        }
    }
}

/// Where an unacknowledged record lives in the log.
#[derive(Debug, Clone, Copy)]
struct Located {
    seq: u64,
    offset: u64,
    len: u32,
}

/// The proof-of-play journal. One per screen; single writer.
pub struct Journal<S: Storage> {
    storage: S,
    options: JournalOptions,
    head: ChainHead,
    /// The highest acknowledged seq and its hash.
    acked: ChainHead,
    /// Unacknowledged records in seq order.
    pending: Vec<Located>,
    /// Length of the log's durable, valid prefix; appends go here.
    log_len: u64,
    /// Generation of the newest checkpoint slot.
    checkpoint_generation: u64,
    /// The play in progress as last checkpointed.
    checkpoint: Option<PlayBody>,
    poisoned: bool,
}

fn io_error<'a>(op: &'static str, file: &'a str) -> impl FnOnce(io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        op,
        file: file.to_owned(),
        source,
    }
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    // The first 8 bytes of SHA-256: sha2 is already linked for the chain,
    // and 64 bits make an undetected torn write practically impossible.
    let digest = Sha256::digest(payload);
    let mut sum = [0; 8];
    sum.copy_from_slice(&digest[..8]);
    sum
}

fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&checksum(payload));
    frame.extend_from_slice(payload);
    frame
}

/// Decodes the frame at the start of `bytes`: its payload and total length.
fn decode_frame(bytes: &[u8]) -> Result<(&[u8], usize), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than a frame header",
            bytes.len()
        ));
    }
    if bytes[..4] != MAGIC {
        return Err("no frame magic".to_owned());
    }
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(format!("frame claims {len} bytes"));
    }
    let Some(payload) = bytes.get(HEADER_LEN..HEADER_LEN + len) else {
        return Err(format!(
            "frame of {len} bytes cut off after {}",
            bytes.len() - HEADER_LEN
        ));
    };
    if checksum(payload) != bytes[8..16] {
        return Err("checksum mismatch".to_owned());
    }
    Ok((payload, HEADER_LEN + len))
}

fn decode_entry(bytes: &[u8]) -> Result<(Entry, usize), String> {
    let (payload, len) = decode_frame(bytes)?;
    let entry = serde_json::from_slice(payload).map_err(|error| format!("bad entry: {error}"))?;
    Ok((entry, len))
}

fn encode_entry<T: Serialize>(entry: &T) -> Result<Vec<u8>, JournalError> {
    let payload = serde_json::to_vec(entry).expect("journal entries serialise to JSON");
    if payload.len() > MAX_PAYLOAD {
        return Err(JournalError::TooLarge {
            bytes: payload.len(),
            limit: MAX_PAYLOAD,
        });
    }
    Ok(encode_frame(&payload))
}

impl<S: Storage> Journal<S> {
    /// Opens (or creates) the journal: repairs a torn tail, rebuilds the
    /// chain head and the list of unacknowledged records, and loads the
    /// checkpoint of a play that was in progress.
    pub fn open(
        mut storage: S,
        options: JournalOptions,
    ) -> Result<(Self, OpenReport), JournalError> {
        // A compaction that never reached its rename: the old log is complete.
        storage
            .remove(COMPACT_FILE)
            .map_err(io_error("remove", COMPACT_FILE))?;
        let mut report = OpenReport::default();
        let bytes = match storage.read(LOG_FILE).map_err(io_error("read", LOG_FILE))? {
            Some(bytes) => bytes,
            None => {
                let base = encode_entry(&Entry::Base {
                    seq: 0,
                    hash: GENESIS_HASH.to_owned(),
                })?;
                write_new_file(&mut storage, LOG_FILE, &base)?;
                base
            }
        };

        let mut head = ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        };
        let mut acked = head.clone();
        let mut located: Vec<Located> = Vec::new();
        let mut offset = 0usize;
        let mut valid_end = 0usize;
        let mut damaged = false;
        while offset < bytes.len() {
            match decode_entry(&bytes[offset..]) {
                Ok((entry, len)) => {
                    match entry {
                        Entry::Base { seq, hash }
                        | Entry::Ack {
                            up_to_seq: seq,
                            hash,
                        } => {
                            if seq >= acked.seq {
                                acked = ChainHead {
                                    seq,
                                    hash: hash.clone(),
                                };
                            }
                            if seq >= head.seq {
                                head = ChainHead { seq, hash };
                            }
                        }
                        Entry::Record { record } => {
                            let body = &record.body;
                            if body.seq != head.seq + 1 || record.prev_hash != head.hash {
                                tracing::warn!(
                                    seq = body.seq,
                                    head = head.seq,
                                    "journal: record does not link to the one before it (damaged log?); kept, the server will report the gap"
                                );
                            }
                            located.push(Located {
                                seq: body.seq,
                                offset: offset as u64,
                                len: len as u32,
                            });
                            head = ChainHead {
                                seq: body.seq,
                                hash: record.hash,
                            };
                        }
                    }
                    offset += len;
                    valid_end = offset;
                }
                Err(reason) => {
                    // Damaged frame: is there anything valid after it?
                    let resume =
                        (offset + 1..bytes.len().saturating_sub(HEADER_LEN - 1)).find(|&at| {
                            bytes[at..at + 4] == MAGIC && decode_entry(&bytes[at..]).is_ok()
                        });
                    match resume {
                        Some(at) => {
                            tracing::error!(offset, skipped = at - offset, %reason, "journal: damaged frames in the middle of the log skipped");
                            report.corrupt_regions += 1;
                            damaged = true;
                            offset = at;
                        }
                        None => {
                            tracing::warn!(offset, bytes = bytes.len() - offset, %reason, "journal: torn tail from an interrupted write cut off");
                            report.truncated_tail_bytes = (bytes.len() - offset) as u64;
                            break;
                        }
                    }
                }
            }
        }
        located.retain(|record| record.seq > acked.seq);
        report.pending = located.len();

        let mut journal = Self {
            storage,
            options,
            head,
            acked,
            pending: located,
            log_len: valid_end as u64,
            checkpoint_generation: 0,
            checkpoint: None,
            poisoned: false,
        };
        if damaged {
            let copy = format!(
                "{LOG_FILE}.corrupt-{}",
                jiff::Timestamp::now().as_millisecond()
            );
            write_new_file(&mut journal.storage, &copy, &bytes)?;
            report.corrupt_copy = Some(copy);
            // Rewrite without the damaged bytes so they are not met again.
            journal.compact_from(&bytes)?;
        } else if report.truncated_tail_bytes > 0 {
            journal
                .storage
                .set_len(LOG_FILE, valid_end as u64)
                .map_err(io_error("truncate", LOG_FILE))?;
            journal.sync(LOG_FILE)?;
        }
        journal.load_checkpoint()?;
        Ok((journal, report))
    }

    /// The last record's seq and hash, which the next record must link to.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// The highest seq the server acknowledged (0 if none).
    pub fn acknowledged_seq(&self) -> u64 {
        self.acked.seq
    }

    /// How many records await acknowledgement.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Appends a sealed record; returns only once it is durable. The record
    /// must extend the chain: `seq` = head + 1, `prev_hash` = head's hash.
    pub fn append(&mut self, record: &PlayRecord) -> Result<(), JournalError> {
        self.check_usable()?;
        if record.body.seq != self.head.seq + 1 || record.prev_hash != self.head.hash {
            return Err(JournalError::ChainMismatch {
                head_seq: self.head.seq,
                head_hash: self.head.hash.clone(),
                got_seq: record.body.seq,
                got_prev: record.prev_hash.clone(),
            });
        }
        let frame = encode_entry(&Entry::Record {
            record: Box::new(record.clone()),
        })?;
        let offset = self.log_len;
        self.append_durably(&frame)?;
        self.pending.push(Located {
            seq: record.body.seq,
            offset,
            len: frame.len() as u32,
        });
        self.head = ChainHead {
            seq: record.body.seq,
            hash: record.hash.clone(),
        };
        Ok(())
    }

    /// Gives `body` the next seq, chains it to the head, signs it with the
    /// screen key ([`pop::seal`]) and appends it; returns once durable.
    pub fn append_play(
        &mut self,
        mut body: PlayBody,
        screen_key: &SigningKey,
    ) -> Result<PlayRecord, JournalError> {
        self.check_usable()?;
        body.seq = self.head.seq + 1;
        let record = pop::seal(body, &self.head.hash, screen_key)?;
        self.append(&record)?;
        Ok(record)
    }

    /// Up to `limit` unacknowledged records, oldest first, for upload.
    pub fn pending(&mut self, limit: usize) -> Result<Vec<PlayRecord>, JournalError> {
        self.check_usable()?;
        let mut records = Vec::with_capacity(limit.min(self.pending.len()));
        for located in self.pending.iter().take(limit).copied().collect::<Vec<_>>() {
            records.push(self.read_record(located)?);
        }
        Ok(records)
    }

    fn read_record(&mut self, located: Located) -> Result<PlayRecord, JournalError> {
        let bytes = self
            .storage
            .read_at(LOG_FILE, located.offset, located.len as usize)
            .map_err(io_error("read", LOG_FILE))?;
        match decode_entry(&bytes) {
            Ok((Entry::Record { record }, _)) if record.body.seq == located.seq => Ok(*record),
            Ok(_) => Err(JournalError::Corrupt {
                offset: located.offset,
                reason: format!("expected record seq {}", located.seq),
            }),
            Err(reason) => Err(JournalError::Corrupt {
                offset: located.offset,
                reason,
            }),
        }
    }

    /// Records that the server holds every record up to `up_to_seq`; they
    /// leave the journal (at the next compaction). Idempotent.
    pub fn acknowledge(&mut self, up_to_seq: u64) -> Result<(), JournalError> {
        self.check_usable()?;
        if up_to_seq > self.head.seq {
            return Err(JournalError::AckBeyondHead {
                up_to: up_to_seq,
                head: self.head.seq,
            });
        }
        if up_to_seq <= self.acked.seq {
            return Ok(());
        }
        let hash = if up_to_seq == self.head.seq {
            self.head.hash.clone()
        } else {
            let located = self
                .pending
                .iter()
                .copied()
                .find(|located| located.seq == up_to_seq)
                .ok_or(JournalError::Corrupt {
                    offset: self.log_len,
                    reason: format!("acknowledged seq {up_to_seq} is not in the journal"),
                })?;
            self.read_record(located)?.hash
        };
        let frame = encode_entry(&Entry::Ack {
            up_to_seq,
            hash: hash.clone(),
        })?;
        self.append_durably(&frame)?;
        self.acked = ChainHead {
            seq: up_to_seq,
            hash,
        };
        self.pending.retain(|located| located.seq > up_to_seq);

        let live: u64 = self
            .pending
            .iter()
            .map(|located| u64::from(located.len))
            .sum();
        let dead = self.log_len - live;
        if dead >= self.options.compact_min_dead_bytes && dead >= live {
            // The acknowledgement is durable already; a failed compaction
            // only postpones reclaiming the space.
            if let Err(error) = self.compact() {
                tracing::warn!(%error, "journal: compaction failed, retried after the next acknowledgement");
            }
        }
        Ok(())
    }

    /// Rewrites the log as a `base` entry (the acknowledged head) plus the
    /// unacknowledged records: temp file, fsync, rename, fsync directory.
    pub fn compact(&mut self) -> Result<(), JournalError> {
        self.check_usable()?;
        let bytes = self
            .storage
            .read(LOG_FILE)
            .map_err(io_error("read", LOG_FILE))?
            .unwrap_or_default();
        self.compact_from(&bytes)
    }

    fn compact_from(&mut self, log: &[u8]) -> Result<(), JournalError> {
        let mut fresh = encode_entry(&Entry::Base {
            seq: self.acked.seq,
            hash: self.acked.hash.clone(),
        })?;
        let mut relocated = Vec::with_capacity(self.pending.len());
        for located in &self.pending {
            let start = located.offset as usize;
            let frame =
                log.get(start..start + located.len as usize)
                    .ok_or(JournalError::Corrupt {
                        offset: located.offset,
                        reason: "record vanished from the log during compaction".to_owned(),
                    })?;
            relocated.push(Located {
                offset: fresh.len() as u64,
                ..*located
            });
            fresh.extend_from_slice(frame);
        }
        // If the head was already acknowledged, the base entry carries it; if
        // not, the last record does. Either way the head survives.
        write_new_file(&mut self.storage, COMPACT_FILE, &fresh)?;
        self.storage
            .rename(COMPACT_FILE, LOG_FILE)
            .map_err(io_error("rename", COMPACT_FILE))?;
        self.storage
            .sync_dir()
            .map_err(|source| JournalError::SyncFailed {
                file: ".".to_owned(),
                source,
            })?;
        self.pending = relocated;
        self.log_len = fresh.len() as u64;
        tracing::debug!(
            bytes = self.log_len,
            pending = self.pending.len(),
            "journal compacted"
        );
        Ok(())
    }

    /// Saves the play in progress so that a power cut still yields an
    /// `interrupted` record. `play` is the record as it would read if the
    /// play ended now (last presented time, frames so far); its `seq` and
    /// `outcome` are set here. Call it about once a second while playing.
    pub fn checkpoint(&mut self, play: &PlayBody) -> Result<(), JournalError> {
        self.check_usable()?;
        let mut play = play.clone();
        play.seq = self.head.seq + 1;
        play.outcome = Outcome::Interrupted;
        play.duration_ms = u64::try_from(play.ended_at_ms - play.started_at_ms).unwrap_or(0);
        self.write_checkpoint(Some(play))
    }

    /// Forgets the checkpoint (the play ended and its record is durable, or
    /// the interrupted record was written).
    pub fn clear_checkpoint(&mut self) -> Result<(), JournalError> {
        self.check_usable()?;
        if self.checkpoint.is_none() {
            return Ok(());
        }
        self.write_checkpoint(None)
    }

    /// Turns the checkpoint of a play cut short by the last stop into its
    /// `interrupted` record (ending at the last presented frame), appended
    /// durably, then clears the checkpoint. Call once after [`Journal::open`].
    pub fn recover_interrupted(
        &mut self,
        screen_key: &SigningKey,
    ) -> Result<Option<PlayRecord>, JournalError> {
        let Some(play) = self.interrupted_play() else {
            return Ok(None);
        };
        let record = self.append_play(play, screen_key)?;
        tracing::info!(seq = record.body.seq, item = %record.body.item_id, ended_at_ms = record.body.ended_at_ms, "journal: play cut short by the last stop recorded as interrupted");
        // The record is durable; a stale checkpoint is ignored at the next
        // open anyway (its seq is taken), so a failed clear is only logged.
        if let Err(error) = self.clear_checkpoint() {
            tracing::warn!(%error, "journal: could not clear the recovered checkpoint");
        }
        Ok(Some(record))
    }

    /// The play that was in progress when the box last stopped, as an
    /// `interrupted` record body ending at its last presented frame, if its
    /// record was never written. Append it with [`Journal::append_play`],
    /// then [`Journal::clear_checkpoint`].
    pub fn interrupted_play(&self) -> Option<PlayBody> {
        // A checkpoint whose seq the chain already reached belongs to a play
        // whose own record was written before the checkpoint was cleared.
        self.checkpoint
            .clone()
            .filter(|play| play.seq == self.head.seq + 1)
    }

    fn write_checkpoint(&mut self, play: Option<PlayBody>) -> Result<(), JournalError> {
        let generation = self.checkpoint_generation + 1;
        let frame = encode_entry(&CheckpointSlot {
            generation,
            play: play.clone(),
        })?;
        if frame.len() > CHECKPOINT_SLOT {
            return Err(JournalError::TooLarge {
                bytes: frame.len(),
                limit: CHECKPOINT_SLOT,
            });
        }
        let slot_offset = (generation % 2) * CHECKPOINT_SLOT as u64;
        self.storage
            .write_at(CHECKPOINT_FILE, slot_offset, &frame)
            .map_err(io_error("write", CHECKPOINT_FILE))?;
        // A failed checkpoint sync needs no rollback: the slot's checksum
        // (or generation order) decides at open which checkpoint counts.
        self.storage
            .sync(CHECKPOINT_FILE)
            .map_err(|source| JournalError::SyncFailed {
                file: CHECKPOINT_FILE.to_owned(),
                source,
            })?;
        self.checkpoint_generation = generation;
        self.checkpoint = play;
        Ok(())
    }

    fn load_checkpoint(&mut self) -> Result<(), JournalError> {
        let Some(bytes) = self
            .storage
            .read(CHECKPOINT_FILE)
            .map_err(io_error("read", CHECKPOINT_FILE))?
        else {
            // Create both slots now, so later checkpoints only overwrite and
            // never depend on a directory fsync.
            let empty = encode_entry(&CheckpointSlot {
                generation: 0,
                play: None,
            })?;
            let mut file = vec![0; 2 * CHECKPOINT_SLOT];
            file[..empty.len()].copy_from_slice(&empty);
            return write_new_file(&mut self.storage, CHECKPOINT_FILE, &file);
        };
        let best = bytes
            .chunks(CHECKPOINT_SLOT)
            .take(2)
            .filter_map(|slot| {
                let (payload, _) = decode_frame(slot).ok()?;
                serde_json::from_slice::<CheckpointSlot>(payload).ok()
            })
            .max_by_key(|slot| slot.generation);
        if let Some(slot) = best {
            self.checkpoint_generation = slot.generation;
            self.checkpoint = slot.play;
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<(), JournalError> {
        if self.poisoned {
            Err(JournalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn sync(&mut self, file: &str) -> Result<(), JournalError> {
        self.storage
            .sync(file)
            .map_err(|source| JournalError::SyncFailed {
                file: file.to_owned(),
                source,
            })
    }

    /// Writes `frame` at the end of the log and fsyncs it. On failure the
    /// log is cut back to its durable length, so the frame can never
    /// appear later; if even that fails the journal refuses further work.
    fn append_durably(&mut self, frame: &[u8]) -> Result<(), JournalError> {
        let result = self
            .storage
            .write_at(LOG_FILE, self.log_len, frame)
            .map_err(io_error("write", LOG_FILE))
            .and_then(|()| self.sync(LOG_FILE));
        if let Err(error) = result {
            let rolled_back = self
                .storage
                .set_len(LOG_FILE, self.log_len)
                .and_then(|()| self.storage.sync(LOG_FILE));
            if let Err(rollback) = rolled_back {
                tracing::error!(%error, %rollback, "journal: cannot roll back a failed append; refusing further writes until reopened");
                self.poisoned = true;
            }
            return Err(error);
        }
        self.log_len += frame.len() as u64;
        Ok(())
    }
}

/// Creates (or replaces) `name` with `bytes`, durable including its name.
fn write_new_file<S: Storage>(
    storage: &mut S,
    name: &str,
    bytes: &[u8],
) -> Result<(), JournalError> {
    storage.set_len(name, 0).map_err(io_error("create", name))?;
    storage
        .write_at(name, 0, bytes)
        .map_err(io_error("write", name))?;
    storage
        .sync(name)
        .map_err(|source| JournalError::SyncFailed {
            file: name.to_owned(),
            source,
        })?;
    storage
        .sync_dir()
        .map_err(|source| JournalError::SyncFailed {
            file: ".".to_owned(),
            source,
        })
}
