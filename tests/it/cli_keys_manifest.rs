//! `ekran keys …` and `ekran manifest …` through the real binary, and the
//! interop the spec asks for: keys that openssl reads and writes, envelopes
//! that `openssl pkeyutl -verify -rawin` and securesystemslib (an
//! independent DSSE implementation) verify.

// Test helpers outside #[test] fns: a panic is the failure report here.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

const MANIFEST_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dsse/manifest.json"
);
const SECURESYSTEMSLIB_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dsse/verify_securesystemslib.py"
);
/// The venv `.ci/install-deps.sh` creates; `EKRAN_DSSE_PYTHON` overrides it.
const DSSE_VENV_PYTHON: &str = "/opt/ekran-ci-venv/bin/python";

fn ekran(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(args)
        .output()
        .expect("run the ekran binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs ekran and requires success; returns stdout.
fn ekran_ok(args: &[&str]) -> String {
    let output = ekran(args);
    assert!(
        output.status.success(),
        "ekran {args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs ekran and requires failure; returns stderr.
fn ekran_fails(args: &[&str]) -> String {
    let output = ekran(args);
    assert!(
        !output.status.success(),
        "ekran {args:?} succeeded: {}",
        text(&output.stdout)
    );
    text(&output.stderr)
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (.ci/install-deps.sh)")
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Generates a key pair with the binary; returns (dir's key, pub, key id).
fn generate(dir: &Path) -> (PathBuf, PathBuf, String) {
    let stdout = ekran_ok(&["keys", "generate", "--out", path_str(dir)]);
    (
        dir.join("ekran.key"),
        dir.join("ekran.pub"),
        stdout.trim().to_owned(),
    )
}

/// Signs `payload` with the binary and writes the envelope next to it.
fn sign_to_file(keys: &[&Path], payload: &Path, extra: &[&str], out: &Path) {
    let mut args = vec!["manifest", "sign"];
    for key in keys {
        args.extend(["--key", path_str(key)]);
    }
    args.extend_from_slice(extra);
    args.push(path_str(payload));
    fs::write(out, ekran_ok(&args)).unwrap();
}

fn envelope_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn keys_generate_writes_a_pair_openssl_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, key_id) = generate(&dir.path().join("new-subdir"));
    assert_eq!(key_id.len(), 64);
    assert!(
        key_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // openssl derives the same public key from the private key file…
    let derived = openssl(&["pkey", "-in", path_str(&key), "-pubout"]);
    assert!(derived.status.success(), "{}", text(&derived.stderr));
    assert_eq!(text(&derived.stdout), fs::read_to_string(&public).unwrap());
    // …re-encodes the private key to the very same bytes (PKCS#8 v1, as openssl writes)…
    let reencoded = openssl(&["pkey", "-in", path_str(&key)]);
    assert_eq!(text(&reencoded.stdout), fs::read_to_string(&key).unwrap());
    // …and the key id is the SHA-256 of the SPKI DER openssl writes.
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        path_str(&public),
        "-outform",
        "DER",
    ]);
    assert!(der.status.success(), "{}", text(&der.stderr));
    assert_eq!(key_id, hex::encode(Sha256::digest(&der.stdout)));
    assert_eq!(ekran_ok(&["keys", "id", path_str(&public)]).trim(), key_id);
    assert_eq!(ekran_ok(&["keys", "id", path_str(&key)]).trim(), key_id);
}

#[test]
fn keys_generate_refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, first_id) = generate(dir.path());
    let before = fs::read(&key).unwrap();
    let stderr = ekran_fails(&["keys", "generate", "--out", path_str(dir.path())]);
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(fs::read(&key).unwrap(), before, "the old key is untouched");
    let second_id = ekran_ok(&["keys", "generate", "--out", path_str(dir.path()), "--force"]);
    assert_ne!(second_id.trim(), first_id);
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_key_made_by_openssl_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("openssl.key");
    let public = dir.path().join("openssl.pub");
    assert!(
        openssl(&["genpkey", "-algorithm", "ed25519", "-out", path_str(&key)])
            .status
            .success()
    );
    assert!(
        openssl(&[
            "pkey",
            "-in",
            path_str(&key),
            "-pubout",
            "-out",
            path_str(&public)
        ])
        .status
        .success()
    );
    let envelope = dir.path().join("envelope.json");
    sign_to_file(&[&key], Path::new(MANIFEST_FIXTURE), &[], &envelope);
    let summary = ekran_ok(&[
        "manifest",
        "verify",
        "--trust",
        path_str(&public),
        path_str(&envelope),
    ]);
    assert!(summary.contains("envelope OK"), "{summary}");
}

/// The PAE built here by hand from the spec, not with `ekran::dsse::pae`.
fn spec_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(payload);
    pae
}

#[test]
fn an_ekran_envelope_verifies_with_openssl_over_the_pae_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate(dir.path());
    let envelope_path = dir.path().join("envelope.json");
    sign_to_file(&[&key], Path::new(MANIFEST_FIXTURE), &[], &envelope_path);
    let envelope = envelope_json(&envelope_path);
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        payload,
        fs::read(MANIFEST_FIXTURE).unwrap(),
        "payload is the file, byte for byte"
    );
    let pae_path = dir.path().join("pae.bin");
    fs::write(
        &pae_path,
        spec_pae(envelope["payloadType"].as_str().unwrap(), &payload),
    )
    .unwrap();
    let sig = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let sig_path = dir.path().join("sig.bin");

    let openssl_verify = |sig: &[u8]| {
        fs::write(&sig_path, sig).unwrap();
        openssl(&[
            "pkeyutl",
            "-verify",
            "-rawin",
            "-pubin",
            "-inkey",
            path_str(&public),
            "-sigfile",
            path_str(&sig_path),
            "-in",
            path_str(&pae_path),
        ])
    };
    let good = openssl_verify(&sig);
    assert!(
        good.status.success(),
        "openssl rejected: {}{}",
        text(&good.stdout),
        text(&good.stderr)
    );
    assert!(text(&good.stdout).contains("Signature Verified Successfully"));

    // The same check fails for a signature with one bit changed.
    let mut broken = sig.clone();
    broken[10] ^= 0x01;
    assert!(
        !openssl_verify(&broken).status.success(),
        "openssl accepted a broken signature"
    );
}

fn securesystemslib_verify(envelope: &Path, threshold: usize, trusted: &[&Path]) -> Output {
    let python = std::env::var("EKRAN_DSSE_PYTHON").unwrap_or_else(|_| DSSE_VENV_PYTHON.to_owned());
    assert!(
        Path::new(&python).exists(),
        "{python} is missing: run .ci/install-deps.sh (it creates the securesystemslib venv)"
    );
    let mut command = Command::new(python);
    command
        .arg(SECURESYSTEMSLIB_SCRIPT)
        .arg(envelope)
        .arg(threshold.to_string());
    command.args(trusted);
    command.output().expect("run the securesystemslib verifier")
}

#[test]
fn an_ekran_envelope_verifies_with_securesystemslib() {
    let dir = tempfile::tempdir().unwrap();
    let (key_a, pub_a, id_a) = generate(&dir.path().join("a"));
    let (key_b, pub_b, id_b) = generate(&dir.path().join("b"));
    let envelope = dir.path().join("envelope.json");
    sign_to_file(
        &[&key_a, &key_b],
        Path::new(MANIFEST_FIXTURE),
        &[],
        &envelope,
    );

    let output = securesystemslib_verify(&envelope, 2, &[&pub_a, &pub_b]);
    assert!(
        output.status.success(),
        "securesystemslib rejected: {}",
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains(&id_a) && stdout.contains(&id_b), "{stdout}");
    assert!(
        stdout.contains("application/vnd.ekran.manifest+json"),
        "{stdout}"
    );

    // A broken signature is rejected by the independent verifier too.
    let mut value = envelope_json(&envelope);
    let mut sig = STANDARD
        .decode(value["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    sig[0] ^= 0x80;
    value["signatures"][0]["sig"] = STANDARD.encode(&sig).into();
    let broken = dir.path().join("broken.json");
    fs::write(&broken, serde_json::to_vec(&value).unwrap()).unwrap();
    let output = securesystemslib_verify(&broken, 1, &[&pub_a]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn verify_prints_a_manifest_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, key_id) = generate(dir.path());
    let envelope = dir.path().join("envelope.json");
    sign_to_file(&[&key], Path::new(MANIFEST_FIXTURE), &[], &envelope);
    let summary = ekran_ok(&[
        "manifest",
        "verify",
        "--trust",
        path_str(&public),
        path_str(&envelope),
    ]);
    for expected in [
        "application/vnd.ekran.manifest+json",
        &key_id,
        &format!("{} bytes", fs::metadata(MANIFEST_FIXTURE).unwrap().len()),
        "screen dushanbe-lobby-1",
        "version 7",
        "2026-06-01T06:00:00Z",
        "2026-06-08T06:00:00Z",
        "items:        2",
    ] {
        assert!(
            summary.contains(expected),
            "missing {expected:?} in:\n{summary}"
        );
    }
    assert!(summary.lines().count() <= 24, "one screen");
}

#[test]
fn verify_reads_the_envelope_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate(dir.path());
    let envelope = dir.path().join("envelope.json");
    sign_to_file(&[&key], Path::new(MANIFEST_FIXTURE), &[], &envelope);
    let output = Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args(["manifest", "verify", "--trust", path_str(&public), "-"])
        .stdin(fs::File::open(&envelope).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn verify_failures_name_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate(&dir.path().join("signer"));
    let (_, stranger, _) = generate(&dir.path().join("stranger"));
    let good = dir.path().join("good.json");
    sign_to_file(&[&key], Path::new(MANIFEST_FIXTURE), &[], &good);
    let trust = path_str(&public);
    let verify_fails = |envelope: &Path, trust: &str| {
        ekran_fails(&["manifest", "verify", "--trust", trust, path_str(envelope)])
    };

    // Bad signature: the payload changed after signing.
    let mut value = envelope_json(&good);
    let payload = text(&STANDARD.decode(value["payload"].as_str().unwrap()).unwrap());
    let rolled = payload.replace("\"version\": 7", "\"version\": 8");
    assert_ne!(rolled, payload);
    value["payload"] = STANDARD.encode(&rolled).into();
    let tampered = dir.path().join("tampered.json");
    fs::write(&tampered, serde_json::to_vec(&value).unwrap()).unwrap();
    let stderr = verify_fails(&tampered, trust);
    assert!(stderr.contains("bad signature"), "{stderr}");

    // Unknown key: trusting someone else.
    let stderr = verify_fails(&good, path_str(&stranger));
    assert!(stderr.contains("unknown key"), "{stderr}");

    // Wrong payloadType.
    let other_type = dir.path().join("other-type.json");
    sign_to_file(
        &[&key],
        Path::new(MANIFEST_FIXTURE),
        &["--payload-type", "application/vnd.in-toto+json"],
        &other_type,
    );
    let stderr = verify_fails(&other_type, trust);
    assert!(stderr.contains("wrong payloadType"), "{stderr}");

    // Malformed.
    let malformed = dir.path().join("malformed.json");
    fs::write(&malformed, "{\"payloadType\": ").unwrap();
    let stderr = verify_fails(&malformed, trust);
    assert!(stderr.contains("malformed"), "{stderr}");

    // Oversize: refused without being parsed (it is not JSON at all).
    let oversize = dir.path().join("oversize.json");
    fs::write(&oversize, vec![b'{'; ekran::dsse::MAX_ENVELOPE_BYTES + 1]).unwrap();
    let stderr = verify_fails(&oversize, trust);
    assert!(stderr.contains("oversize"), "{stderr}");

    // Each message also names the file.
    assert!(stderr.contains("oversize.json"), "{stderr}");
}

#[test]
fn verify_threshold_counts_distinct_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (key_a, pub_a, _) = generate(&dir.path().join("a"));
    let (key_b, pub_b, _) = generate(&dir.path().join("b"));
    let both = dir.path().join("both.json");
    sign_to_file(&[&key_a, &key_b], Path::new(MANIFEST_FIXTURE), &[], &both);
    let twice_a = dir.path().join("twice-a.json");
    sign_to_file(
        &[&key_a, &key_a],
        Path::new(MANIFEST_FIXTURE),
        &[],
        &twice_a,
    );
    let args = |envelope: &Path| {
        vec![
            "manifest".to_owned(),
            "verify".to_owned(),
            "--trust".to_owned(),
            path_str(&pub_a).to_owned(),
            "--trust".to_owned(),
            path_str(&pub_b).to_owned(),
            "--threshold".to_owned(),
            "2".to_owned(),
            path_str(envelope).to_owned(),
        ]
    };
    let run = |envelope: &Path| {
        ekran(
            &args(envelope)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    };
    let output = run(&both);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("2 distinct trusted key(s) verified"));
    let output = run(&twice_a);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("threshold not met"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn verify_rejects_a_signed_payload_that_is_not_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate(dir.path());
    let payload = dir.path().join("not-a-manifest.json");
    fs::write(&payload, "{\"hello\": \"world\"}").unwrap();
    let envelope = dir.path().join("envelope.json");
    sign_to_file(&[&key], &payload, &[], &envelope);
    let stderr = ekran_fails(&[
        "manifest",
        "verify",
        "--trust",
        path_str(&public),
        path_str(&envelope),
    ]);
    assert!(stderr.contains("not an Ekran manifest"), "{stderr}");
}

#[test]
fn sign_refuses_a_payload_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = generate(dir.path());
    let payload = dir.path().join("broken.json");
    fs::write(&payload, "{\"version\": 7,").unwrap();
    let output = ekran(&[
        "manifest",
        "sign",
        "--key",
        path_str(&key),
        path_str(&payload),
    ]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing signed");
    assert!(
        text(&output.stderr).contains("not valid JSON"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn sign_and_verify_refuse_key_files_of_the_wrong_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = generate(dir.path());
    let stderr = ekran_fails(&[
        "manifest",
        "sign",
        "--key",
        path_str(&public),
        MANIFEST_FIXTURE,
    ]);
    assert!(
        stderr.contains("ekran.pub") && stderr.contains("PKCS#8"),
        "{stderr}"
    );
    let envelope = dir.path().join("envelope.json");
    sign_to_file(&[&key], Path::new(MANIFEST_FIXTURE), &[], &envelope);
    let stderr = ekran_fails(&[
        "manifest",
        "verify",
        "--trust",
        path_str(&key),
        path_str(&envelope),
    ]);
    assert!(
        stderr.contains("ekran.key") && stderr.contains("SubjectPublicKeyInfo"),
        "{stderr}"
    );
}

#[test]
fn every_keys_and_manifest_command_has_help() {
    for args in [
        &["keys", "--help"][..],
        &["keys", "generate", "--help"],
        &["keys", "id", "--help"],
        &["manifest", "--help"],
        &["manifest", "sign", "--help"],
        &["manifest", "verify", "--help"],
    ] {
        let stdout = ekran_ok(args);
        assert!(stdout.contains("Usage: ekran"), "{args:?}: {stdout}");
    }
}
