//! Dead Simple Signing Envelopes (DSSE v1): PAE, signing, strict verification.
//!
//! An envelope is the JSON object `{payloadType, payload, signatures: [{keyid,
//! sig}]}` of the DSSE spec (secure-systems-lab/dsse, `envelope.md` and
//! `protocol.md`). Each `sig` is an Ed25519 signature over
//! [`pae`]`(payloadType, payload)`, where `payload` is the base64-decoded byte
//! string exactly as received: verification never re-serialises anything, so
//! the bytes that were signed are the bytes that get parsed afterwards.
//!
//! Verification rules, each guarded by a test:
//! - an envelope over [`MAX_ENVELOPE_BYTES`] is refused before parsing;
//! - unknown JSON fields and duplicate fields are refused (a signer has no
//!   business adding data that is not signed);
//! - standard and URL-safe base64 (padded or not) are both accepted, as the
//!   spec requires; standard padded base64 is emitted;
//! - Ed25519 is checked with `verify_strict` (no small-order keys or
//!   non-canonical signatures);
//! - `keyid` only narrows which trusted keys are tried; a non-empty keyid that
//!   names no trusted key never verifies;
//! - the threshold counts distinct trusted keys: one key signing twice, or the
//!   same signature repeated, counts once.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::keys::key_id;

/// payloadType of every Ekran manifest envelope.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.ekran.manifest+json";

/// Largest envelope accepted, in bytes: base64 of the largest manifest
/// ([`crate::manifest::MAX_MANIFEST_BYTES`], 4 MiB → 5.4 MiB) plus room for
/// signatures and JSON. Anything bigger is refused before it is parsed.
pub const MAX_ENVELOPE_BYTES: usize = 8 * 1024 * 1024;

/// A DSSE envelope in its JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// What the payload is; authenticated through the PAE.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signed bytes, base64 (standard alphabet when Ekran writes it).
    pub payload: String,
    /// One entry per signer.
    pub signatures: Vec<Signature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Unauthenticated hint: the [`key_id`] of the signing key (may be empty).
    #[serde(default)]
    pub keyid: String,
    /// The 64-byte Ed25519 signature over the PAE, base64.
    pub sig: String,
}

/// Why an envelope was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    /// Bigger than [`MAX_ENVELOPE_BYTES`]; not parsed at all.
    #[error("oversize envelope: {size} bytes, the limit is {max} bytes")]
    Oversize {
        /// Size received.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a DSSE envelope: bad JSON, missing or unknown fields, bad base64,
    /// a signature of the wrong length.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// A validly shaped envelope for some other kind of payload.
    #[error("wrong payloadType: expected {expected:?}, found {found:?}")]
    WrongPayloadType {
        /// What the caller accepts.
        expected: String,
        /// What the envelope claims.
        found: String,
    },
    /// The envelope carries no signature at all.
    #[error("unsigned envelope: the signatures list is empty")]
    NoSignatures,
    /// No signature names or verifies under a trusted key (and none was a
    /// bad signature by a trusted key).
    #[error(
        "unknown key: no signature is by a trusted key (keyids in the envelope: {})",
        display_keyids(keyids)
    )]
    UnknownKey {
        /// The keyids the envelope's signatures carry.
        keyids: Vec<String>,
    },
    /// At least one signature was checked against a trusted key and failed,
    /// and not enough others verified.
    #[error(
        "bad signature: {} signature(s) do not verify under the trusted key they name (keyids: {}); the envelope was altered or signed by another key",
        keyids.len(),
        display_keyids(keyids)
    )]
    BadSignature {
        /// The keyids of the signatures that failed.
        keyids: Vec<String>,
    },
    /// Some trusted keys verified, but fewer distinct keys than required.
    #[error("threshold not met: {verified} distinct trusted key(s) verified, {threshold} required")]
    ThresholdNotMet {
        /// Distinct trusted keys that verified.
        verified: usize,
        /// Distinct trusted keys required.
        threshold: usize,
    },
    /// The caller asked for a threshold no envelope can meet meaningfully:
    /// zero (which would accept anything) or more than the keys it trusts.
    #[error(
        "invalid threshold {threshold} for {trusted} distinct trusted key(s): it must be between 1 and the number of trusted keys"
    )]
    InvalidThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// Distinct trusted keys given.
        trusted: usize,
    },
}

fn display_keyids(keyids: &[String]) -> String {
    if keyids.iter().all(String::is_empty) {
        return "none given".to_owned();
    }
    keyids
        .iter()
        .map(|id| if id.is_empty() { "(none)" } else { id.as_str() })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A verified envelope's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The envelope's payloadType (equal to the expected one).
    pub payload_type: String,
    /// The payload bytes exactly as signed.
    pub payload: Vec<u8>,
    /// [`key_id`]s of the distinct trusted keys that verified, in the order
    /// their first good signature appears.
    pub key_ids: Vec<String>,
}

/// DSSE v1 Pre-Authentication Encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes (UTF-8 byte length of the type, not its character count).
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        "DSSEv1".len() + 4 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` with every key in `keys` (each signature carries the
/// key's [`key_id`] as keyid). Standard padded base64 throughout.
pub fn sign(payload_type: &str, payload: &[u8], keys: &[&SigningKey]) -> Envelope {
    let message = pae(payload_type, payload);
    let signatures = keys
        .iter()
        .map(|key| Signature {
            keyid: key_id(&key.verifying_key()),
            sig: STANDARD.encode(key.sign(&message).to_bytes()),
        })
        .collect();
    Envelope {
        payload_type: payload_type.to_owned(),
        payload: STANDARD.encode(payload),
        signatures,
    }
}

impl Envelope {
    /// The envelope as pretty-printed JSON, newline-terminated.
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("an envelope of strings always serialises to JSON");
        text.push('\n');
        text
    }
}

/// Standard alphabet, padding written; on input padding is optional.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe alphabet, padding optional on input.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes standard or URL-safe base64 (DSSE: "verifiers MUST accept
/// either"). Non-canonical trailing bits are refused by both engines, so
/// one byte string has one encoding per alphabet.
fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, DsseError> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|error| DsseError::Malformed(format!("{field} is not valid base64: {error}")))
}

/// Verifies a DSSE envelope given as the raw bytes received.
///
/// Accepts when at least `threshold` distinct keys of `trusted` each made a
/// valid signature over PAE(`expected_payload_type`, payload), and returns
/// the payload bytes as signed. Signatures that fail are skipped (as the
/// DSSE multi-signature rules say) and only reported when the threshold is
/// not met.
pub fn verify(
    envelope_json: &[u8],
    expected_payload_type: &str,
    trusted: &[VerifyingKey],
    threshold: usize,
) -> Result<Verified, DsseError> {
    if envelope_json.len() > MAX_ENVELOPE_BYTES {
        return Err(DsseError::Oversize {
            size: envelope_json.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    // Distinct trusted keys with their ids, computed once. Weak keys are left
    // out: `verify_strict` would refuse them anyway, and they must not count
    // toward what a threshold can reach.
    let mut trusted_keys: Vec<(String, &VerifyingKey)> = Vec::new();
    for key in trusted.iter().filter(|key| !key.is_weak()) {
        let id = key_id(key);
        if !trusted_keys.iter().any(|(known, _)| *known == id) {
            trusted_keys.push((id, key));
        }
    }
    if threshold == 0 || threshold > trusted_keys.len() {
        return Err(DsseError::InvalidThreshold {
            threshold,
            trusted: trusted_keys.len(),
        });
    }

    let envelope: Envelope = serde_json::from_slice(envelope_json)
        .map_err(|error| DsseError::Malformed(format!("not a DSSE envelope: {error}")))?;
    if envelope.payload_type != expected_payload_type {
        return Err(DsseError::WrongPayloadType {
            expected: expected_payload_type.to_owned(),
            found: envelope.payload_type,
        });
    }
    if envelope.signatures.is_empty() {
        return Err(DsseError::NoSignatures);
    }
    let payload = decode_base64("payload", &envelope.payload)?;
    let mut signatures = Vec::with_capacity(envelope.signatures.len());
    for (index, signature) in envelope.signatures.iter().enumerate() {
        let field = format!("signatures[{index}].sig");
        let bytes = decode_base64(&field, &signature.sig)?;
        let parsed = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| {
            DsseError::Malformed(format!(
                "{field} is {} bytes, an Ed25519 signature is 64",
                bytes.len()
            ))
        })?;
        signatures.push((signature.keyid.as_str(), parsed));
    }

    let message = pae(&envelope.payload_type, &payload);
    let mut verified_ids: Vec<String> = Vec::new();
    let mut bad_keyids: Vec<String> = Vec::new();
    let mut unknown_keyids: BTreeSet<String> = BTreeSet::new();
    for (keyid, signature) in &signatures {
        // keyid is a hint only: it narrows the keys tried, it never makes a
        // signature count. An empty keyid means "try every trusted key".
        let candidates: Vec<&(String, &VerifyingKey)> = trusted_keys
            .iter()
            .filter(|(id, _)| keyid.is_empty() || id == keyid)
            .collect();
        if candidates.is_empty() {
            unknown_keyids.insert((*keyid).to_owned());
            continue;
        }
        match candidates
            .iter()
            .find(|(_, key)| key.verify_strict(&message, signature).is_ok())
        {
            Some((id, _)) => {
                if !verified_ids.contains(id) {
                    verified_ids.push(id.clone());
                }
            }
            None => bad_keyids.push((*keyid).to_owned()),
        }
        if verified_ids.len() >= threshold {
            break;
        }
    }

    if verified_ids.len() >= threshold {
        return Ok(Verified {
            payload_type: envelope.payload_type,
            payload,
            key_ids: verified_ids,
        });
    }
    if !verified_ids.is_empty() {
        Err(DsseError::ThresholdNotMet {
            verified: verified_ids.len(),
            threshold,
        })
    } else if !bad_keyids.is_empty() {
        Err(DsseError::BadSignature { keyids: bad_keyids })
    } else {
        Err(DsseError::UnknownKey {
            keyids: unknown_keyids.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn pae_matches_the_spec_example() {
        // protocol.md "Test Vectors": PAE of "hello world" as http://example.com/HelloWorld.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn pae_counts_bytes_not_characters_and_keeps_empty_fields() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        assert_eq!(pae("é", b"x"), "DSSEv1 2 é 1 x".as_bytes());
    }

    #[test]
    fn sign_then_verify_round_trips_the_exact_bytes() {
        let signer = key(1);
        // Not canonical JSON on purpose: the verifier must hand back these bytes.
        let payload = b"{ \"b\":1,  \"a\" : 2 }\n";
        let envelope = sign(MANIFEST_PAYLOAD_TYPE, payload, &[&signer]);
        let json = serde_json::to_vec(&envelope).unwrap();
        let verified = verify(&json, MANIFEST_PAYLOAD_TYPE, &[signer.verifying_key()], 1).unwrap();
        assert_eq!(verified.payload, payload);
        assert_eq!(verified.key_ids, vec![key_id(&signer.verifying_key())]);
        assert_eq!(envelope.signatures[0].keyid, verified.key_ids[0]);
    }

    #[test]
    fn url_safe_unpadded_base64_is_accepted() {
        let signer = key(2);
        // 0xfb 0xff 0xbf encodes to "+/+/" in standard base64: a real alphabet difference.
        let payload = [0xfb, 0xff, 0xbf, 0x3e, 0x3f];
        let mut envelope = sign("t", &payload, &[&signer]);
        let url_safe = GeneralPurpose::new(
            &alphabet::URL_SAFE,
            GeneralPurposeConfig::new().with_encode_padding(false),
        );
        envelope.payload = url_safe.encode(payload);
        assert!(envelope.payload.contains('-') && !envelope.payload.contains('='));
        let json = serde_json::to_vec(&envelope).unwrap();
        let verified = verify(&json, "t", &[signer.verifying_key()], 1).unwrap();
        assert_eq!(verified.payload, payload);
    }

    #[test]
    fn threshold_counts_distinct_keys_only() {
        let (a, b) = (key(3), key(4));
        let trusted = [a.verifying_key(), b.verifying_key()];
        let twice_a = sign("t", b"p", &[&a, &a]);
        let error = verify(&serde_json::to_vec(&twice_a).unwrap(), "t", &trusted, 2).unwrap_err();
        assert!(
            matches!(
                error,
                DsseError::ThresholdNotMet {
                    verified: 1,
                    threshold: 2
                }
            ),
            "{error}"
        );
        let both = sign("t", b"p", &[&a, &b]);
        let verified = verify(&serde_json::to_vec(&both).unwrap(), "t", &trusted, 2).unwrap();
        assert_eq!(verified.key_ids.len(), 2);
    }

    #[test]
    fn trusting_the_same_key_twice_does_not_lower_the_bar() {
        let a = key(5);
        let envelope = serde_json::to_vec(&sign("t", b"p", &[&a])).unwrap();
        let error = verify(&envelope, "t", &[a.verifying_key(), a.verifying_key()], 2).unwrap_err();
        assert!(matches!(
            error,
            DsseError::InvalidThreshold {
                threshold: 2,
                trusted: 1
            }
        ));
    }

    #[test]
    fn zero_threshold_is_refused() {
        let a = key(6);
        let envelope = serde_json::to_vec(&sign("t", b"p", &[&a])).unwrap();
        assert!(matches!(
            verify(&envelope, "t", &[a.verifying_key()], 0),
            Err(DsseError::InvalidThreshold { threshold: 0, .. })
        ));
    }

    #[test]
    fn oversize_is_refused_before_parsing() {
        let a = key(7);
        // Not JSON at all: an Oversize (not Malformed) error proves no parse happened.
        let huge = vec![b'x'; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            verify(&huge, "t", &[a.verifying_key()], 1),
            Err(DsseError::Oversize { size, max: MAX_ENVELOPE_BYTES }) if size == MAX_ENVELOPE_BYTES + 1
        ));
    }

    #[test]
    fn unknown_fields_and_empty_signature_lists_are_refused() {
        let a = key(8);
        let trusted = [a.verifying_key()];
        let mut value = serde_json::to_value(sign("t", b"p", &[&a])).unwrap();
        value["extra"] = serde_json::json!("unsigned data");
        let error = verify(&serde_json::to_vec(&value).unwrap(), "t", &trusted, 1).unwrap_err();
        assert!(matches!(error, DsseError::Malformed(_)), "{error}");
        let empty = serde_json::json!({"payloadType": "t", "payload": "cA==", "signatures": []});
        let error = verify(&serde_json::to_vec(&empty).unwrap(), "t", &trusted, 1).unwrap_err();
        assert!(matches!(error, DsseError::NoSignatures), "{error}");
    }

    /// A signature with R = identity (a small-order point), made with the
    /// real private scalar: s = k·a where k = H(R ‖ A ‖ M). The cofactorless
    /// lax check accepts it ([s]B = [k]A = R + [k]A); `verify_strict` must not.
    #[test]
    fn small_order_r_signature_passes_lax_but_not_strict_verification() {
        use curve25519_dalek::scalar::Scalar;
        use ed25519_dalek::Verifier as _;
        use sha2::{Digest, Sha512};

        let signer = key(13);
        let public = signer.verifying_key();
        let payload = b"{\"version\":1}";
        let message = pae(MANIFEST_PAYLOAD_TYPE, payload);
        let mut expanded: [u8; 32] = Sha512::digest(signer.to_bytes())[..32].try_into().unwrap();
        expanded[0] &= 248;
        expanded[31] &= 127;
        expanded[31] |= 64;
        let secret_scalar = Scalar::from_bytes_mod_order(expanded);
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let challenge = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(identity)
                .chain_update(public.as_bytes())
                .chain_update(&message)
                .finalize()
                .into(),
        );
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        forged[32..].copy_from_slice((challenge * secret_scalar).as_bytes());
        let forged = ed25519_dalek::Signature::from_bytes(&forged);
        assert!(
            public.verify(&message, &forged).is_ok(),
            "test setup: lax check accepts"
        );

        let mut envelope = sign(MANIFEST_PAYLOAD_TYPE, payload, &[&signer]);
        envelope.signatures[0].sig = STANDARD.encode(forged.to_bytes());
        let error = verify(
            &serde_json::to_vec(&envelope).unwrap(),
            MANIFEST_PAYLOAD_TYPE,
            &[public],
            1,
        )
        .unwrap_err();
        assert!(matches!(error, DsseError::BadSignature { .. }), "{error}");
    }

    #[test]
    fn short_signature_is_malformed() {
        let a = key(9);
        let mut envelope = sign("t", b"p", &[&a]);
        envelope.signatures[0].sig = STANDARD.encode([0u8; 63]);
        let error = verify(
            &serde_json::to_vec(&envelope).unwrap(),
            "t",
            &[a.verifying_key()],
            1,
        )
        .unwrap_err();
        assert!(matches!(error, DsseError::Malformed(ref reason) if reason.contains("63 bytes")));
    }
}
