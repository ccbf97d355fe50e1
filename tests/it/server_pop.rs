//! Proof-of-play ingest (verified, stored once per (screen, seq) under
//! concurrent and repeated uploads, chained, findings for gaps, forks and
//! bad signatures) and airtime reports from the rollups, on both backends.

use ekran::pop::{GENESIS_HASH, Outcome, PlayBody, PlayRecord, seal};
use ekran::server::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::server_support::{Backend, TestDevice, TestServer, error_message};

both_backends!(
    auditor_export_verifies_offline,
    batches_are_stored_once_even_when_uploaded_concurrently,
    gaps_forks_and_bad_signatures_become_findings,
    a_record_linking_to_the_wrong_predecessor_is_a_broken_link,
    airtime_report_counts_local_days_and_verified_share,
    a_fleet_uploading_at_once_is_stored_and_counted_once,
    rollups_of_a_batch_spanning_many_cells_match_the_records,
    findings_deep_inside_a_large_batch_and_gap_closing,
    a_batch_of_scattered_seqs_finds_its_stored_records,
    an_upload_refused_partway_through_stores_nothing,
    a_replayed_upload_is_refused_even_while_the_first_is_being_stored,
);

/// 2026-11-28T21:30:00Z: 23:30 in Kyiv, so plays from here cross local midnight.
const EVENING_MS: i64 = 1_795_901_400_000;

/// Sealed records `1..=count` of one screen, each `duration_ms` long, back to back.
fn chain(device: &TestDevice, count: u64, start_ms: i64, duration_ms: u64) -> Vec<PlayRecord> {
    let screen_id = device.screen_id.clone().unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    (1..=count)
        .map(|seq| {
            let started = start_ms + (seq as i64 - 1) * duration_ms as i64;
            let body = PlayBody {
                screen_id: screen_id.clone(),
                seq,
                play_id: format!("play-{seq}"),
                item_id: "udhr/clip".into(),
                campaign: if seq % 2 == 0 {
                    "Campaign B".into()
                } else {
                    "Campaign A".into()
                },
                media_sha256: "ab".repeat(32),
                manifest_version: 2,
                started_at_ms: started,
                ended_at_ms: started + duration_ms as i64,
                duration_ms,
                frames_presented: duration_ms / 40,
                frames_dropped: 0,
                outcome: if seq % 5 == 0 {
                    Outcome::Interrupted
                } else {
                    Outcome::Completed
                },
                stale: false,
            };
            let record = seal(body, &prev, &device.key).unwrap();
            prev = record.hash.clone();
            record
        })
        .collect()
}

/// Seals `bodies` as one screen's chain from genesis (their seqs renumbered 1..).
fn seal_chain(device: &TestDevice, bodies: impl IntoIterator<Item = PlayBody>) -> Vec<PlayRecord> {
    let mut prev = GENESIS_HASH.to_owned();
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, mut body)| {
            body.seq = index as u64 + 1;
            let record = seal(body, &prev, &device.key).unwrap();
            prev = record.hash.clone();
            record
        })
        .collect()
}

async fn upload(
    server: &TestServer,
    device: &TestDevice,
    records: &[PlayRecord],
) -> reqwest::Response {
    let body = serde_json::to_vec(records).unwrap();
    device
        .send(server, "POST", "/api/v1/device/pop", &body)
        .await
}

async fn ack(server: &TestServer, device: &TestDevice, records: &[PlayRecord]) -> Value {
    let response = upload(server, device, records).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn findings(server: &TestServer) -> Vec<Value> {
    server
        .client
        .get(server.url("/api/v1/audit/findings"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn stored_count(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM pop_records")
        .fetch_one(server.state.db().pool())
        .await
        .unwrap()
}

async fn batches_are_stored_once_even_when_uploaded_concurrently(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 40, EVENING_MS, 30_000);

    // The same batch five times at once, then once more.
    let uploads = (0..5).map(|_| ack(&server, &device, &records));
    let acks = futures_util::future::join_all(uploads).await;
    let stored: u64 = acks.iter().map(|a| a["stored"].as_u64().unwrap()).sum();
    assert_eq!(stored, 40, "{acks:?}");
    for a in &acks {
        assert_eq!(a["acked_seq"], 40);
        assert_eq!(
            a["stored"].as_u64().unwrap() + a["duplicates"].as_u64().unwrap(),
            40
        );
    }
    let again = ack(&server, &device, &records).await;
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(40))
    );
    assert_eq!(stored_count(&server).await, 40);
    assert!(findings(&server).await.is_empty());

    // Rollups count each play once.
    let plays: i64 = sqlx::query_scalar("SELECT CAST(SUM(plays) AS BIGINT) FROM airtime_daily")
        .fetch_one(server.state.db().pool())
        .await
        .unwrap();
    assert_eq!(plays, 40);

    // Records claiming another screen are refused whole.
    let stranger = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-2").await;
    let response = upload(&server, &stranger, &records[..1]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("kyiv-silpo-1"));
    let response = stranger
        .send(&server, "POST", "/api/v1/device/pop", b"{not json")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

async fn gaps_forks_and_bad_signatures_become_findings(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 10, EVENING_MS, 30_000);

    assert_eq!(ack(&server, &device, &records[..3]).await["acked_seq"], 3);
    // 4 and 5 missing.
    let reply = ack(&server, &device, &records[5..8]).await;
    assert_eq!(reply["acked_seq"], 3);
    assert_eq!(reply["stored"], 3);
    let open = findings(&server).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "gap");
    assert_eq!(open[0]["seq"], 4);
    assert!(open[0]["resolved_at_ms"].is_null());

    // The missing records arrive: the chain closes, the gap is resolved.
    assert_eq!(ack(&server, &device, &records[3..5]).await["acked_seq"], 8);
    let after = findings(&server).await;
    assert!(after[0]["resolved_at_ms"].as_i64().is_some(), "{after:?}");

    // A different record for a stored seq: a fork, refused.
    let mut forged = chain(&device, 2, EVENING_MS + 1, 30_000);
    let fork = forged.remove(1);
    let reply = ack(&server, &device, std::slice::from_ref(&fork)).await;
    assert_eq!(reply["rejected"], 1);
    assert_eq!(reply["findings"][0]["kind"], "fork");

    // Signed by another key: bad signature, not stored.
    let impostor = TestDevice {
        key: TestDevice::new().key,
        screen_id: device.screen_id.clone(),
    };
    let foreign = chain(&impostor, 9, EVENING_MS, 30_000).pop().unwrap();
    let reply = ack(&server, &device, std::slice::from_ref(&foreign)).await;
    assert_eq!(reply["findings"][0]["kind"], "bad_signature");
    assert_eq!(reply["acked_seq"], 8);

    // Tampered after sealing: bad hash.
    let mut tampered = records[8].clone();
    tampered.body.duration_ms *= 10;
    let reply = ack(&server, &device, std::slice::from_ref(&tampered)).await;
    assert_eq!(reply["findings"][0]["kind"], "bad_hash");

    // The real 9 and 10 still chain on.
    assert_eq!(ack(&server, &device, &records[8..]).await["acked_seq"], 10);
    assert_eq!(stored_count(&server).await, 10);
    let kinds: Vec<String> = findings(&server)
        .await
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in ["gap", "fork", "bad_signature", "bad_hash"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    server.stop().await;
}

/// A record signed by the screen but chained to the wrong predecessor is
/// stored (it is the screen's own statement) but the verified chain head
/// stops before it, and a broken-link finding says where.
async fn a_record_linking_to_the_wrong_predecessor_is_a_broken_link(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 6, EVENING_MS, 30_000);
    let relinked =
        |index: usize, prev: &str| seal(records[index].body.clone(), prev, &device.key).unwrap();

    // Alone, after the head: seq 4 links to record 2 instead of 3.
    assert_eq!(ack(&server, &device, &records[..3]).await["acked_seq"], 3);
    let wrong = relinked(3, &records[1].hash);
    let reply = ack(&server, &device, std::slice::from_ref(&wrong)).await;
    assert_eq!(
        (reply["stored"].as_u64(), reply["acked_seq"].as_u64()),
        (Some(1), Some(3)),
        "{reply}"
    );
    assert_eq!(reply["findings"].as_array().unwrap().len(), 1, "{reply}");
    assert_eq!(reply["findings"][0]["kind"], "broken_link", "{reply}");
    assert_eq!(reply["findings"][0]["seq"], 4, "{reply}");
    // The record that does link is now a different record for a stored seq.
    let reply = ack(&server, &device, &records[3..4]).await;
    assert_eq!(reply["findings"][0]["kind"], "fork", "{reply}");
    assert_eq!(reply["acked_seq"], 3, "{reply}");

    // Inside a batch: seq 3 of another screen links to genesis, 4 to the real 3.
    let other = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-2").await;
    let theirs = chain(&other, 4, EVENING_MS, 30_000);
    let mut batch = theirs.clone();
    batch[2] = seal(theirs[2].body.clone(), GENESIS_HASH, &other.key).unwrap();
    let reply = ack(&server, &other, &batch).await;
    assert_eq!(
        (reply["stored"].as_u64(), reply["acked_seq"].as_u64()),
        (Some(4), Some(2)),
        "{reply}"
    );
    let kinds: Vec<(&str, u64)> = reply["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("broken_link", 3)], "{reply}");
    server.stop().await;
}

async fn airtime_report_counts_local_days_and_verified_share(backend: Backend) {
    let server = TestServer::start(backend).await;
    let one = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let two = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-2").await;
    // 6 plays of 10 minutes from 23:30 Kyiv: 3 start on the 28th, 3 on the 29th.
    let first = chain(&one, 6, EVENING_MS, 600_000);
    ack(&server, &one, &first).await;
    // Screen two: seq 1 is missing, so its records are stored but unverified.
    let second = chain(&two, 2, EVENING_MS, 600_000);
    assert_eq!(ack(&server, &two, &second[1..]).await["acked_seq"], 0);

    let viewer = server.token(Role::Viewer).await;
    let report = |query: &str| {
        server
            .client
            .get(server.url(&format!("/api/v1/reports/airtime?{query}")))
            .bearer_auth(&viewer)
            .send()
    };
    let rows: Vec<Value> = report("from=2026-11-28&to=2026-11-29")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let find = |day: &str, campaign: &str| {
        rows.iter()
            .find(|r| r["day"] == day && r["campaign"] == campaign)
            .unwrap_or_else(|| panic!("{day} {campaign} in {rows:?}"))
            .clone()
    };
    // 28th: seqs 1 (A), 2 (B), 3 (A) of screen one; seq 2 (B) of screen two.
    let a28 = find("2026-11-28", "Campaign A");
    assert_eq!(a28["plays"], 2);
    assert_eq!(a28["seconds"], 1200.0);
    assert_eq!(a28["screens"], 1);
    assert_eq!(a28["verified_share"], 1.0);
    let b28 = find("2026-11-28", "Campaign B");
    assert_eq!(b28["plays"], 2);
    assert_eq!(b28["screens"], 2);
    assert_eq!(b28["verified_plays"], 1);
    assert_eq!(b28["verified_share"], 0.5);
    // 29th: seqs 4 (B), 5 (A, interrupted), 6 (B).
    let a29 = find("2026-11-29", "Campaign A");
    assert_eq!(
        (a29["plays"].as_u64(), a29["completed_plays"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(find("2026-11-29", "Campaign B")["plays"], 2);

    // Screen two's missing record arrives: everything is verified now.
    ack(&server, &two, &second[..1]).await;
    let rows: Vec<Value> = report("from=2026-11-28&to=2026-11-28&campaign=Campaign%20B")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["verified_share"], 1.0);

    let csv = report("from=2026-11-28&to=2026-11-29&format=csv")
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "day,venue,campaign,seconds,plays,completed_plays,screens,verified_seconds,verified_plays,verified_share"
    );
    assert!(
        lines.any(|l| l.starts_with("2026-11-29,kyiv-1,Campaign A,600.0,1,0,1,")),
        "{text}"
    );

    let response = report("from=2026-11-29&to=2026-11-28").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = report("from=yesterday&to=2026-11-28").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = server
        .client
        .get(server.url("/api/v1/reports/airtime?from=2026-11-28&to=2026-11-28"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let _ = json!({});
    server.stop().await;
}

async fn auditor_export_verifies_offline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    // 6 plays from 23:30 Kyiv on the 28th: 1-3 on the 28th, 4-6 on the 29th.
    ack(&server, &device, &chain(&device, 6, EVENING_MS, 600_000)).await;
    let viewer = server.token(Role::Viewer).await;
    let export = server
        .client
        .get(server.url("/api/v1/audit/export?from=2026-11-29&to=2026-11-29&campaign=Campaign%20B"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    let bytes = export.bytes().await.unwrap();
    let bundle = ekran::pop::AuditBundle::from_json(&bytes).unwrap();
    // Campaign B played seqs 4 and 6 that day: 4..=6 are exported, anchored at 3.
    let seqs: Vec<u64> = bundle.records.iter().map(|r| r.body.seq).collect();
    assert_eq!(seqs, [4, 5, 6]);
    assert_eq!(bundle.screens[0].anchor.as_ref().unwrap().seq, 3);
    let report = ekran::pop::verify_bundle(&bundle);
    assert!(report.is_clean(), "{report:?}");

    // The partner's side: the CLI verifies the file offline.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    std::fs::write(&file, &bytes).unwrap();
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["pop", "verify"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // A record altered in the file is caught.
    let tampered = String::from_utf8(bytes.to_vec()).unwrap().replacen(
        "\"duration_ms\":600000",
        "\"duration_ms\":6000000",
        1,
    );
    std::fs::write(&file, tampered).unwrap();
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["pop", "verify"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!verify.status.success());
    server.stop().await;
}

/// `SUM(column)` over the airtime rollups of one screen (0 when none).
async fn rollup_sum(server: &TestServer, column: &str, screen: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!(
        "SELECT CAST(COALESCE(SUM({column}), 0) AS BIGINT) FROM airtime_daily WHERE screen_id = $1"
    ))
    .bind(screen)
    .fetch_one(server.state.db().pool())
    .await
    .unwrap()
}

async fn a_fleet_uploading_at_once_is_stored_and_counted_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut fleet = Vec::new();
    for index in 0..4 {
        let device =
            TestDevice::enroll_approved(&server, "kyiv-1", &[], &format!("fleet-{index}")).await;
        let records = chain(&device, 150, EVENING_MS, 60_000);
        fleet.push((device, records));
    }
    // Every screen at once, each its own chain batch after batch; every
    // batch is sent twice at the same moment (a retry racing the original).
    let uploads = fleet.iter().map(|(device, records)| {
        let server = &server;
        async move {
            let mut stored = 0;
            for batch in records.chunks(50) {
                let (one, two) =
                    tokio::join!(ack(server, device, batch), ack(server, device, batch));
                for reply in [&one, &two] {
                    assert_eq!(
                        reply["stored"].as_u64().unwrap() + reply["duplicates"].as_u64().unwrap(),
                        50,
                        "{reply}"
                    );
                    assert_eq!(reply["rejected"], 0, "{reply}");
                }
                stored += one["stored"].as_u64().unwrap() + two["stored"].as_u64().unwrap();
                assert_eq!(
                    one["acked_seq"].as_u64().max(two["acked_seq"].as_u64()),
                    batch.last().map(|r| r.body.seq)
                );
            }
            stored
        }
    });
    let stored = futures_util::future::join_all(uploads).await;
    assert_eq!(stored, [150; 4]);
    assert_eq!(stored_count(&server).await, 600);
    assert!(findings(&server).await.is_empty());
    for (device, records) in &fleet {
        let screen = device.screen_id.as_deref().unwrap();
        assert_eq!(rollup_sum(&server, "plays", screen).await, 150);
        assert_eq!(rollup_sum(&server, "verified_plays", screen).await, 150);
        let completed = records
            .iter()
            .filter(|r| r.body.outcome == Outcome::Completed)
            .count() as i64;
        assert_eq!(
            rollup_sum(&server, "completed_plays", screen).await,
            completed
        );
        assert_eq!(
            rollup_sum(&server, "verified_duration_ms", screen).await,
            150 * 60_000
        );
    }
    server.stop().await;
}

async fn rollups_of_a_batch_spanning_many_cells_match_the_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    // 400 plays, 6 hours apart, over 11 campaigns: about 100 local days and
    // 400 distinct (campaign, day) cells, more than one upsert statement holds.
    let bodies = chain(&device, 400, EVENING_MS, 1_000)
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let mut body = record.body;
            body.campaign = format!("Campaign {}", index % 11);
            body.started_at_ms = EVENING_MS + index as i64 * 6 * 3_600_000;
            body.ended_at_ms = body.started_at_ms + 1_000 + index as i64;
            body.duration_ms = 1_000 + index as u64;
            body
        });
    let records = seal_chain(&device, bodies);
    // Seq 1 held back: the first upload is stored but not yet verified.
    let reply = ack(&server, &device, &records[1..]).await;
    assert_eq!(
        (reply["stored"].as_u64(), reply["acked_seq"].as_u64()),
        (Some(399), Some(0))
    );
    let screen = device.screen_id.as_deref().unwrap();
    assert_eq!(rollup_sum(&server, "plays", screen).await, 399);
    assert_eq!(rollup_sum(&server, "verified_plays", screen).await, 0);
    let reply = ack(&server, &device, &records[..1]).await;
    assert_eq!(reply["acked_seq"], 400);

    // Every rollup cell equals the same figures computed from the records.
    let pool = server.state.db().pool();
    let from_records: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT campaign, day, CAST(SUM(duration_ms) AS BIGINT), COUNT(*), \
         CAST(SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END) AS BIGINT) \
         FROM pop_records GROUP BY campaign, day ORDER BY campaign, day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let rollups: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT campaign, day, duration_ms, plays, completed_plays FROM airtime_daily \
         WHERE duration_ms = verified_duration_ms AND plays = verified_plays ORDER BY campaign, day",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(from_records.len() > 300, "{} cells", from_records.len());
    assert_eq!(rollups, from_records);
    server.stop().await;
}

async fn findings_deep_inside_a_large_batch_and_gap_closing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 300, EVENING_MS, 30_000);

    // One batch: seq 120 tampered, seq 200 sent a second time late in the
    // batch with other content (signed, but a fork of the first).
    let mut batch = records[..250].to_vec();
    batch[119].body.duration_ms += 1;
    let mut forged = records[199].clone();
    forged.body.play_id = "forged".into();
    let forged = seal(forged.body, &forged.prev_hash, &device.key).unwrap();
    batch.push(forged);
    // Seq 150 arrives first with a signature by another key, then as
    // itself: the first copy is refused, the genuine one stored (the
    // server writes rows ahead of their checks; this one must be replaced).
    let impostor = TestDevice::new();
    let foreign = seal(
        records[149].body.clone(),
        &records[149].prev_hash,
        &impostor.key,
    )
    .unwrap();
    assert_eq!(foreign.hash, records[149].hash);
    batch.insert(149, foreign);
    let reply = ack(&server, &device, &batch).await;
    assert_eq!(reply["acked_seq"], 119, "{reply}");
    assert_eq!(
        (reply["stored"].as_u64(), reply["rejected"].as_u64()),
        (Some(249), Some(3))
    );
    let kinds: Vec<(String, u64)> = reply["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("bad_hash", 120),
        ("bad_signature", 150),
        ("fork", 200),
        ("gap", 120),
    ] {
        assert!(
            kinds.contains(&(expected.0.to_owned(), expected.1)),
            "{expected:?} in {kinds:?}"
        );
    }
    let screen = device.screen_id.as_deref().unwrap();
    // What is stored are the records as sealed: the genuine 150, no 120.
    let stored: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, signature FROM pop_records WHERE seq IN (120, 150) ORDER BY seq",
    )
    .fetch_all(server.state.db().pool())
    .await
    .unwrap();
    assert_eq!(stored, [(150, records[149].signature.clone())]);
    assert_eq!(rollup_sum(&server, "plays", screen).await, 249);
    assert_eq!(rollup_sum(&server, "verified_plays", screen).await, 119);

    // Records beyond the stored ones arrive first, then the missing one:
    // the gap at 120 closes (resolved), the head runs through everything
    // stored, and a new gap opens before the later records.
    ack(&server, &device, &records[280..]).await;
    let reply = ack(&server, &device, &records[119..120]).await;
    assert_eq!(reply["acked_seq"], 250, "{reply}");
    let open: Vec<u64> = findings(&server)
        .await
        .iter()
        .filter(|f| f["kind"] == "gap" && f["resolved_at_ms"].is_null())
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(open, [251]);
    assert_eq!(rollup_sum(&server, "verified_plays", screen).await, 250);

    // The rest closes the chain, resolving the last gap; nothing is counted twice.
    let reply = ack(&server, &device, &records[200..]).await;
    assert_eq!(reply["acked_seq"], 300, "{reply}");
    assert!(
        findings(&server)
            .await
            .iter()
            .filter(|f| f["kind"] == "gap")
            .all(|f| f["resolved_at_ms"].as_i64().is_some())
    );
    assert_eq!(stored_count(&server).await, 300);
    assert_eq!(rollup_sum(&server, "plays", screen).await, 300);
    assert_eq!(rollup_sum(&server, "verified_plays", screen).await, 300);
    server.stop().await;
}

/// A batch whose seqs lie far apart (an agent resending a few old records
/// with new ones) is matched against what is stored record by record:
/// identical ones are duplicates, a different one a fork, the rest stored.
async fn a_batch_of_scattered_seqs_finds_its_stored_records(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 300, EVENING_MS, 30_000);
    let scattered: Vec<PlayRecord> = records[..5]
        .iter()
        .chain(&records[295..])
        .cloned()
        .collect();
    let reply = ack(&server, &device, &scattered).await;
    assert_eq!(
        (reply["stored"].as_u64(), reply["acked_seq"].as_u64()),
        (Some(10), Some(5)),
        "{reply}"
    );

    let mut forged = records[297].clone();
    forged.body.play_id = "forged".into();
    let forged = seal(forged.body, &forged.prev_hash, &device.key).unwrap();
    let mut again = scattered.clone();
    again.push(records[5].clone());
    again.push(forged.clone());
    let reply = ack(&server, &device, &again).await;
    assert_eq!(
        (
            reply["stored"].as_u64(),
            reply["duplicates"].as_u64(),
            reply["rejected"].as_u64(),
            reply["acked_seq"].as_u64()
        ),
        (Some(1), Some(10), Some(1), Some(6)),
        "{reply}"
    );
    let forks: Vec<&Value> = reply["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "fork")
        .collect();
    assert_eq!(forks.len(), 1, "{reply}");
    assert_eq!(forks[0]["seq"], 298);
    assert!(
        forks[0]["detail"].as_str().unwrap().contains(&forged.hash),
        "{reply}"
    );
    assert_eq!(stored_count(&server).await, 11);
    server.stop().await;
}

/// The server reads an upload record by record and starts checking the
/// first ones before the rest is read. An upload refused partway through
/// (a malformed record, one naming another screen, one record over the
/// limit, trailing garbage) is refused whole: 4xx naming the problem,
/// nothing stored, and the next good upload goes through.
async fn an_upload_refused_partway_through_stores_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 100, EVENING_MS, 30_000);
    let array = |records: &[PlayRecord]| serde_json::to_string(records).unwrap();
    let send = |body: Vec<u8>| {
        let (server, device) = (&server, &device);
        async move {
            let response = device
                .send(server, "POST", "/api/v1/device/pop", &body)
                .await;
            (response.status(), error_message(response).await)
        }
    };

    // Record 100 is not a record (seq is text), after three chunks went to the checks.
    let good = array(&records[..99]);
    let body = format!("{},{{\"seq\":\"100\"}}]", &good[..good.len() - 1]);
    let (status, message) = send(body.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
    assert!(message.contains("invalid proof-of-play batch"), "{message}");

    // Record 71 names another screen.
    let mut foreign = records[..80].to_vec();
    foreign[70].body.screen_id = "kyiv-silpo-2".into();
    let (status, message) = send(array(&foreign).into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
    assert!(
        message.contains("record seq 71 names screen \"kyiv-silpo-2\""),
        "{message}"
    );

    // A well-formed array followed by more text.
    let (status, message) = send(format!("{} []", array(&records)).into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
    assert!(message.contains("trailing characters"), "{message}");

    // One record over the limit (the records need not verify: the count is
    // refused while reading).
    let limit = ekran::server::ingest::MAX_BATCH_RECORDS;
    let oversize: Vec<PlayRecord> = (1..=limit as u64 + 1)
        .map(|seq| {
            let mut record = records[(seq as usize - 1) % records.len()].clone();
            record.body.seq = seq;
            record
        })
        .collect();
    let (status, message) = send(array(&oversize).into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{message}");
    assert!(
        message.contains(&format!("over the limit of {limit} records")),
        "{message}"
    );

    // Signed for another body: refused for the signature (401) whatever the
    // body holds, even while valid records were being read (the body is
    // parsed while the signature is checked).
    let signed_for = |signed: &[u8], sent: Vec<u8>| {
        let header = device.authorization("POST", "/api/v1/device/pop", signed);
        let request = server
            .client
            .post(server.url("/api/v1/device/pop"))
            .header("authorization", header)
            .body(sent);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), error_message(response).await)
        }
    };
    let valid = array(&records).into_bytes();
    for sent in [
        valid.clone(),
        b"{not json".to_vec(),
        array(&foreign).into_bytes(),
        array(&oversize).into_bytes(),
    ] {
        let (status, message) = signed_for(&valid[..valid.len() - 1], sent).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{message}");
        assert!(message.contains("does not verify"), "{message}");
    }

    assert_eq!(stored_count(&server).await, 0);
    assert!(findings(&server).await.is_empty());
    let reply = ack(&server, &device, &records).await;
    assert_eq!(
        (reply["stored"].as_u64(), reply["acked_seq"].as_u64()),
        (Some(100), Some(100)),
        "{reply}"
    );
    server.stop().await;
}

/// The upload spends its request's nonce in the transaction that stores
/// its records: of the same signed request sent several times at once,
/// exactly one is stored and the others are refused as replays.
async fn a_replayed_upload_is_refused_even_while_the_first_is_being_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let records = chain(&device, 300, EVENING_MS, 30_000);
    let body = serde_json::to_vec(&records).unwrap();
    let header = device.authorization("POST", "/api/v1/device/pop", &body);
    let send = || {
        let request = server
            .client
            .post(server.url("/api/v1/device/pop"))
            .header("authorization", header.clone())
            .body(body.clone());
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    let answers = futures_util::future::join_all((0..4).map(|_| send())).await;
    let accepted: Vec<&(StatusCode, String)> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    let ack: Value = serde_json::from_str(&accepted[0].1).unwrap();
    assert_eq!(
        (ack["stored"].as_u64(), ack["acked_seq"].as_u64()),
        (Some(300), Some(300)),
        "{ack}"
    );
    for (status, text) in answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::OK)
    {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{text}");
        assert!(text.contains("replayed"), "{text}");
    }
    let (status, text) = send().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(stored_count(&server).await, 300);
    assert!(findings(&server).await.is_empty());
    server.stop().await;
}
