//! DSSE envelopes against the DSSE project's published test-vector cases
//! (re-created in `tests/fixtures/dsse/vectors.json` by an independent
//! Python generator, one test per vector) and byte-flip tampering.

// Test helpers outside #[test] fns: a panic is the failure report here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ekran::dsse::{self, DsseError, MANIFEST_PAYLOAD_TYPE};
use ekran::keys::key_id;
use proptest::prelude::*;
use serde_json::Value;

static VECTORS: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../fixtures/dsse/vectors.json"))
        .expect("vectors.json is JSON")
});

fn fixture_key(name: &str) -> SigningKey {
    let seed = VECTORS["keys"][name]["seed"].as_str().unwrap();
    SigningKey::from_bytes(&hex::decode(seed).unwrap().try_into().unwrap())
}

fn vector(id: &str) -> &'static Value {
    VECTORS["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vector| vector["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id} in vectors.json"))
}

fn error_kind(error: &DsseError) -> &'static str {
    match error {
        DsseError::Oversize { .. } => "Oversize",
        DsseError::Malformed(_) => "Malformed",
        DsseError::WrongPayloadType { .. } => "WrongPayloadType",
        DsseError::NoSignatures => "NoSignatures",
        DsseError::UnknownKey { .. } => "UnknownKey",
        DsseError::BadSignature { .. } => "BadSignature",
        DsseError::ThresholdNotMet { .. } => "ThresholdNotMet",
        DsseError::InvalidThreshold { .. } => "InvalidThreshold",
    }
}

fn decode_either(text: &str) -> Vec<u8> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .unwrap()
}

/// Verifies one vector as its verifier configuration says and checks the
/// expected outcome, the PAE bytes and (for accepted ones) that Ekran's
/// signer reproduces the fixture's signatures byte for byte.
fn check_vector(id: &str) {
    let vector = vector(id);
    let trusted: Vec<VerifyingKey> = vector["trustedKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| fixture_key(name.as_str().unwrap()).verifying_key())
        .collect();
    let threshold = vector["threshold"].as_u64().unwrap() as usize;
    let expected_type = vector["expectedPayloadType"].as_str().unwrap();
    let envelope_json = serde_json::to_vec(&vector["envelope"]).unwrap();
    let result = dsse::verify(&envelope_json, expected_type, &trusted, threshold);
    match vector["expect"].as_str().unwrap() {
        "accept" => {
            let verified = result.unwrap_or_else(|error| panic!("{id}: rejected: {error}"));
            assert_eq!(
                hex::encode(dsse::pae(&verified.payload_type, &verified.payload)),
                vector["pae"].as_str().unwrap(),
                "{id}: PAE bytes"
            );
            let distinct: BTreeSet<_> = verified.key_ids.iter().collect();
            assert_eq!(
                distinct.len(),
                verified.key_ids.len(),
                "{id}: key ids distinct"
            );
            assert!(verified.key_ids.len() >= threshold);
            // Ed25519 is deterministic: signing the same PAE with the same
            // key must give the fixture's signature exactly.
            for signature in vector["envelope"]["signatures"].as_array().unwrap() {
                let fixture_sig = decode_either(signature["sig"].as_str().unwrap());
                let reproduced = ["A", "B", "C"].iter().any(|name| {
                    let key = fixture_key(name);
                    let ours = dsse::sign(&verified.payload_type, &verified.payload, &[&key]);
                    STANDARD.decode(&ours.signatures[0].sig).unwrap() == fixture_sig
                });
                // Deliberately bad signatures in accepted vectors (one-bad-one-good) are the exception.
                if id != "one-bad-one-good" {
                    assert!(reproduced, "{id}: signature not reproduced by dsse::sign");
                }
            }
        }
        "reject" => {
            let error = match result {
                Ok(verified) => panic!("{id}: accepted, key ids {:?}", verified.key_ids),
                Err(error) => error,
            };
            assert_eq!(
                error_kind(&error),
                vector["reason"].as_str().unwrap(),
                "{id}: {error}"
            );
        }
        other => panic!("{id}: unknown expectation {other}"),
    }
}

macro_rules! vector_tests {
    ($($name:ident => $id:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check_vector($id);
            }
        )*
        /// Every vector in the fixture has its own test above.
        #[test]
        fn every_vector_has_a_test() {
            let tested: BTreeSet<&str> = [$($id),*].into_iter().collect();
            let in_file: BTreeSet<&str> = VECTORS["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|vector| vector["id"].as_str().unwrap())
                .collect();
            assert_eq!(tested, in_file);
        }
    };
}

vector_tests! {
    vector_single_signature => "single-signature",
    vector_url_safe_base64 => "url-safe-base64",
    vector_payload_type_swapped => "payload-type-swapped",
    vector_non_ascii_payload_type => "non-ascii-payload-type",
    vector_empty_payload => "empty-payload",
    vector_empty_payload_type => "empty-payload-type",
    vector_threshold_two_distinct_keys => "threshold-two-distinct-keys",
    vector_threshold_two_one_key_twice => "threshold-two-one-key-twice",
    vector_threshold_two_without_keyids => "threshold-two-without-keyids",
    vector_protocol_hello_world => "protocol-hello-world",
    vector_tampered_payload => "tampered-payload",
    vector_unknown_key => "unknown-key",
    vector_untrusted_key_claims_trusted_keyid => "untrusted-key-claims-trusted-keyid",
    vector_unknown_key_without_keyid => "unknown-key-without-keyid",
    vector_threshold_two_one_forged => "threshold-two-one-forged",
    vector_one_bad_one_good => "one-bad-one-good",
    vector_ekran_manifest_type => "ekran-manifest-type",
    vector_payload_not_base64 => "payload-not-base64",
    vector_signature_truncated => "signature-truncated",
}

#[test]
fn fixture_key_ids_match_ekran_key_ids() {
    for name in ["A", "B", "C"] {
        assert_eq!(
            key_id(&fixture_key(name).verifying_key()),
            VECTORS["keys"][name]["keyid"].as_str().unwrap()
        );
    }
}

#[test]
fn the_protocol_example_pae_is_byte_exact() {
    let vector = vector("protocol-hello-world");
    let pae = hex::decode(vector["pae"].as_str().unwrap()).unwrap();
    assert_eq!(
        pae,
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(
        dsse::pae("http://example.com/HelloWorld", b"hello world"),
        pae
    );
}

/// A manifest-shaped payload whose standard base64 and whose signature's
/// base64 both contain '+' and '/': flipping one of them to its URL-safe
/// twin then mixes alphabets, so in this compact envelope every byte is
/// significant. (Elsewhere an alphabet swap is, by the DSSE spec, the same
/// envelope: see `alphabet_twin_of_a_field_is_the_same_envelope`.)
static STRICT_ENVELOPE: LazyLock<(SigningKey, Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let key = SigningKey::from_bytes(&[42; 32]);
    for nonce in 0u32.. {
        // "\u{fbff}" and friends put 0xef 0xaf 0xbf bytes in the payload,
        // which encode to '/' and '+' characters in base64.
        let payload = format!(
            "{{\"schema\":1,\"screen_id\":\"lobby-ÿ\u{fbff}\u{3fff}\",\"version\":{nonce}}}"
        )
        .into_bytes();
        let envelope = dsse::sign(MANIFEST_PAYLOAD_TYPE, &payload, &[&key]);
        let mixed = |text: &str| text.contains('+') && text.contains('/');
        if mixed(&envelope.payload) && mixed(&envelope.signatures[0].sig) {
            return (key, payload, serde_json::to_vec(&envelope).unwrap());
        }
    }
    unreachable!("some nonce gives a signature with both '+' and '/'")
});

#[test]
fn every_single_bit_flip_of_the_envelope_is_rejected() {
    let (key, _, envelope) = &*STRICT_ENVELOPE;
    let trusted = [key.verifying_key()];
    dsse::verify(envelope, MANIFEST_PAYLOAD_TYPE, &trusted, 1).expect("the original verifies");
    for index in 0..envelope.len() {
        for bit in 0..8 {
            let mut flipped = envelope.clone();
            flipped[index] ^= 1 << bit;
            assert!(
                dsse::verify(&flipped, MANIFEST_PAYLOAD_TYPE, &trusted, 1).is_err(),
                "flipping bit {bit} of byte {index} ({:?}) was accepted",
                envelope[index] as char
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any change of any byte (any XOR mask) of the compact envelope is rejected.
    #[test]
    fn any_byte_change_of_the_envelope_is_rejected(index in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let (key, _, envelope) = &*STRICT_ENVELOPE;
        let mut flipped = envelope.clone();
        let at = index.index(flipped.len());
        flipped[at] ^= mask;
        prop_assert!(dsse::verify(&flipped, MANIFEST_PAYLOAD_TYPE, &[key.verifying_key()], 1).is_err());
    }

    /// For arbitrary payloads and keys: a changed envelope byte is rejected,
    /// unless the change is one the DSSE spec defines as no change at all
    /// (a base64 character swapped for its other-alphabet twin), in which
    /// case the verified payload is byte-identical.
    #[test]
    fn byte_flips_never_change_what_verifies(
        seed in any::<[u8; 32]>(),
        payload in prop::collection::vec(any::<u8>(), 0..200),
        index in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let key = SigningKey::from_bytes(&seed);
        let envelope = serde_json::to_vec(&dsse::sign("application/x-test", &payload, &[&key])).unwrap();
        let mut flipped = envelope.clone();
        let at = index.index(flipped.len());
        flipped[at] ^= mask;
        if let Ok(verified) = dsse::verify(&flipped, "application/x-test", &[key.verifying_key()], 1) {
            let twins = [(b'+', b'-'), (b'/', b'_')];
            prop_assert!(
                twins.contains(&(envelope[at], flipped[at])),
                "accepted a change of {:?} to {:?}", envelope[at] as char, flipped[at] as char
            );
            prop_assert_eq!(verified.payload, payload);
        }
    }

    /// Flipping any bit pattern of any payload byte, keeping the signature,
    /// is a bad signature.
    #[test]
    fn any_payload_byte_change_is_a_bad_signature(
        payload in prop::collection::vec(any::<u8>(), 1..300),
        index in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut envelope = dsse::sign(MANIFEST_PAYLOAD_TYPE, &payload, &[&key]);
        let mut tampered = payload.clone();
        tampered[index.index(payload.len())] ^= mask;
        envelope.payload = STANDARD.encode(&tampered);
        let result = dsse::verify(&serde_json::to_vec(&envelope).unwrap(), MANIFEST_PAYLOAD_TYPE, &[key.verifying_key()], 1);
        prop_assert!(matches!(result, Err(DsseError::BadSignature { .. })), "{:?}", result);
    }
}

#[test]
fn alphabet_twin_of_a_field_is_the_same_envelope() {
    let key = SigningKey::from_bytes(&[3; 32]);
    // 0xfb 0xf0 encodes to "+/A=": swap both special characters to URL-safe.
    let payload = [0xfb, 0xf0];
    let mut envelope = dsse::sign("t", &payload, &[&key]);
    assert_eq!(envelope.payload, "+/A=");
    envelope.payload = "-_A=".to_owned();
    let verified = dsse::verify(
        &serde_json::to_vec(&envelope).unwrap(),
        "t",
        &[key.verifying_key()],
        1,
    )
    .unwrap();
    assert_eq!(verified.payload, payload);
    // Mixing the two alphabets in one field is not base64 at all.
    envelope.payload = "+_A=".to_owned();
    let error = dsse::verify(
        &serde_json::to_vec(&envelope).unwrap(),
        "t",
        &[key.verifying_key()],
        1,
    )
    .unwrap_err();
    assert!(matches!(error, DsseError::Malformed(_)), "{error}");
}

#[test]
fn verification_returns_the_received_bytes_not_a_reserialisation() {
    let key = SigningKey::from_bytes(&[9; 32]);
    // Duplicate keys, odd spacing, escapes: any re-serialisation changes these bytes.
    let payload = b"{\"version\" : 1, \"version\":2, \"x\":\"\\u0041\"}\r\n";
    let envelope =
        serde_json::to_vec(&dsse::sign(MANIFEST_PAYLOAD_TYPE, payload, &[&key])).unwrap();
    let verified =
        dsse::verify(&envelope, MANIFEST_PAYLOAD_TYPE, &[key.verifying_key()], 1).unwrap();
    assert_eq!(verified.payload, payload);
}

#[test]
fn duplicate_json_fields_in_the_envelope_are_malformed() {
    let key = SigningKey::from_bytes(&[10; 32]);
    let good = dsse::sign("t", b"good", &[&key]);
    // A second "payload" member after the signed one: parsers that keep the
    // last value would hand out unsigned bytes.
    let text = format!(
        "{{\"payloadType\":\"t\",\"payload\":\"{}\",\"signatures\":{},\"payload\":\"{}\"}}",
        good.payload,
        serde_json::to_string(&good.signatures).unwrap(),
        STANDARD.encode(b"evil")
    );
    let error = dsse::verify(text.as_bytes(), "t", &[key.verifying_key()], 1).unwrap_err();
    assert!(matches!(error, DsseError::Malformed(_)), "{error}");
}

#[test]
fn error_messages_name_the_reason() {
    let key = SigningKey::from_bytes(&[11; 32]);
    let other = SigningKey::from_bytes(&[12; 32]);
    let envelope = serde_json::to_vec(&dsse::sign(MANIFEST_PAYLOAD_TYPE, b"{}", &[&key])).unwrap();
    let message = |result: Result<dsse::Verified, DsseError>| result.unwrap_err().to_string();
    assert!(
        message(dsse::verify(&envelope, "x", &[key.verifying_key()], 1))
            .starts_with("wrong payloadType")
    );
    assert!(
        message(dsse::verify(
            &envelope,
            MANIFEST_PAYLOAD_TYPE,
            &[other.verifying_key()],
            1
        ))
        .starts_with("unknown key")
    );
    assert!(
        message(dsse::verify(
            b"{",
            MANIFEST_PAYLOAD_TYPE,
            &[key.verifying_key()],
            1
        ))
        .starts_with("malformed")
    );
    let big = vec![b' '; dsse::MAX_ENVELOPE_BYTES + 1];
    assert!(
        message(dsse::verify(
            &big,
            MANIFEST_PAYLOAD_TYPE,
            &[key.verifying_key()],
            1
        ))
        .starts_with("oversize")
    );
}

/// vectors.json is exactly what the independent Python generator (its own
/// PAE, key ids and Ed25519 via `cryptography`) writes, so the fixture is
/// not just Ekran agreeing with itself.
#[test]
fn vectors_json_is_what_the_independent_generator_writes() {
    let python = std::env::var("EKRAN_DSSE_PYTHON")
        .unwrap_or_else(|_| "/opt/ekran-ci-venv/bin/python".to_owned());
    let output = std::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/dsse/generate_vectors.py"
        ))
        .output()
        .unwrap_or_else(|error| {
            panic!("{python}: {error}; run .ci/install-deps.sh (it creates the venv)")
        });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        include_str!("../fixtures/dsse/vectors.json")
    );
}
