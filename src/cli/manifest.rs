//! `ekran manifest …` (placeholder until its owner lands it).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum ManifestCmd {}

pub fn run(cmd: ManifestCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
