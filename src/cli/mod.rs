//! Command-line interface: one clap derive tree, one module per command
//! family. Each module's `run` returns the process exit code; errors reach
//! `main` as `anyhow` chains and are printed as one line per cause.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "agent")]
mod agent;
mod keys;
mod manifest;
#[cfg(feature = "player")]
mod play;
#[cfg(feature = "player")]
mod player;
mod playlist;
mod pop;
#[cfg(feature = "server")]
mod server;

/// Ekran digital signage: signed playlists, gapless playback, verifiable proof of play.
#[derive(Debug, Parser)]
#[command(name = "ekran", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate and inspect Ed25519 signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Sign and verify manifest envelopes (DSSE).
    #[command(subcommand)]
    Manifest(manifest::ManifestCmd),
    /// Validate playlist TOML files.
    #[command(subcommand)]
    Playlist(playlist::PlaylistCmd),
    /// Verify proof-of-play exports offline.
    #[command(subcommand)]
    Pop(pop::PopCmd),
    /// Run the central server.
    #[cfg(feature = "server")]
    Server(server::ServerArgs),
    /// Manage API tokens (works on the server's database directly).
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Token(server::TokenCmd),
    /// Manage screens through the server API (approve pairing codes).
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Screen(server::ScreenCmd),
    /// Check a playlist, upload missing media and publish it.
    #[cfg(feature = "server")]
    Push(server::PushArgs),
    /// Read airtime reports from a server.
    #[cfg(feature = "server")]
    #[command(subcommand)]
    Report(server::ReportCmd),
    /// Helpers around the player's sync agent (crash-test workloads).
    #[cfg(feature = "agent")]
    #[command(subcommand, hide = true)]
    Agent(agent::AgentCmd),
    /// Play local clips, stills or a playlist once (preview, box check).
    #[cfg(feature = "player")]
    // Boxed: its many options would make every other variant as large.
    Play(Box<play::PlayArgs>),
    /// Run the screen box: enroll, sync signed playlists, play, report proof of play.
    #[cfg(feature = "player")]
    Player(player::PlayerArgs),
    /// Measure performance against baselines run in the same process (SPEC §9).
    #[cfg(any(feature = "player", feature = "server"))]
    #[command(subcommand)]
    Bench(BenchCmd),
}

/// `ekran bench …`: the player's and the server's benchmarks under one name.
#[cfg(any(feature = "player", feature = "server"))]
#[derive(Debug, Subcommand)]
enum BenchCmd {
    #[cfg(feature = "player")]
    #[command(flatten)]
    Player(play::BenchCmd),
    #[cfg(feature = "server")]
    #[command(flatten)]
    Server(server::BenchCmd),
}

/// Parses the command line, installs the log subscriber and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Manifest(cmd) => manifest::run(cmd),
        Command::Playlist(cmd) => playlist::run(cmd),
        Command::Pop(cmd) => pop::run(cmd),
        #[cfg(feature = "server")]
        Command::Server(args) => server::run_server(args),
        #[cfg(feature = "server")]
        Command::Token(cmd) => server::run_token(cmd),
        #[cfg(feature = "server")]
        Command::Screen(cmd) => server::run_screen(cmd),
        #[cfg(feature = "server")]
        Command::Push(args) => server::run_push(args),
        #[cfg(feature = "server")]
        Command::Report(cmd) => server::run_report(cmd),
        #[cfg(feature = "agent")]
        Command::Agent(cmd) => agent::run(cmd),
        #[cfg(feature = "player")]
        Command::Play(args) => play::run(*args),
        #[cfg(feature = "player")]
        Command::Player(args) => player::run(args),
        #[cfg(any(feature = "player", feature = "server"))]
        Command::Bench(cmd) => match cmd {
            #[cfg(feature = "player")]
            BenchCmd::Player(cmd) => play::run_bench(cmd),
            #[cfg(feature = "server")]
            BenchCmd::Server(cmd) => server::run_bench(cmd),
        },
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
