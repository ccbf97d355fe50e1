//! Proof-of-play upload against the real server: records appended to the
//! journal are delivered and acknowledged exactly once, also when the
//! server was down while a thousand records piled up (it comes back on the
//! same address and database), and when the box crashed between the
//! server's acknowledgement and its own.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ekran::agent::backoff::Backoff;
use ekran::agent::client::{DeviceClient, ServerClock};
use ekran::agent::enroll;
use ekran::agent::heartbeat::SharedJournal;
use ekran::agent::journal::{DirStorage, Journal, JournalOptions};
use ekran::agent::upload::{PopTransport, UploadError, Uploader};
use ekran::pop::{Outcome, PlayBody};
use ekran::server::auth::{self, Role};
use ekran::server::{AppState, Config};
use serde_json::json;
use sqlx::Row;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::agent_e2e_support::{VENUE, eventually, player_config};

/// A real server on a fixed loopback address over a data dir that outlives it.
struct LocalServer {
    state: AppState,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl LocalServer {
    /// Starts on `address` (port 0: any) with the database in `data_dir`.
    async fn start(data_dir: &Path, address: SocketAddr) -> Self {
        let state = AppState::open(Config::new(data_dir)).await.unwrap();
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = state.clone();
        let task = tokio::spawn(async move {
            ekran::server::serve(serving, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            state,
            address,
            stop: Some(stop),
            task,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }

    /// (count, distinct seqs, max seq) of stored records of `screen`.
    async fn records(&self, screen: &str) -> (i64, i64, i64) {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d, COALESCE(MAX(seq), 0) AS m FROM pop_records WHERE screen_id = $1",
        )
        .bind(screen)
        .fetch_one(self.state.db().pool())
        .await
        .unwrap();
        (row.get("n"), row.get("d"), row.get("m"))
    }

    async fn findings(&self) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM audit_findings")
            .fetch_one(self.state.db().pool())
            .await
            .unwrap()
            .get("n")
    }
}

/// The real HTTP transport, counting its failures.
struct CountingTransport {
    client: DeviceClient,
    failures: Arc<AtomicUsize>,
}

impl PopTransport for CountingTransport {
    async fn upload(&self, batch: &[ekran::pop::PlayRecord]) -> Result<u64, UploadError> {
        let result = self.client.upload(batch).await;
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

/// An enrolled box: its client (sharing the screen key) and an open journal.
struct EnrolledBox {
    client: DeviceClient,
    key: ed25519_dalek::SigningKey,
    screen_id: String,
    journal: SharedJournal,
}

async fn enrolled_box(server: &LocalServer, data_dir: &Path, screen_id: &str) -> EnrolledBox {
    let admin = auth::create_token(server.state.db(), Role::Admin, "admin")
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/api/v1/venues", server.base()))
        .bearer_auth(&admin)
        .json(&json!({"id": VENUE, "timezone": "Europe/Kyiv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let config = player_config(&server.base(), data_dir);
    let key = enroll::load_or_create_screen_key(&config.screen_key_path()).unwrap();
    let client = DeviceClient::new(
        &config.server_url,
        key.clone(),
        Arc::new(ServerClock::system()),
    )
    .unwrap();
    let ekran::agent::client::EnrollAnswer::Pending(pairing) = client.enroll().await.unwrap()
    else {
        panic!("expected a pairing code")
    };
    let approved = http
        .post(format!(
            "{}/api/v1/pairings/{}/approve",
            server.base(),
            pairing.code
        ))
        .bearer_auth(&admin)
        .json(&json!({"venue": VENUE, "screen_id": screen_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 201);
    let storage = DirStorage::new(&config.journal_dir()).unwrap();
    let (journal, _) = Journal::open(storage, JournalOptions::default()).unwrap();
    EnrolledBox {
        client,
        key,
        screen_id: screen_id.to_owned(),
        journal: Arc::new(Mutex::new(journal)),
    }
}

impl EnrolledBox {
    /// Appends `count` completed plays (durably) on a blocking thread.
    async fn append_plays(&self, count: usize) {
        let journal = self.journal.clone();
        let key = self.key.clone();
        let screen_id = self.screen_id.clone();
        tokio::task::spawn_blocking(move || {
            let mut journal = journal.lock().unwrap();
            for n in 0..count {
                let started = jiff::Timestamp::now().as_millisecond();
                let body = PlayBody {
                    screen_id: screen_id.clone(),
                    seq: 0,
                    play_id: format!("play-{}-{n}", journal.head().seq + 1),
                    item_id: "hotline".into(),
                    campaign: "June 26".into(),
                    media_sha256: "ab".repeat(32),
                    manifest_version: 1,
                    started_at_ms: started,
                    ended_at_ms: started + 20_000,
                    duration_ms: 20_000,
                    frames_presented: 500,
                    frames_dropped: 0,
                    outcome: Outcome::Completed,
                    stale: false,
                };
                journal.append_play(body, &key).unwrap();
            }
        })
        .await
        .unwrap();
    }

    fn acked_and_pending(&self) -> (u64, usize) {
        let journal = self.journal.lock().unwrap();
        (journal.acknowledged_seq(), journal.pending_count())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_records_made_while_the_server_was_down_arrive_exactly_once() {
    let server_dir = tempfile::tempdir().unwrap();
    let box_dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(server_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let address = server.address;
    let screen = enrolled_box(&server, box_dir.path(), "scr-offline").await;

    let appended = Arc::new(Notify::new());
    let transport = CountingTransport {
        client: screen.client.clone(),
        failures: Arc::new(AtomicUsize::new(0)),
    };
    let failures = transport.failures.clone();
    let uploader = Uploader::new(screen.journal.clone(), 500);
    let wake = appended.clone();
    let uploading = tokio::spawn(uploader.run(
        transport,
        Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        wake,
        Duration::from_secs(60),
    ));

    screen.append_plays(5).await;
    appended.notify_one();
    eventually(
        Duration::from_secs(20),
        "the first records acknowledged",
        || async { (screen.acked_and_pending() == (5, 0)).then_some(()) },
    )
    .await;
    assert_eq!(server.records("scr-offline").await, (5, 5, 5));

    // The server goes away for a "month"; plays keep being journaled.
    server.stop().await;
    screen.append_plays(1000).await;
    appended.notify_one();
    eventually(Duration::from_secs(20), "an upload failure", || async {
        (failures.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    assert_eq!(
        screen.acked_and_pending(),
        (5, 1000),
        "nothing leaves unacknowledged"
    );

    // It comes back on the same address with the same database.
    let server = LocalServer::start(server_dir.path(), address).await;
    eventually(
        Duration::from_secs(30),
        "the backlog acknowledged",
        || async { (screen.acked_and_pending() == (1005, 0)).then_some(()) },
    )
    .await;
    assert_eq!(server.records("scr-offline").await, (1005, 1005, 1005));
    assert_eq!(server.findings().await, 0, "no gap, fork or bad record");

    uploading.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_server_ack_and_journal_ack_is_harmless() {
    let server_dir = tempfile::tempdir().unwrap();
    let box_dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(server_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let screen = enrolled_box(&server, box_dir.path(), "scr-crash").await;
    screen.append_plays(3).await;

    // The batch reaches the server and is acknowledged there, but the box
    // "crashes" before recording the acknowledgement.
    let batch = screen.journal.lock().unwrap().pending(10).unwrap();
    let ack = screen.client.upload_pop(&batch).await.unwrap();
    assert_eq!((ack.acked_seq, ack.stored), (3, 3));
    assert_eq!(screen.acked_and_pending(), (0, 3));

    // After the restart the same records go again; the server counts them once.
    let uploader = Uploader::new(screen.journal.clone(), 10);
    assert_eq!(uploader.deliver_pending(&screen.client).await.unwrap(), 3);
    assert_eq!(screen.acked_and_pending(), (3, 0));
    assert_eq!(server.records("scr-crash").await, (3, 3, 3));
    assert_eq!(server.findings().await, 0);
    // Nothing left: the next round sends nothing.
    assert_eq!(uploader.deliver_pending(&screen.client).await.unwrap(), 0);
    server.stop().await;
}
