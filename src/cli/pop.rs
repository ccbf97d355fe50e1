//! `ekran pop …` (placeholder until its owner lands it).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum PopCmd {}

pub fn run(cmd: PopCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
