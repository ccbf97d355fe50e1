//! Proof-of-play delivery: a server that is down for a "month" of records
//! gets every one exactly once when it returns, and a power cut between the
//! server's acknowledgement and the journal's only causes a re-upload that
//! the (idempotent) server absorbs.
//!
//! The transport here is an in-process stand-in with the server's contract
//! (idempotent on seq, acknowledges the highest contiguous seq); the real
//! HTTP transport plugs into the same [`PopTransport`] trait.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ekran::agent::backoff::Backoff;
use ekran::agent::journal::{Journal, JournalOptions};
use ekran::agent::upload::{PopTransport, UploadError, Uploader};
use ekran::pop::{self, PlayRecord};
use tokio::sync::Notify;

use super::agent_journal::{Cut, FaultFs};
use super::agent_support::{play_body, screen_key};

/// The server side of the contract.
#[derive(Default)]
struct Server {
    records: Mutex<BTreeMap<u64, PlayRecord>>,
    /// Requests still to fail ("down").
    down_for: AtomicUsize,
    requests: AtomicUsize,
    duplicates: AtomicUsize,
    /// Called after a batch is stored, before the answer reaches the box.
    after_store: Mutex<Option<Box<dyn FnMut() + Send>>>,
}

impl PopTransport for &Server {
    async fn upload(&self, batch: &[PlayRecord]) -> Result<u64, UploadError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.down_for.load(Ordering::SeqCst) > 0 {
            self.down_for.fetch_sub(1, Ordering::SeqCst);
            return Err(UploadError::Transport("503 Service Unavailable".into()));
        }
        let acknowledged = {
            let mut records = self.records.lock().unwrap();
            for record in batch {
                match records.get(&record.body.seq) {
                    Some(stored) => {
                        assert_eq!(stored, record, "a re-upload must be the same record");
                        self.duplicates.fetch_add(1, Ordering::SeqCst);
                    }
                    None => {
                        records.insert(record.body.seq, record.clone());
                    }
                }
            }
            (1..)
                .take_while(|seq| records.contains_key(seq))
                .last()
                .unwrap_or(0)
        };
        if let Some(hook) = self.after_store.lock().unwrap().as_mut() {
            hook();
        }
        Ok(acknowledged)
    }
}

fn fill(journal: &mut Journal<FaultFs>, count: u64) {
    let key = screen_key();
    for n in 1..=count {
        journal.append_play(play_body(n), &key).unwrap();
    }
}

fn assert_delivered_exactly_once(server: &Server, count: u64) {
    let records: Vec<PlayRecord> = server.records.lock().unwrap().values().cloned().collect();
    assert_eq!(records.len() as u64, count);
    let report = pop::verify_chain(&records, &screen_key().verifying_key(), None);
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.highest_contiguous, count);
}

#[tokio::test]
async fn a_month_offline_is_delivered_exactly_once_when_the_server_returns() {
    // A month of 15-minute loops on a quiet screen, compressed: 3,000 records.
    const RECORDS: u64 = 3000;
    let fs = FaultFs::default();
    let (mut journal, _) = Journal::open(fs.clone(), JournalOptions::default()).unwrap();
    fill(&mut journal, RECORDS);
    let journal = Arc::new(Mutex::new(journal));
    let server = Arc::new(Server {
        down_for: AtomicUsize::new(40),
        ..Server::default()
    });

    let uploader = Uploader::new(journal.clone(), 500);
    let backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(4));
    let wake = Arc::new(Notify::new());
    let task_server = server.clone();
    let task = tokio::spawn(async move {
        let server: &Server = &task_server;
        uploader
            .run(server, backoff, wake, Duration::from_secs(60))
            .await;
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while journal.lock().unwrap().pending_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();

    assert_delivered_exactly_once(&server, RECORDS);
    assert_eq!(server.duplicates.load(Ordering::SeqCst), 0);
    assert!(
        server.requests.load(Ordering::SeqCst) >= 40 + 6,
        "retried through the outage"
    );
    let journal = journal.lock().unwrap();
    assert_eq!(journal.acknowledged_seq(), RECORDS);
    assert_eq!(
        journal.head().seq,
        RECORDS,
        "the chain head survives the records leaving"
    );
}

#[tokio::test]
async fn power_cut_between_server_and_journal_acknowledgement_only_resends() {
    const RECORDS: u64 = 1200;
    let fs = FaultFs::default();
    let (mut journal, _) = Journal::open(fs.clone(), JournalOptions::default()).unwrap();
    fill(&mut journal, RECORDS);
    let journal = Arc::new(Mutex::new(journal));
    let server = Server::default();
    // The power goes right after the server stored the second batch:
    // the journal's acknowledgement never reaches the disk.
    let batches = Arc::new(AtomicUsize::new(0));
    let (hook_fs, hook_batches) = (fs.clone(), batches.clone());
    *server.after_store.lock().unwrap() = Some(Box::new(move || {
        if hook_batches.fetch_add(1, Ordering::SeqCst) == 1 {
            hook_fs.state().ops_until_power_cut = Some(0);
        }
    }));

    let error = Uploader::new(journal.clone(), 500)
        .deliver_pending(&&server)
        .await
        .unwrap_err();
    assert!(matches!(error, UploadError::Journal(_)), "{error}");
    drop(journal);
    fs.power_cut(Cut::DropUnsynced);
    *server.after_store.lock().unwrap() = None;

    // After the reboot the second batch is pending again and goes out again.
    let (journal, report) = Journal::open(fs.clone(), JournalOptions::default()).unwrap();
    assert_eq!(journal.acknowledged_seq(), 500);
    assert_eq!(report.pending, 700);
    let journal = Arc::new(Mutex::new(journal));
    let delivered = Uploader::new(journal.clone(), 500)
        .deliver_pending(&&server)
        .await
        .unwrap();
    assert_eq!(delivered, 700);
    assert_eq!(
        server.duplicates.load(Ordering::SeqCst),
        500,
        "the unacknowledged batch was sent twice"
    );
    assert_delivered_exactly_once(&server, RECORDS);
    assert_eq!(journal.lock().unwrap().pending_count(), 0);
}

#[tokio::test]
async fn server_acknowledging_the_impossible_is_not_believed() {
    struct Liar;
    impl PopTransport for Liar {
        async fn upload(&self, batch: &[PlayRecord]) -> Result<u64, UploadError> {
            Ok(batch.last().unwrap().body.seq + 10)
        }
    }
    let (mut journal, _) = Journal::open(FaultFs::default(), JournalOptions::default()).unwrap();
    fill(&mut journal, 5);
    let journal = Arc::new(Mutex::new(journal));
    let error = Uploader::new(journal.clone(), 500)
        .deliver_pending(&Liar)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            UploadError::AckBeyondBatch {
                acknowledged: 15,
                last_sent: 5
            }
        ),
        "{error}"
    );
    assert_eq!(
        journal.lock().unwrap().pending_count(),
        5,
        "nothing leaves the journal"
    );
}
