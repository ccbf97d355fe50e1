//! SIGKILL of a real process writing the proof-of-play journal
//! (`ekran agent journal-soak`) at random instants, hundreds of times.
//!
//! This shows the journal survives a process dying mid-operation (torn
//! tails, half-done compactions); that unsynced writes are never counted on
//! is shown by the simulated power cuts in `agent_journal`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ekran::agent::journal::{DirStorage, Journal, JournalOptions};
use ekran::pop::Outcome;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::agent_support::{screen_key, verify_chain_from};

/// Runs the journal workload on `dir`, signing with [`screen_key`] (whose
/// PEM file it writes into `dir` once).
fn soak(dir: &Path, extra: &[&str]) -> Child {
    let key_path = dir.join("screen.key");
    if !key_path.exists() {
        ekran::keys::write_signing_key(&key_path, &screen_key()).unwrap();
    }
    Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["agent", "journal-soak", "--key"])
        .arg(&key_path)
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The complete lines of `output` (a kill can cut the last one short).
fn complete_lines(output: &str) -> impl Iterator<Item = &str> {
    output.rfind('\n').map_or("", |end| &output[..end]).lines()
}

#[test]
fn sigkill_at_random_points_loses_no_durable_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut durable = BTreeSet::new();
    let mut acknowledged = 0;
    let mut torn_tails = 0;
    let mut previous_head = 0;
    let mut compactions = 0;
    let mut log_len = 0;
    let started = Instant::now();
    let iterations = 300;
    for iteration in 0..iterations {
        let mut child = soak(dir.path(), &[]);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut output = String::new();
        // One kill in five lands during start-up and recovery; the rest
        // once the journal is open: mid-append, mid-acknowledgement,
        // mid-compaction.
        if rng.gen_bool(0.8) {
            stdout.read_line(&mut output).unwrap();
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..12_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        stdout.read_to_string(&mut output).unwrap();
        let mut last_printed = previous_head;
        for line in complete_lines(&output) {
            match line.split_once(' ') {
                Some(("seq", seq)) => {
                    last_printed = seq.parse::<u64>().unwrap();
                    assert!(durable.insert(last_printed), "seq {seq} printed twice");
                }
                Some(("ack", seq)) => acknowledged = acknowledged.max(seq.parse().unwrap()),
                _ => {}
            }
        }

        let storage = DirStorage::new(dir.path()).unwrap();
        let (mut journal, report) = Journal::open(storage, JournalOptions::default()).unwrap();
        assert_eq!(
            report.corrupt_regions, 0,
            "iteration {iteration}: {report:?}"
        );
        torn_tails += usize::from(report.truncated_tail_bytes > 0);
        assert!(
            journal.acknowledged_seq() >= acknowledged,
            "iteration {iteration}: acknowledgement lost"
        );
        let records = journal.pending(usize::MAX).unwrap();
        let anchor_hash = records
            .first()
            .map_or_else(|| journal.head().hash.clone(), |r| r.prev_hash.clone());
        verify_chain_from(
            &records,
            (journal.acknowledged_seq(), anchor_hash),
            &screen_key(),
        );
        let present: Vec<u64> = records.iter().map(|record| record.body.seq).collect();
        for seq in durable.range(journal.acknowledged_seq() + 1..) {
            assert_eq!(
                present.iter().filter(|&&p| p == *seq).count(),
                1,
                "iteration {iteration}: durable seq {seq} not present exactly once"
            );
        }
        // Nothing beyond what the process could have written: at most one
        // record whose append finished but whose line was never printed.
        assert!(
            journal.head().seq <= last_printed + 1,
            "iteration {iteration}: records out of thin air"
        );
        assert!(
            journal.head().seq >= previous_head,
            "iteration {iteration}: the chain head went back"
        );
        previous_head = journal.head().seq;
        compactions += usize::from(
            std::fs::metadata(dir.path().join("journal.log"))
                .unwrap()
                .len()
                < log_len,
        );
        log_len = std::fs::metadata(dir.path().join("journal.log"))
            .unwrap()
            .len();
    }
    // The kills hit every phase of the workload, not just start-up (the
    // bound is loose: a loaded CI machine appends less per run).
    assert!(
        previous_head >= iterations as u64 / 6,
        "only {previous_head} records written: the kills hardly hit appends"
    );
    assert!(
        acknowledged > 0 && compactions > 0,
        "acknowledgements ({acknowledged}) and compactions ({compactions}) must both be exercised"
    );
    eprintln!(
        "{iterations} kills in {:?}: {} durable records (head {previous_head}), acknowledged up to {acknowledged}, {torn_tails} torn tails repaired, {compactions} runs compacted",
        started.elapsed(),
        durable.len()
    );
}

#[test]
fn sigkill_during_a_play_yields_an_interrupted_record_with_the_last_presented_time() {
    let dir = tempfile::tempdir().unwrap();
    // Two finished plays first, so the interrupted one is seq 3.
    let mut child = soak(dir.path(), &["--ack-every", "0"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while lines.next().unwrap().unwrap() != "seq 2" {}
    child.kill().unwrap();
    child.wait().unwrap();
    let head = {
        let (journal, _) = Journal::open(
            DirStorage::new(dir.path()).unwrap(),
            JournalOptions::default(),
        )
        .unwrap();
        journal.head().seq
    };

    let mut child = soak(dir.path(), &["--checkpoint-only"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_presented = 0;
    let mut checkpoints = 0;
    while checkpoints < 20 {
        let line = lines.next().unwrap().unwrap();
        if let Some(at) = line.strip_prefix("checkpoint ") {
            last_presented = at.parse::<i64>().unwrap();
            checkpoints += 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What it printed between our last read and the kill; a number cut
    // short by the kill is smaller, so `max` ignores it.
    for line in lines.map_while(Result::ok) {
        if let Some(Ok(at)) = line.strip_prefix("checkpoint ").map(str::parse::<i64>) {
            last_presented = last_presented.max(at);
        }
    }

    let (journal, _) = Journal::open(
        DirStorage::new(dir.path()).unwrap(),
        JournalOptions::default(),
    )
    .unwrap();
    let interrupted = journal
        .interrupted_play()
        .expect("the play in progress was checkpointed");
    assert_eq!(interrupted.seq, head + 1);
    assert_eq!(interrupted.outcome, Outcome::Interrupted);
    // The checkpoint after the last printed one may have become durable
    // just before the kill; nothing later can have.
    let frame_ms = 40;
    assert!(
        interrupted.ended_at_ms == last_presented
            || interrupted.ended_at_ms == last_presented + frame_ms,
        "ended at {} but the last presented frame printed was {last_presented}",
        interrupted.ended_at_ms
    );
    assert_eq!(
        interrupted.duration_ms as i64,
        interrupted.ended_at_ms - interrupted.started_at_ms
    );
    drop(journal);

    // The next start turns it into a record, once.
    let mut child = soak(dir.path(), &["--ack-every", "0"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first_seq = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(seq) = line.strip_prefix("seq ") {
            break seq.parse::<u64>().unwrap();
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(first_seq, head + 1);
    let (mut journal, _) = Journal::open(
        DirStorage::new(dir.path()).unwrap(),
        JournalOptions::default(),
    )
    .unwrap();
    let records = journal.pending(usize::MAX).unwrap();
    let record = records
        .iter()
        .find(|record| record.body.seq == head + 1)
        .unwrap();
    assert_eq!(record.body.outcome, Outcome::Interrupted);
    assert_eq!(record.body.ended_at_ms, interrupted.ended_at_ms);
    assert_eq!(
        records
            .iter()
            .filter(|record| record.body.outcome == Outcome::Interrupted)
            .count(),
        1
    );
    assert_eq!(journal.interrupted_play(), None);
}
