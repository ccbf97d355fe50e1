//! Ed25519 key pairs on disk (PKCS#8 / SPKI PEM, as openssl writes them) and key ids.
//!
//! A private key is a PKCS#8 v1 PEM file (`-----BEGIN PRIVATE KEY-----`), the
//! same bytes `openssl genpkey -algorithm ed25519` writes, created with mode
//! 0600 and replaced atomically. A public key is a SubjectPublicKeyInfo PEM
//! file (`-----BEGIN PUBLIC KEY-----`), the same bytes `openssl pkey -pubout`
//! writes. A key id is the lowercase hex SHA-256 of the SPKI DER encoding, so
//! anyone can recompute it with `openssl pkey -pubin -outform DER | sha256sum`.
//!
//! Every public key loaded here is checked for being weak (small order):
//! such a key "verifies" forged signatures and must never be trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// File name of the private key that [`generate`] writes.
pub const PRIVATE_KEY_FILE: &str = "ekran.key";
/// File name of the public key that [`generate`] writes.
pub const PUBLIC_KEY_FILE: &str = "ekran.pub";

/// Longest key file we read: a PEM Ed25519 key is about 120 bytes, so
/// anything this large is not a key (and is not read into memory whole).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// What went wrong loading, parsing or writing a key. Each variant names the
/// file (or `origin`) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read, created, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: io::Error,
    },
    /// A key file is already there and overwriting was not asked for.
    #[error("{}: a key already exists here; pass --force to replace it (the old key is lost)", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file is far too large to be a PEM key.
    #[error("{}: {size} bytes is too large for a PEM key file (limit {MAX_KEY_FILE_BYTES}); is this the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// Not an Ed25519 PKCS#8 private key PEM.
    #[error("{}: not an Ed25519 private key in PKCS#8 PEM form ({reason}); expected a \"-----BEGIN PRIVATE KEY-----\" file as `ekran keys generate` or `openssl genpkey -algorithm ed25519` writes", path.display())]
    InvalidPrivateKey {
        /// The file.
        path: PathBuf,
        /// What the parser found wrong.
        reason: String,
    },
    /// Not an Ed25519 SubjectPublicKeyInfo PEM.
    #[error(
        "{origin}: not an Ed25519 public key in SubjectPublicKeyInfo PEM form ({reason}); expected a \"-----BEGIN PUBLIC KEY-----\" file such as ekran.pub"
    )]
    InvalidPublicKey {
        /// The file, or `<PEM text>` when parsed from memory.
        origin: String,
        /// What the parser found wrong.
        reason: String,
    },
    /// A small-order ("weak") public key: it would accept forged signatures.
    #[error(
        "{origin}: weak (small-order) Ed25519 public key; it would accept forged signatures and is refused"
    )]
    WeakPublicKey {
        /// The file, or `<PEM text>` when parsed from memory.
        origin: String,
    },
}

/// Where [`generate`] put a fresh key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// [`key_id`] of the new public key.
    pub key_id: String,
    /// The private key file (`DIR/ekran.key`, mode 0600).
    pub key_path: PathBuf,
    /// The public key file (`DIR/ekran.pub`).
    pub pub_path: PathBuf,
}

/// Lowercase hex SHA-256 of the key's SubjectPublicKeyInfo DER encoding
/// (equal to `openssl pkey -pubin -outform DER | sha256sum`).
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(spki_der(key)))
}

/// The SubjectPublicKeyInfo DER bytes of an Ed25519 key: a fixed 12-byte
/// header (SEQUENCE, AlgorithmIdentifier id-Ed25519 1.3.101.112, BIT STRING)
/// followed by the 32 key bytes (RFC 8410 §4).
fn spki_der(key: &VerifyingKey) -> Vec<u8> {
    const SPKI_ED25519_PREFIX: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let mut der = Vec::with_capacity(44);
    der.extend_from_slice(&SPKI_ED25519_PREFIX);
    der.extend_from_slice(key.as_bytes());
    der
}

/// Generates a new key pair into `dir` (created if missing): `dir/ekran.key`
/// (PKCS#8 PEM, mode 0600) and `dir/ekran.pub` (SPKI PEM).
///
/// Refuses to replace either file unless `force`; without `force` the key
/// file is linked into place with a call that fails if it exists, so two
/// concurrent runs cannot both "win".
pub fn generate(dir: &Path, force: bool) -> Result<GeneratedKey, KeyError> {
    fs::create_dir_all(dir).map_err(|source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let key_path = dir.join(PRIVATE_KEY_FILE);
    let pub_path = dir.join(PUBLIC_KEY_FILE);
    if !force {
        for path in [&key_path, &pub_path] {
            if path.symlink_metadata().is_ok() {
                return Err(KeyError::AlreadyExists { path: path.clone() });
            }
        }
    }
    let signing_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let verifying_key = signing_key.verifying_key();
    // Both files are fully written and synced before either is put in
    // place, so a failure while writing (disk full) leaves the old pair, or
    // no pair, untouched; only the two renames remain between them.
    let private_pem = private_key_pem(&signing_key, &key_path)?;
    let staged_key = StagedFile::write(&key_path, private_pem.as_bytes(), 0o600)?;
    let staged_pub = StagedFile::write(
        &pub_path,
        verifying_key_to_pem(&verifying_key).as_bytes(),
        0o644,
    )?;
    staged_key.commit(force)?;
    if let Err(error) = staged_pub.commit(force) {
        if !force {
            // Lost a race for ekran.pub: take back the key placed a moment ago
            // so the directory holds no orphan private key.
            let _ = fs::remove_file(&key_path);
        }
        return Err(error);
    }
    Ok(GeneratedKey {
        key_id: key_id(&verifying_key),
        key_path,
        pub_path,
    })
}

/// Writes `key` to `path` as PKCS#8 PEM with mode 0600, atomically: a
/// temporary file in the same directory (created 0600, so never readable by
/// others even briefly), fsync, rename over `path`, fsync of the directory.
/// An existing file at `path` is replaced.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let pem = private_key_pem(key, path)?;
    StagedFile::write(path, pem.as_bytes(), 0o600)?.commit(true)
}

/// PKCS#8 v1 (no embedded public key), byte-identical to what
/// `openssl genpkey -algorithm ed25519` writes for the same seed.
fn private_key_pem(
    key: &SigningKey,
    path: &Path,
) -> Result<ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing<String>, KeyError> {
    let keypair = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    keypair
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| KeyError::InvalidPrivateKey {
            path: path.to_path_buf(),
            reason: format!("encoding failed: {error}"),
        })
}

/// Reads a PKCS#8 PEM Ed25519 private key (v1 as openssl writes it, or v2
/// with the public key embedded, which must then match).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = read_key_file(path)?;
    let key =
        SigningKey::from_pkcs8_pem(text.trim()).map_err(|error| KeyError::InvalidPrivateKey {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
    warn_if_readable_by_others(path);
    Ok(key)
}

/// Reads a SubjectPublicKeyInfo PEM Ed25519 public key (an `ekran.pub`),
/// refusing weak keys.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = read_key_file(path)?;
    parse_verifying_key(&text, &path.display().to_string())
}

/// Parses a SubjectPublicKeyInfo PEM Ed25519 public key, refusing weak keys.
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    parse_verifying_key(pem, "<PEM text>")
}

fn parse_verifying_key(pem: &str, origin: &str) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|error| {
        KeyError::InvalidPublicKey {
            origin: origin.to_owned(),
            reason: error.to_string(),
        }
    })?;
    if key.is_weak() {
        return Err(KeyError::WeakPublicKey {
            origin: origin.to_owned(),
        });
    }
    Ok(key)
}

/// The SubjectPublicKeyInfo PEM of `key`, LF line endings, trailing newline
/// (what `openssl pkey -pubout` writes).
pub fn verifying_key_to_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .expect("encoding a 32-byte Ed25519 key as SPKI PEM cannot fail")
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    let io_error = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(io_error)?.len();
    if size > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    fs::read_to_string(path).map_err(io_error)
}

/// Like ssh, complain about a private key others can read; unlike ssh, still
/// use it: refusing would stop a screen from playing over a chmod mistake.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "private key is accessible by group or others; run chmod 600 on it"
            );
        }
    }
}

/// A file's new content, written and fsynced under a temporary name in the
/// target's directory, created with its final `mode` (so the content is
/// never visible with wider permissions, even briefly), not yet in place.
/// Dropped without [`StagedFile::commit`], it is removed.
struct StagedFile {
    target: PathBuf,
    temp_path: Option<PathBuf>,
}

impl StagedFile {
    fn write(target: &Path, bytes: &[u8], mode: u32) -> Result<Self, KeyError> {
        let file_name = target.file_name().ok_or_else(|| KeyError::Io {
            path: target.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        })?;
        let temp_path = parent_dir(target).join(format!(
            ".{}.tmp-{}-{:016x}",
            file_name.to_string_lossy(),
            std::process::id(),
            rand::random::<u64>()
        ));
        let staged = StagedFile {
            target: target.to_path_buf(),
            temp_path: Some(temp_path.clone()),
        };
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp_path)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
        // On error `staged` is dropped here, which removes the temporary file.
        written.map_err(|source| KeyError::Io {
            path: temp_path,
            source,
        })?;
        Ok(staged)
    }

    /// Moves the file into place: `rename` when `overwrite`, otherwise a
    /// hard link that fails if the target exists (no check-then-write race).
    /// Then fsyncs the directory so the new name survives a power cut
    /// (screens are unplugged without warning).
    fn commit(mut self, overwrite: bool) -> Result<(), KeyError> {
        let Some(temp_path) = self.temp_path.take() else {
            return Ok(());
        };
        let placed = if overwrite {
            fs::rename(&temp_path, &self.target)
        } else {
            let linked = fs::hard_link(&temp_path, &self.target);
            let _ = fs::remove_file(&temp_path);
            linked
        };
        if let Err(source) = placed {
            let _ = fs::remove_file(&temp_path);
            return Err(if source.kind() == io::ErrorKind::AlreadyExists {
                KeyError::AlreadyExists {
                    path: self.target.clone(),
                }
            } else {
                KeyError::Io {
                    path: self.target.clone(),
                    source,
                }
            });
        }
        let dir = parent_dir(&self.target);
        File::open(&dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| KeyError::Io { path: dir, source })
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(temp_path) = self.temp_path.take() {
            // Best effort: a temporary copy of key material must not linger.
            let _ = fs::remove_file(temp_path);
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// RFC 8032 §7.1 TEST 1 key pair.
    const RFC8032_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn rfc8032_key() -> SigningKey {
        let seed: [u8; 32] = hex::decode(RFC8032_SEED).unwrap().try_into().unwrap();
        SigningKey::from_bytes(&seed)
    }

    #[test]
    fn spki_der_matches_the_der_encoder() {
        let key = rfc8032_key().verifying_key();
        assert_eq!(hex::encode(key.as_bytes()), RFC8032_PUBLIC);
        let der = key.to_public_key_der().unwrap();
        assert_eq!(spki_der(&key), der.as_bytes());
        assert_eq!(key_id(&key), hex::encode(Sha256::digest(der.as_bytes())));
    }

    #[test]
    fn generate_writes_private_0600_and_public_pem_that_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), false).unwrap();
        let mode = fs::metadata(&generated.key_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let private = read_signing_key(&generated.key_path).unwrap();
        let public = read_verifying_key(&generated.pub_path).unwrap();
        assert_eq!(private.verifying_key(), public);
        assert_eq!(generated.key_id, key_id(&public));
        assert!(
            fs::read_to_string(&generated.key_path)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn generate_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(dir.path(), false).unwrap();
        let before = fs::read(&first.key_path).unwrap();
        let error = generate(dir.path(), false).unwrap_err();
        assert!(matches!(error, KeyError::AlreadyExists { .. }), "{error}");
        assert!(error.to_string().contains("--force"));
        assert_eq!(fs::read(&first.key_path).unwrap(), before);
        let second = generate(dir.path(), true).unwrap();
        assert_ne!(second.key_id, first.key_id);
        assert_ne!(fs::read(&second.key_path).unwrap(), before);
    }

    #[test]
    fn generate_refuses_when_only_the_public_key_exists() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(PUBLIC_KEY_FILE), "x").unwrap();
        let error = generate(dir.path(), false).unwrap_err();
        assert!(matches!(error, KeyError::AlreadyExists { .. }), "{error}");
        assert!(!dir.path().join(PRIVATE_KEY_FILE).exists());
    }

    #[test]
    fn write_signing_key_replaces_atomically_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("screen.key");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let key = rfc8032_key();
        write_signing_key(&path, &key).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
    }

    #[test]
    fn weak_public_keys_are_refused() {
        // The identity point (y = 1) has order 1: every signature with R = identity,
        // s = 0 "verifies" under non-strict checks.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(weak.is_weak());
        let pem = weak.to_public_key_pem(LineEnding::LF).unwrap();
        let error = verifying_key_from_pem(&pem).unwrap_err();
        assert!(matches!(error, KeyError::WeakPublicKey { .. }), "{error}");
    }

    #[test]
    fn garbage_and_private_keys_are_not_public_keys() {
        assert!(matches!(
            verifying_key_from_pem("hello").unwrap_err(),
            KeyError::InvalidPublicKey { .. }
        ));
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), false).unwrap();
        let error = read_verifying_key(&generated.key_path).unwrap_err();
        assert!(
            matches!(error, KeyError::InvalidPublicKey { .. }),
            "{error}"
        );
        let error = read_signing_key(&generated.pub_path).unwrap_err();
        assert!(
            matches!(error, KeyError::InvalidPrivateKey { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("ekran.pub"));
    }

    #[test]
    fn missing_file_names_the_path() {
        let error = read_verifying_key(Path::new("/nonexistent/trust.pub")).unwrap_err();
        assert!(matches!(error, KeyError::Io { .. }));
        assert!(error.to_string().contains("/nonexistent/trust.pub"));
    }
}
