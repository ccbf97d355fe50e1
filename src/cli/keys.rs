//! `ekran keys …` (placeholder until its owner lands it).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCmd {}

pub fn run(cmd: KeysCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
