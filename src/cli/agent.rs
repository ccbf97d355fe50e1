//! `ekran agent …`: hidden helpers around the player's sync agent, used by
//! the crash tests (a real process that a test can SIGKILL at any instant).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use std::time::Duration;

use ekran::agent::journal::{DirStorage, Journal, JournalOptions};
use ekran::agent::watchdog::{self, Liveness, Watchdog};
use ekran::pop::{Outcome, PlayBody};

#[derive(Debug, clap::Subcommand)]
pub enum AgentCmd {
    /// Crash-test workload: append proof-of-play records to a journal for
    /// ever, printing `seq N` after each append returned (durable) and
    /// `ack N` after each acknowledgement returned.
    #[command(hide = true)]
    JournalSoak(SoakArgs),
    /// Watchdog test workload: `READY=1`, then a fake playback loop that
    /// beats `--beats` times and hangs; watchdog pings must stop with it.
    #[command(hide = true)]
    WatchdogSoak(WatchdogSoakArgs),
}

#[derive(Debug, clap::Args)]
pub struct WatchdogSoakArgs {
    /// Beats of the fake playback loop before it hangs.
    #[arg(long, default_value_t = 10)]
    beats: u64,
    /// Milliseconds between beats.
    #[arg(long, default_value_t = 20)]
    beat_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Journal directory (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// The screen's private key (PKCS#8 PEM) that signs the records.
    #[arg(long)]
    key: PathBuf,
    /// Acknowledge all but the newest few records every this many appends
    /// (0: never), to exercise acknowledgement and compaction under kills.
    #[arg(long, default_value_t = 7)]
    ack_every: u64,
    /// Compaction threshold in bytes (small: compaction runs often).
    #[arg(long, default_value_t = 2048)]
    compact_min_dead_bytes: u64,
    /// Instead of appending, checkpoint one play in progress for ever,
    /// printing `checkpoint LAST_PRESENTED_MS` after each durable checkpoint.
    #[arg(long)]
    checkpoint_only: bool,
}

pub fn run(cmd: AgentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCmd::JournalSoak(args) => journal_soak(args),
        AgentCmd::WatchdogSoak(args) => watchdog_soak(args),
    }
}

fn watchdog_soak(args: WatchdogSoakArgs) -> anyhow::Result<ExitCode> {
    let liveness = Liveness::new();
    let watchdog = Watchdog::from_env(liveness.clone())
        .context("WATCHDOG_USEC is not set: not running under a systemd watchdog")?;
    let playback = liveness.clone();
    std::thread::Builder::new()
        .name("fake-playback".into())
        .spawn(move || {
            for _ in 0..args.beats {
                playback.beat();
                std::thread::sleep(Duration::from_millis(args.beat_ms));
            }
            // Hung: no more beats, the process lives on.
        })?;
    watchdog::notify_ready();
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?
        .block_on(watchdog.run());
    Ok(ExitCode::SUCCESS)
}

fn journal_soak(args: SoakArgs) -> anyhow::Result<ExitCode> {
    let storage =
        DirStorage::new(&args.dir).with_context(|| format!("cannot use {}", args.dir.display()))?;
    let options = JournalOptions {
        compact_min_dead_bytes: args.compact_min_dead_bytes,
    };
    let screen_key = ekran::keys::read_signing_key(&args.key)?;
    let (mut journal, report) = Journal::open(storage, options)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "open pending={}", report.pending)?;
    if let Some(record) = journal.recover_interrupted(&screen_key)? {
        writeln!(out, "seq {}", record.body.seq)?;
    }
    if args.checkpoint_only {
        let mut play = soak_play(journal.head().seq + 1);
        for frame in 1u64.. {
            play.ended_at_ms = play.started_at_ms + (frame * 40) as i64;
            play.frames_presented = frame;
            journal.checkpoint(&play)?;
            writeln!(out, "checkpoint {}", play.ended_at_ms)?;
            out.flush()?;
        }
    }
    // Acknowledge at start too, so that kills shortly after start-up hit
    // acknowledgements and compactions, not only appends.
    if args.ack_every > 0 {
        acknowledge_all_but_newest(&mut journal, &mut out)?;
    }
    let mut appended = 0u64;
    loop {
        let record = journal.append_play(soak_play(journal.head().seq + 1), &screen_key)?;
        let seq = record.body.seq;
        writeln!(out, "seq {seq}")?;
        out.flush()?;
        appended += 1;
        if args.ack_every > 0 && appended.is_multiple_of(args.ack_every) {
            acknowledge_all_but_newest(&mut journal, &mut out)?;
        }
    }
}

/// Plays the server: acknowledges everything but the three newest records.
fn acknowledge_all_but_newest(
    journal: &mut Journal<DirStorage>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let up_to = journal.head().seq.saturating_sub(3);
    if up_to > journal.acknowledged_seq() {
        journal.acknowledge(up_to)?;
        writeln!(out, "ack {up_to}")?;
        out.flush()?;
    }
    Ok(())
}

fn soak_play(seq: u64) -> PlayBody {
    let started_at_ms = 1_782_460_800_000 + seq as i64 * 30_000;
    PlayBody {
        screen_id: "scr-soak".to_owned(),
        seq,
        play_id: format!("soak-{seq}"),
        item_id: "clip".to_owned(),
        campaign: "soak".to_owned(),
        media_sha256: "5f".repeat(32),
        manifest_version: 1,
        started_at_ms,
        ended_at_ms: started_at_ms + 30_000,
        duration_ms: 30_000,
        frames_presented: 750,
        frames_dropped: 0,
        outcome: Outcome::Completed,
        stale: false,
    }
}
