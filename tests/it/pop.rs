//! `ekran pop verify` on real exports: a committed fixture (the export
//! format is a contract with auditors) and exports built here with one
//! defect each.

use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use ekran::pop::{
    AUDIT_FORMAT, AuditBundle, AuditScreen, GENESIS_HASH, Outcome, PlayBody, PlayRecord, seal,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pop")
}

/// The screen keys of the fixture export, from fixed seeds.
fn screen_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn body(screen_id: &str, seq: u64, campaign: &str, outcome: Outcome) -> PlayBody {
    let started_at_ms = 1_781_596_800_000 + seq as i64 * 30_000; // 2026-06-16 local morning
    let duration_ms = if outcome == Outcome::Completed {
        30_000
    } else {
        12_400
    };
    PlayBody {
        screen_id: screen_id.into(),
        seq,
        play_id: format!("{screen_id}-play-{seq}"),
        item_id: format!("{campaign}-clip"),
        campaign: campaign.into(),
        media_sha256: "5d".repeat(32),
        manifest_version: 4,
        started_at_ms,
        ended_at_ms: started_at_ms + duration_ms as i64,
        duration_ms,
        frames_presented: duration_ms / 40,
        frames_dropped: 0,
        outcome,
        stale: false,
    }
}

fn screen_chain(screen_id: &str, key: &SigningKey, plays: &[(&str, Outcome)]) -> Vec<PlayRecord> {
    let mut prev = GENESIS_HASH.to_owned();
    plays
        .iter()
        .enumerate()
        .map(|(index, (campaign, outcome))| {
            let record = seal(
                body(screen_id, index as u64 + 1, campaign, *outcome),
                &prev,
                key,
            )
            .unwrap();
            prev = record.hash.clone();
            record
        })
        .collect()
}

/// Two screens, two campaigns, one interrupted play: the committed fixture.
fn sample_export() -> AuditBundle {
    use Outcome::*;
    let mall = screen_key(11);
    let office = screen_key(12);
    let mut records = screen_chain(
        "dushanbe-mall-01",
        &mall,
        &[
            ("26-june", Completed),
            ("hotline", Completed),
            ("26-june", Interrupted),
        ],
    );
    records.extend(screen_chain(
        "khujand-bc-02",
        &office,
        &[("26-june", Completed), ("26-june", Completed)],
    ));
    AuditBundle {
        format: AUDIT_FORMAT.into(),
        screens: [("dushanbe-mall-01", &mall), ("khujand-bc-02", &office)]
            .into_iter()
            .map(|(screen_id, key)| AuditScreen {
                screen_id: screen_id.into(),
                public_key_pem: key
                    .verifying_key()
                    .to_public_key_pem(Default::default())
                    .unwrap(),
                anchor: None,
            })
            .collect(),
        records,
    }
}

fn write_export(dir: &Path, export: &AuditBundle) -> PathBuf {
    let path = dir.join("export.json");
    std::fs::write(&path, serde_json::to_vec_pretty(export).unwrap()).unwrap();
    path
}

/// Runs `ekran pop verify` and returns (success, stdout + stderr).
fn pop_verify(file: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["pop", "verify"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The tampered fixture: seq 2 of the mall screen edited (duration
/// inflated) without resealing.
fn tampered_export() -> AuditBundle {
    let mut tampered = sample_export();
    tampered.records[1].body.duration_ms = 300_000;
    tampered
}

/// Deterministic signatures: the committed files must equal a fresh build
/// from the seed keys, so a change to canonical bytes, hashing or signing
/// cannot slip by. `EKRAN_WRITE_FIXTURES=1` rewrites them after an
/// intentional format change.
#[test]
fn committed_exports_are_what_the_seed_keys_produce() {
    for (name, export) in [
        ("export-clean.json", sample_export()),
        ("export-tampered.json", tampered_export()),
    ] {
        let path = fixtures().join(name);
        if std::env::var_os("EKRAN_WRITE_FIXTURES").is_some() {
            std::fs::write(&path, serde_json::to_vec_pretty(&export).unwrap()).unwrap();
        }
        let committed: AuditBundle =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(committed, export, "{name} is stale");
    }
}

#[test]
fn clean_export_verifies_with_airtime_summary() {
    let (ok, text) = pop_verify(&fixtures().join("export-clean.json"));
    assert!(ok, "{text}");
    assert!(
        text.contains("screen dushanbe-mall-01: 3 records, 3 verified, complete through seq 3"),
        "{text}"
    );
    assert!(
        text.contains(r#"campaign "26-june": 2 plays (1 completed), 42.4 s verified"#),
        "{text}"
    );
    assert!(
        text.contains("screen khujand-bc-02: 2 records, 2 verified"),
        "{text}"
    );
    assert!(text.contains("OK: every record verified"), "{text}");
}

#[test]
fn tampered_export_fails_naming_the_record() {
    let (ok, text) = pop_verify(&fixtures().join("export-tampered.json"));
    assert!(!ok, "{text}");
    assert!(text.contains("bad hash"), "{text}");
    assert!(text.contains("bad hash: record seq 2: stored"), "{text}");
    assert!(text.contains("NOT verified"), "{text}");
    assert!(text.contains("FAILED"), "{text}");
}

#[test]
fn each_chain_defect_fails_with_its_own_finding() {
    let dir = tempfile::tempdir().unwrap();
    type Defect = fn(&mut AuditBundle);
    let cases: &[(&str, Defect)] = &[
        ("gap: record 2 is missing", |b| {
            b.records.remove(1);
        }),
        ("fork: 2 different records claim seq 2", |b| {
            let key = screen_key(11);
            let mut other = b.records[1].body.clone();
            other.campaign = "hotline-extra".into();
            let forged = seal(other, &b.records[0].hash, &key).unwrap();
            b.records.push(forged);
        }),
        ("reordered: record seq 2 (entry 2) comes after seq 3", |b| {
            b.records.swap(1, 2)
        }),
        ("broken link: record seq 3", |b| {
            let key = screen_key(11);
            let body = b.records[2].body.clone();
            b.records[2] = seal(body, GENESIS_HASH, &key).unwrap();
        }),
        ("bad signature: record seq 1", |b| {
            let stranger = screen_key(99);
            let body = b.records[0].body.clone();
            b.records[0] = seal(body, GENESIS_HASH, &stranger).unwrap();
        }),
        ("lists no public key", |b| b.screens.truncate(1)),
    ];
    for (expected, defect) in cases {
        let mut export = sample_export();
        defect(&mut export);
        let (ok, text) = pop_verify(&write_export(dir.path(), &export));
        assert!(!ok, "{expected}: {text}");
        assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
    }
}

#[test]
fn unreadable_or_foreign_files_are_errors_not_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = pop_verify(&dir.path().join("missing.json"));
    assert!(!ok);
    assert!(text.contains("cannot read"), "{text}");
    let path = dir.path().join("other.json");
    std::fs::write(&path, br#"{"format":"xibo-proof/2","rows":[]}"#).unwrap();
    let (ok, text) = pop_verify(&path);
    assert!(!ok);
    assert!(
        text.contains("unsupported export format \"xibo-proof/2\""),
        "{text}"
    );
}

#[test]
fn json_report_carries_findings_for_tools() {
    let output = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["pop", "verify", "--json"])
        .arg(fixtures().join("export-tampered.json"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mall = &report["screens"][0];
    assert_eq!(mall["screen_id"], "dushanbe-mall-01");
    assert_eq!(mall["chain"]["findings"][0]["kind"], "bad_hash");
    assert_eq!(mall["chain"]["findings"][0]["seq"], 2);
    assert_eq!(mall["chain"]["verified_seqs"], serde_json::json!([1, 3]));
    assert_eq!(mall["chain"]["highest_contiguous"], 1);
}
