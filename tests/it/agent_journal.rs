//! The proof-of-play journal under simulated power cuts: a fault-injecting
//! [`Storage`] keeps, like a real disk, only what was fsynced (file data by
//! `sync`, names by `sync_dir`), optionally tears the last unsynced write,
//! and can make fsync fail. A kill -9 alone cannot show this, because the
//! page cache survives it.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};

use ekran::agent::journal::{
    CHECKPOINT_FILE, DirStorage, Journal, JournalError, JournalOptions, LOG_FILE, Storage,
};
use ekran::pop::{GENESIS_HASH, Outcome, PlayBody, PlayRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::agent_support::{play_body, screen_key, seal, verify_chain_from};

/// One file's bytes as a reader sees them and as a power cut leaves them.
#[derive(Debug, Default, Clone)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct FsState {
    inodes: Vec<Inode>,
    /// Directory entries as seen now.
    names: HashMap<String, usize>,
    /// Directory entries that survive a power cut.
    durable_names: HashMap<String, usize>,
    /// The last write not yet covered by a successful sync: (inode, offset, bytes).
    last_unsynced_write: Option<(usize, u64, Vec<u8>)>,
    /// The next this many `sync`/`sync_dir` calls fail with EIO.
    failing_syncs: usize,
    /// Storage calls left before the power goes (None: never).
    pub(crate) ops_until_power_cut: Option<usize>,
    powered_off: bool,
}

/// How the power cut treats writes that were not fsynced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    /// Every unsynced write is lost.
    DropUnsynced,
    /// Unsynced writes are lost except the last, which persists in part
    /// (its first `keep` of 8 parts), as on a disk that wrote some sectors.
    TornLastWrite { keep_eighths: usize },
    /// The kernel wrote the whole page cache back before the cut (or the
    /// process was merely killed): even writes whose fsync failed persist.
    KeepPageCache,
}

/// A shared in-memory disk; clones are handles to the same disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultFs(Arc<Mutex<FsState>>);

impl FaultFs {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, FsState> {
        self.0.lock().unwrap()
    }

    /// Power returns: only durable state is left.
    pub(crate) fn power_cut(&self, cut: Cut) {
        let mut state = self.state();
        let torn = state.last_unsynced_write.take();
        if let Cut::KeepPageCache = cut {
            state.durable_names = state.names.clone();
            for inode in &mut state.inodes {
                inode.durable = inode.current.clone();
            }
        }
        state.names = state.durable_names.clone();
        for inode in &mut state.inodes {
            inode.current = inode.durable.clone();
        }
        if let (Cut::TornLastWrite { keep_eighths }, Some((inode, offset, bytes))) = (cut, torn) {
            let kept = &bytes[..bytes.len() * keep_eighths / 8];
            let file = &mut state.inodes[inode].current;
            let end = offset as usize + kept.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[offset as usize..end].copy_from_slice(kept);
            state.inodes[inode].durable = state.inodes[inode].current.clone();
        }
        state.powered_off = false;
        state.ops_until_power_cut = None;
        state.failing_syncs = 0;
    }

    fn durable_file(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.state();
        state
            .durable_names
            .get(name)
            .map(|&inode| state.inodes[inode].durable.clone())
    }

    fn corrupt_durable_byte(&self, name: &str, at: usize) {
        let mut state = self.state();
        let inode = state.durable_names[name];
        state.inodes[inode].durable[at] ^= 0x55;
        state.inodes[inode].current = state.inodes[inode].durable.clone();
    }

    fn tick(state: &mut FsState) -> io::Result<()> {
        if let Some(left) = state.ops_until_power_cut.as_mut() {
            if *left == 0 {
                state.powered_off = true;
            } else {
                *left -= 1;
            }
        }
        if state.powered_off {
            return Err(io::Error::other("simulated power cut"));
        }
        Ok(())
    }

    fn inode_for_write(state: &mut FsState, name: &str) -> usize {
        if let Some(&inode) = state.names.get(name) {
            return inode;
        }
        state.inodes.push(Inode::default());
        let inode = state.inodes.len() - 1;
        state.names.insert(name.to_owned(), inode);
        inode
    }

    fn failing_sync(state: &mut FsState) -> io::Result<()> {
        if state.failing_syncs > 0 {
            state.failing_syncs -= 1;
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        Ok(())
    }
}

impl Storage for FaultFs {
    fn read(&mut self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        Ok(state
            .names
            .get(name)
            .map(|&inode| state.inodes[inode].current.clone()))
    }

    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        let inode = *state.names.get(name).ok_or(io::ErrorKind::NotFound)?;
        state.inodes[inode]
            .current
            .get(offset as usize..offset as usize + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }

    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        let inode = Self::inode_for_write(&mut state, name);
        let file = &mut state.inodes[inode].current;
        let end = offset as usize + bytes.len();
        if file.len() < end {
            file.resize(end, 0);
        }
        file[offset as usize..end].copy_from_slice(bytes);
        state.last_unsynced_write = Some((inode, offset, bytes.to_vec()));
        Ok(())
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        let inode = Self::inode_for_write(&mut state, name);
        state.inodes[inode].current.resize(len as usize, 0);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        Self::failing_sync(&mut state)?;
        let inode = *state.names.get(name).ok_or(io::ErrorKind::NotFound)?;
        state.inodes[inode].durable = state.inodes[inode].current.clone();
        if state
            .last_unsynced_write
            .as_ref()
            .is_some_and(|(written, ..)| *written == inode)
        {
            state.last_unsynced_write = None;
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        let inode = state.names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        state.names.insert(to.to_owned(), inode);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        state.names.remove(name);
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut state = self.state();
        Self::tick(&mut state)?;
        Self::failing_sync(&mut state)?;
        state.durable_names = state.names.clone();
        Ok(())
    }
}

fn open(fs: &FaultFs, options: &JournalOptions) -> Journal<FaultFs> {
    Journal::open(fs.clone(), options.clone())
        .expect("journal opens after any power cut")
        .0
}

fn append_next(journal: &mut Journal<FaultFs>, n: u64) -> Result<PlayRecord, JournalError> {
    journal.append_play(play_body(n), &screen_key())
}

/// All pending records, checked to form one chain from the acknowledged head.
fn pending_chain(journal: &mut Journal<FaultFs>) -> Vec<PlayRecord> {
    let records = journal.pending(usize::MAX).unwrap();
    let anchor = (journal.acknowledged_seq(), acked_hash(journal, &records));
    verify_chain_from(&records, anchor, &screen_key());
    if let Some(last) = records.last() {
        assert_eq!(journal.head().seq, last.body.seq);
        assert_eq!(journal.head().hash, last.hash);
    } else {
        assert_eq!(journal.head().seq, journal.acknowledged_seq());
    }
    records
}

fn acked_hash(journal: &Journal<FaultFs>, records: &[PlayRecord]) -> String {
    match records.first() {
        Some(first) => first.prev_hash.clone(),
        None => journal.head().hash.clone(),
    }
}

/// Random appends, acknowledgements, checkpoints and compactions with power
/// cuts at random storage calls (inside any of those operations), hundreds
/// of times: every record whose append returned Ok is still there exactly
/// once (unless acknowledged), acknowledgements that returned Ok stick, and
/// the chain links from the acknowledged head to the last record.
#[test]
fn power_cuts_at_any_storage_call_lose_no_acknowledged_record() {
    let options = JournalOptions {
        compact_min_dead_bytes: 512,
    };
    for seed in 0..60u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let fs = FaultFs::default();
        // Every record append() reported durable, by seq.
        let mut durable: BTreeMap<u64, PlayRecord> = BTreeMap::new();
        let mut acknowledged = 0u64;
        let mut attempted_max = 0u64;
        for _power_cycle in 0..8 {
            let cut = if rng.gen_bool(0.5) {
                Cut::DropUnsynced
            } else {
                Cut::TornLastWrite {
                    keep_eighths: rng.gen_range(0..8),
                }
            };
            // Open cleanly, check everything, then arm the power cut.
            let mut journal = open(&fs, &options);
            assert!(
                journal.acknowledged_seq() >= acknowledged,
                "seed {seed}: an acknowledgement was lost"
            );
            acknowledged = journal.acknowledged_seq();
            let records = pending_chain(&mut journal);
            for record in &records {
                if let Some(expected) = durable.get(&record.body.seq) {
                    assert_eq!(
                        record, expected,
                        "seed {seed}: record {} changed",
                        record.body.seq
                    );
                }
            }
            for seq in durable.keys().filter(|&&seq| seq > acknowledged) {
                assert!(
                    records
                        .iter()
                        .filter(|record| record.body.seq == *seq)
                        .count()
                        == 1,
                    "seed {seed}: durable record {seq} missing after a power cut"
                );
            }
            assert!(
                journal.head().seq <= attempted_max,
                "seed {seed}: records out of thin air"
            );
            // A record that survived without an Ok is a play that really
            // happened; from now on it is part of the chain like any other.
            for record in records {
                durable.entry(record.body.seq).or_insert(record);
            }
            fs.state().ops_until_power_cut = Some(rng.gen_range(0..60));
            for _ in 0..rng.gen_range(1..40) {
                let result = match rng.gen_range(0..10) {
                    0..=5 => {
                        let next = journal.head().seq + 1;
                        attempted_max = attempted_max.max(next);
                        append_next(&mut journal, next).map(|record| {
                            durable.insert(record.body.seq, record);
                        })
                    }
                    6 | 7 => {
                        let up_to = rng.gen_range(journal.acknowledged_seq()..=journal.head().seq);
                        journal
                            .acknowledge(up_to)
                            .map(|()| acknowledged = acknowledged.max(up_to))
                    }
                    8 => journal.checkpoint(&play_body(journal.head().seq + 1)),
                    _ => journal.compact(),
                };
                if result.is_err() {
                    break;
                }
            }
            drop(journal);
            fs.power_cut(cut);
        }
    }
}

#[test]
fn torn_tail_is_cut_off_at_open_and_reported() {
    let fs = FaultFs::default();
    let options = JournalOptions::default();
    let mut journal = open(&fs, &options);
    for n in 1..=3 {
        append_next(&mut journal, n).unwrap();
    }
    // The power goes after the fourth record's write, before its fsync; half of it reached the disk.
    fs.state().ops_until_power_cut = Some(1);
    assert!(append_next(&mut journal, 4).is_err());
    drop(journal);
    fs.power_cut(Cut::TornLastWrite { keep_eighths: 4 });
    let torn_len = fs.durable_file(LOG_FILE).unwrap().len();

    let (mut journal, report) = Journal::open(fs.clone(), options.clone()).unwrap();
    assert!(report.truncated_tail_bytes > 0, "{report:?}");
    assert_eq!(report.corrupt_regions, 0);
    assert_eq!(
        fs.durable_file(LOG_FILE).unwrap().len() as u64,
        torn_len as u64 - report.truncated_tail_bytes
    );
    let records = pending_chain(&mut journal);
    assert_eq!(
        records.iter().map(|r| r.body.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // The journal goes on from the last whole record.
    append_next(&mut journal, 4).unwrap();
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    let (mut journal, report) = Journal::open(fs.clone(), options).unwrap();
    assert_eq!(report.truncated_tail_bytes, 0);
    assert_eq!(pending_chain(&mut journal).len(), 4);
}

#[test]
fn failed_fsync_is_an_error_and_is_never_acknowledged_later() {
    let fs = FaultFs::default();
    let options = JournalOptions::default();
    let mut journal = open(&fs, &options);
    let first = append_next(&mut journal, 1).unwrap();

    // The data fsync fails; the rollback (truncate + fsync) works.
    fs.state().failing_syncs = 1;
    let error = append_next(&mut journal, 2).unwrap_err();
    assert!(matches!(error, JournalError::SyncFailed { .. }), "{error}");
    assert_eq!(
        journal.head().seq,
        1,
        "a failed append must not move the chain head"
    );
    assert_eq!(journal.pending(10).unwrap(), std::slice::from_ref(&first));
    // The bytes were cut off again: even if the kernel writes its page
    // cache back later, the failed record does not reappear.
    drop(journal);
    fs.power_cut(Cut::KeepPageCache);
    let mut journal = open(&fs, &options);
    assert_eq!(pending_chain(&mut journal), std::slice::from_ref(&first));
    let second = append_next(&mut journal, 2).unwrap();
    assert_eq!(second.body.seq, 2);
    assert_eq!(second.prev_hash, first.hash);
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    let mut journal = open(&fs, &options);
    assert_eq!(pending_chain(&mut journal), [first.clone(), second.clone()]);

    // fsync and the rollback both fail: the journal refuses everything until reopened.
    fs.state().failing_syncs = 2;
    assert!(matches!(
        append_next(&mut journal, 3),
        Err(JournalError::SyncFailed { .. })
    ));
    assert!(matches!(
        append_next(&mut journal, 3),
        Err(JournalError::Poisoned)
    ));
    assert!(matches!(
        journal.acknowledge(1),
        Err(JournalError::Poisoned)
    ));
    assert!(matches!(journal.pending(10), Err(JournalError::Poisoned)));
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    let mut journal = open(&fs, &options);
    assert_eq!(pending_chain(&mut journal), [first, second]);

    // A failing acknowledgement fsync: not acknowledged, records stay.
    fs.state().failing_syncs = 1;
    assert!(journal.acknowledge(2).is_err());
    assert_eq!(journal.acknowledged_seq(), 0);
    assert_eq!(journal.pending_count(), 2);
}

#[test]
fn chain_head_survives_acknowledging_and_compacting_everything() {
    let fs = FaultFs::default();
    let options = JournalOptions {
        compact_min_dead_bytes: 0,
    };
    let mut journal = open(&fs, &options);
    let mut last = None;
    for n in 1..=5 {
        last = Some(append_next(&mut journal, n).unwrap());
    }
    journal.acknowledge(5).unwrap();
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    let log_len = fs.durable_file(LOG_FILE).unwrap().len();
    let mut journal = open(&fs, &options);
    assert!(
        log_len < 300,
        "compaction dropped the acknowledged records ({log_len} bytes left)"
    );
    assert_eq!(journal.pending_count(), 0);
    assert_eq!(journal.head().seq, 5);
    assert_eq!(journal.head().hash, last.unwrap().hash);
    let sixth = append_next(&mut journal, 6).unwrap();
    assert_eq!(sixth.body.seq, 6);
    assert!(matches!(
        journal.acknowledge(7),
        Err(JournalError::AckBeyondHead { up_to: 7, head: 6 })
    ));
    // Acknowledging again (a re-upload after a crash) is harmless.
    journal.acknowledge(5).unwrap();
    assert_eq!(journal.pending(10).unwrap(), [sixth]);
}

#[test]
fn damage_in_the_middle_costs_only_the_damaged_record() {
    let fs = FaultFs::default();
    let options = JournalOptions::default();
    let mut journal = open(&fs, &options);
    for n in 1..=5 {
        append_next(&mut journal, n).unwrap();
    }
    drop(journal);
    // Flip a byte inside the third record's payload (bit rot, bad flash).
    let log = fs.durable_file(LOG_FILE).unwrap();
    let third = find_nth(&log, b"EKRJ", 3);
    fs.corrupt_durable_byte(LOG_FILE, third + 40);

    let (mut journal, report) = Journal::open(fs.clone(), options.clone()).unwrap();
    assert_eq!(report.corrupt_regions, 1, "{report:?}");
    let copy = report
        .corrupt_copy
        .expect("the damaged log is kept for inspection");
    assert_eq!(fs.durable_file(&copy).unwrap().len(), log.len());
    let seqs: Vec<u64> = journal
        .pending(10)
        .unwrap()
        .iter()
        .map(|r| r.body.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 4, 5], "only the damaged record is gone");
    // The rewritten log is clean: reopening finds no damage.
    let (_, report) = Journal::open(fs.clone(), options).unwrap();
    assert_eq!(report.corrupt_regions, 0);
}

fn find_nth(haystack: &[u8], needle: &[u8], n: usize) -> usize {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .nth(n)
        .unwrap()
        .0
}

fn in_progress(n: u64, last_presented_ms: i64, frames: u64) -> PlayBody {
    let mut body = play_body(n);
    body.ended_at_ms = last_presented_ms;
    body.frames_presented = frames;
    body.outcome = Outcome::Completed;
    body
}

#[test]
fn checkpoint_becomes_an_interrupted_record_after_a_power_cut() {
    let fs = FaultFs::default();
    let options = JournalOptions::default();
    let mut journal = open(&fs, &options);
    append_next(&mut journal, 1).unwrap();
    let started = play_body(2).started_at_ms;
    for second in 1..=3 {
        journal
            .checkpoint(&in_progress(2, started + second * 1000, second as u64 * 25))
            .unwrap();
    }
    // The fourth checkpoint is torn by the power cut: the third one counts.
    fs.state().ops_until_power_cut = Some(1);
    assert!(
        journal
            .checkpoint(&in_progress(2, started + 4000, 100))
            .is_err()
    );
    drop(journal);
    fs.power_cut(Cut::TornLastWrite { keep_eighths: 5 });

    let mut journal = open(&fs, &options);
    let interrupted = journal
        .interrupted_play()
        .expect("the play in progress is recovered");
    assert_eq!(interrupted.seq, 2);
    assert_eq!(interrupted.outcome, Outcome::Interrupted);
    assert_eq!(
        interrupted.ended_at_ms,
        started + 3000,
        "ends at the last checkpointed presented frame"
    );
    assert_eq!(interrupted.duration_ms, 3000);
    assert_eq!(interrupted.frames_presented, 75);
    let record = journal.recover_interrupted(&screen_key()).unwrap().unwrap();
    assert_eq!(
        record.body,
        PlayBody {
            seq: 2,
            ..interrupted
        }
    );
    assert_eq!(
        journal.interrupted_play(),
        None,
        "a written record is not recovered twice"
    );
    assert_eq!(journal.recover_interrupted(&screen_key()).unwrap(), None);
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    let mut journal = open(&fs, &options);
    assert_eq!(journal.interrupted_play(), None);
    assert_eq!(pending_chain(&mut journal).len(), 2);
}

#[test]
fn checkpoint_of_a_play_whose_record_was_written_is_not_recovered() {
    // The play ended, its record became durable, and the power went before
    // the checkpoint was cleared.
    let fs = FaultFs::default();
    let options = JournalOptions::default();
    let mut journal = open(&fs, &options);
    journal
        .checkpoint(&in_progress(1, play_body(1).started_at_ms + 500, 12))
        .unwrap();
    append_next(&mut journal, 1).unwrap();
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    let journal = open(&fs, &options);
    assert!(fs.durable_file(CHECKPOINT_FILE).is_some());
    assert_eq!(journal.interrupted_play(), None);
}

#[test]
fn records_must_extend_the_chain() {
    let fs = FaultFs::default();
    let mut journal = open(&fs, &JournalOptions::default());
    let mut body = play_body(1);
    body.seq = 2;
    let skipping = seal(body, GENESIS_HASH);
    assert!(matches!(
        journal.append(&skipping),
        Err(JournalError::ChainMismatch { head_seq: 0, .. })
    ));
    let mut body = play_body(1);
    body.seq = 1;
    let forked = seal(body, &"ab".repeat(32));
    assert!(matches!(
        journal.append(&forked),
        Err(JournalError::ChainMismatch { .. })
    ));
    assert_eq!(journal.pending_count(), 0);
}

#[test]
fn real_directory_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        compact_min_dead_bytes: 0,
    };
    let (mut journal, _) =
        Journal::open(DirStorage::new(dir.path()).unwrap(), options.clone()).unwrap();
    let mut written = Vec::new();
    for n in 1..=20 {
        written.push(journal.append_play(play_body(n), &screen_key()).unwrap());
    }
    journal.acknowledge(15).unwrap();
    drop(journal);
    let (mut journal, report) =
        Journal::open(DirStorage::new(dir.path()).unwrap(), options).unwrap();
    assert_eq!(report.pending, 5);
    assert_eq!(journal.pending(3).unwrap(), written[15..18]);
    assert_eq!(journal.pending(100).unwrap(), written[15..]);
    assert!(!dir.path().join("journal.log.new").exists());
}
