//! `ekran playlist …` (placeholder until its owner lands it).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum PlaylistCmd {}

pub fn run(cmd: PlaylistCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
