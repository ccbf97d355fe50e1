//! `ekran manifest …`: sign a payload into a DSSE envelope, verify an
//! envelope against trusted public keys and summarise what it carries.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use ekran::dsse::{self, MANIFEST_PAYLOAD_TYPE, MAX_ENVELOPE_BYTES};
use ekran::keys;
use ekran::manifest::{MAX_MANIFEST_BYTES, Manifest};

/// Manifest envelope commands.
#[derive(Debug, clap::Subcommand)]
pub enum ManifestCmd {
    /// Sign a JSON payload and print the DSSE envelope (JSON) on stdout.
    Sign {
        /// Private key (PKCS#8 PEM) to sign with; repeat to add signatures
        /// by several keys (thresholds, root key rotation).
        #[arg(long = "key", value_name = "KEY", required = true)]
        keys: Vec<PathBuf>,
        /// payloadType to sign under.
        #[arg(long, value_name = "TYPE", default_value = MANIFEST_PAYLOAD_TYPE)]
        payload_type: String,
        /// The payload: a JSON file, signed byte for byte as it is.
        #[arg(value_name = "PAYLOAD.json")]
        payload: PathBuf,
    },
    /// Verify a DSSE envelope against trusted public keys and print a summary.
    ///
    /// Exits 0 when at least THRESHOLD distinct trusted keys signed it,
    /// otherwise non-zero with the reason (bad signature, unknown key,
    /// wrong payloadType, malformed, oversize).
    Verify {
        /// Trusted public key (SubjectPublicKeyInfo PEM, e.g. ekran.pub);
        /// repeat for several.
        #[arg(long = "trust", value_name = "PUB", required = true)]
        trust: Vec<PathBuf>,
        /// How many distinct trusted keys must have signed.
        #[arg(long, value_name = "N", default_value_t = 1)]
        threshold: usize,
        /// The payloadType the envelope must carry.
        #[arg(long, value_name = "TYPE", default_value = MANIFEST_PAYLOAD_TYPE)]
        payload_type: String,
        /// The envelope file, or `-` for standard input.
        #[arg(value_name = "ENVELOPE.json")]
        envelope: PathBuf,
    },
}

/// Runs one `ekran manifest` command.
pub fn run(cmd: ManifestCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ManifestCmd::Sign {
            keys,
            payload_type,
            payload,
        } => sign(&keys, &payload_type, &payload),
        ManifestCmd::Verify {
            trust,
            threshold,
            payload_type,
            envelope,
        } => verify(&trust, threshold, &payload_type, &envelope),
    }
}

fn sign(
    key_paths: &[PathBuf],
    payload_type: &str,
    payload_path: &Path,
) -> anyhow::Result<ExitCode> {
    let payload = read_capped(payload_path, MAX_MANIFEST_BYTES)?;
    if payload.len() > MAX_MANIFEST_BYTES {
        bail!(
            "{}: larger than {MAX_MANIFEST_BYTES} bytes, the most a player accepts",
            payload_path.display()
        );
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&payload)
        .with_context(|| format!("{}: not valid JSON; nothing signed", payload_path.display()))?;
    if payload_type == MANIFEST_PAYLOAD_TYPE
        && let Err(error) = Manifest::from_json(&payload)
    {
        // Signing is still allowed (tests and tools sign odd payloads on
        // purpose), but a player would refuse this one.
        tracing::warn!(
            "{}: not an Ekran manifest ({error}); players will reject it",
            payload_path.display()
        );
    }
    let signing_keys = key_paths
        .iter()
        .map(|path| keys::read_signing_key(path))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot load the signing key")?;
    let key_refs: Vec<_> = signing_keys.iter().collect();
    let envelope = dsse::sign(payload_type, &payload, &key_refs);
    print!("{}", envelope.to_json_pretty());
    Ok(ExitCode::SUCCESS)
}

fn verify(
    trust_paths: &[PathBuf],
    threshold: usize,
    payload_type: &str,
    envelope_path: &Path,
) -> anyhow::Result<ExitCode> {
    let mut trusted = Vec::with_capacity(trust_paths.len());
    let mut names = Vec::with_capacity(trust_paths.len());
    for path in trust_paths {
        let key = keys::read_verifying_key(path).context("cannot load a trusted key")?;
        names.push((keys::key_id(&key), path.display().to_string()));
        trusted.push(key);
    }
    // One byte past the limit is enough for dsse::verify to report Oversize
    // without this reading a huge file into memory.
    let envelope = read_capped(envelope_path, MAX_ENVELOPE_BYTES)?;
    let verified = dsse::verify(&envelope, payload_type, &trusted, threshold)
        .with_context(|| format!("{}: envelope rejected", envelope_path.display()))?;

    println!(
        "envelope OK: {} distinct trusted key(s) verified, {threshold} required",
        verified.key_ids.len()
    );
    println!("payload type: {}", verified.payload_type);
    for key_id in &verified.key_ids {
        let name = names
            .iter()
            .find(|(id, _)| id == key_id)
            .map_or("", |(_, name)| name.as_str());
        println!("signed by:    {key_id} ({name})");
    }
    println!("payload:      {} bytes", verified.payload.len());
    if verified.payload_type == MANIFEST_PAYLOAD_TYPE {
        // DSSE: after the signature, parse the body according to its type
        // and reject it if that fails.
        let manifest = Manifest::from_json(&verified.payload).with_context(|| {
            format!(
                "{}: signatures are valid but the payload is not an Ekran manifest",
                envelope_path.display()
            )
        })?;
        print_manifest_summary(&manifest);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_manifest_summary(manifest: &Manifest) {
    println!(
        "manifest:     screen {}, version {} (schema {})",
        manifest.screen_id, manifest.version, manifest.schema
    );
    println!("issued:       {}", manifest.issued_at);
    println!("expires:      {}", manifest.expires_at);
    println!("timezone:     {}", manifest.timezone);
    println!(
        "items:        {} ({} overlay(s))",
        manifest.items.len(),
        manifest.overlays.len()
    );
    println!(
        "root keys:    version {}, {} key(s), threshold {}",
        manifest.root.version,
        manifest.root.keys.len(),
        manifest.root.threshold
    );
}

/// Reads at most `limit + 1` bytes of `path` (`-`: standard input), so a
/// caller can tell "over the limit" without holding an unbounded file.
fn read_capped(path: &Path, limit: usize) -> anyhow::Result<Vec<u8>> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    let result = if path.as_os_str() == "-" {
        io::stdin().lock().take(cap).read_to_end(&mut bytes)
    } else {
        File::open(path).and_then(|file| file.take(cap).read_to_end(&mut bytes))
    };
    result.with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}
