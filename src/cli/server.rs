//! `ekran server`, `token`, `screen`, `push`, `report` (placeholder until its owner lands it).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {}
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {}
#[derive(Debug, clap::Subcommand)]
pub enum ScreenCmd {}
#[derive(Debug, clap::Args)]
pub struct PushArgs {}
#[derive(Debug, clap::Subcommand)]
pub enum ReportCmd {}

pub fn run_server(_args: ServerArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
pub fn run_token(cmd: TokenCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
pub fn run_screen(cmd: ScreenCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
pub fn run_push(_args: PushArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
pub fn run_report(cmd: ReportCmd) -> anyhow::Result<ExitCode> {
    match cmd {}
}
