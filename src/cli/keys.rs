//! `ekran keys …`: generate an Ed25519 key pair, print a key's id.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ekran::keys;

/// Key management commands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCmd {
    /// Generate a key pair: DIR/ekran.key (PKCS#8 PEM, mode 0600) and
    /// DIR/ekran.pub (SubjectPublicKeyInfo PEM); print the key id.
    Generate {
        /// Directory to write the key pair into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace an existing key pair (the old private key is lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the key id (hex SHA-256 of the public key's SPKI DER) of a
    /// public key (.pub) or private key (.key) file.
    Id {
        /// A SubjectPublicKeyInfo PEM or PKCS#8 PEM file.
        #[arg(value_name = "KEYFILE")]
        file: PathBuf,
    },
}

/// Runs one `ekran keys` command.
pub fn run(cmd: KeysCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCmd::Generate { out, force } => {
            let generated = keys::generate(&out, force)
                .with_context(|| format!("cannot generate a key pair in {}", out.display()))?;
            eprintln!(
                "wrote {} (private, mode 0600; keep it secret) and {} (public)",
                generated.key_path.display(),
                generated.pub_path.display()
            );
            // Only the id on stdout, so scripts can capture it.
            println!("{}", generated.key_id);
        }
        KeysCmd::Id { file } => {
            // A public key is the common case; fall back to a private key so
            // an operator can check which public key belongs to a .key file.
            let key = match keys::read_verifying_key(&file) {
                Ok(key) => key,
                Err(public_error) => match keys::read_signing_key(&file) {
                    Ok(private) => private.verifying_key(),
                    Err(_) => return Err(public_error).context("cannot read the key"),
                },
            };
            println!("{}", keys::key_id(&key));
        }
    }
    Ok(ExitCode::SUCCESS)
}
