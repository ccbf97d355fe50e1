//! Ed25519 key pairs on disk (PKCS#8 / SPKI PEM, as openssl writes them) and key ids.
