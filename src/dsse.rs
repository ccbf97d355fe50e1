//! Dead Simple Signing Envelopes (DSSE v1): PAE, signing, strict verification.

/// payloadType of every Ekran manifest envelope.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.ekran.manifest+json";
