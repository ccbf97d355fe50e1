//! `ekran player`: the screen box's daemon. The sync agent runs on a tokio
//! runtime in its own thread; the playback engine (window or headless)
//! runs on the main thread (winit wants it), fed through
//! [`ekran::player::agent_source`]. SIGTERM or Ctrl-C stops the agent,
//! which journals the play on screen as interrupted and then ends the engine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use ekran::agent::config::PlayerConfig;
use ekran::player::agent_source::{RealTimeHeadless, bridge, run_headless_realtime};
use ekran::player::decode::DecodeConfig;
use ekran::player::window::{WindowConfig, run_window};
use ekran::player::{EngineConfig, Rotation};

/// Run the player: enroll, sync, play, journal and upload proof of play.
#[derive(Debug, clap::Args)]
pub struct PlayerArgs {
    /// The player's TOML config (see deploy/player.toml).
    #[arg(long, value_name = "FILE", default_value = "/etc/ekran/player.toml")]
    config: PathBuf,
    /// Render offscreen instead of a window (overrides `output.headless`).
    #[arg(long)]
    headless: bool,
    /// Write PNG snapshots here (overrides `output.snapshot_dir`).
    #[arg(long, value_name = "DIR")]
    snapshot_dir: Option<PathBuf>,
    /// Seconds between headless snapshots.
    #[arg(long, default_value_t = 1.0)]
    snapshot_every: f64,
    /// Headless refreshes per second (low values spare a software rasterizer).
    #[arg(long, default_value_t = 30.0)]
    refresh: f64,
}

pub fn run(args: PlayerArgs) -> anyhow::Result<ExitCode> {
    let mut config = PlayerConfig::load(&args.config)?;
    if args.headless {
        config.output.headless = true;
    }
    if args.snapshot_dir.is_some() {
        config.output.snapshot_dir = args.snapshot_dir.clone();
    }
    let output = config.output.clone();
    let rotation = Rotation::from_degrees(u32::from(output.rotation)).with_context(|| {
        format!(
            "output.rotation {} in {}: expected 0, 90, 180 or 270",
            output.rotation,
            args.config.display()
        )
    })?;
    let mut decode = DecodeConfig {
        volume: output.volume.clamp(0.0, 1.0),
        ..DecodeConfig::default()
    };
    if !output.decoders.is_empty() {
        decode.hardware_decoders = output.decoders.clone();
    }
    let engine_config = EngineConfig {
        decode,
        rotation,
        // Runs for months: keep the recent plays' statistics only.
        item_history: Some(ekran::player::PLAYER_ITEM_HISTORY),
        ..EngineConfig::default()
    };
    if !(args.snapshot_every.is_finite() && args.snapshot_every > 0.0) {
        anyhow::bail!("--snapshot-every must be a positive number of seconds");
    }

    let (port, source) = bridge();
    let (engine_gone, engine_gone_rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let agent = std::thread::Builder::new()
        .name("agent".into())
        .spawn(move || {
            runtime.block_on(async move {
                let shutdown = async move {
                    tokio::select! {
                        () = termination() => tracing::info!("stop requested; stopping"),
                        _ = engine_gone_rx => tracing::info!("output closed; stopping"),
                    }
                };
                ekran::agent::run::run(config, port, shutdown).await
            })
        })
        .context("cannot start the agent thread")?;

    let played = if output.headless {
        let size = (
            if output.width == 0 {
                1920
            } else {
                output.width
            },
            if output.height == 0 {
                1080
            } else {
                output.height
            },
        );
        run_headless_realtime(
            Box::new(source),
            engine_config,
            &RealTimeHeadless {
                size,
                refresh_hz: args.refresh,
                snapshot_dir: output.snapshot_dir.clone(),
                snapshot_every: Duration::from_secs_f64(args.snapshot_every),
                backends: ekran::player::backends(output.backend),
            },
        )
    } else {
        let config = WindowConfig {
            size: (output.width > 0 && output.height > 0).then_some((output.width, output.height)),
            backends: ekran::player::backends(output.backend),
            ..WindowConfig::default()
        };
        run_window(Box::new(source), engine_config, config)
    };
    // The engine ended (the agent stopped, or the output failed or closed):
    // make sure the agent stops too, then wait for its last journal write.
    let _ = engine_gone.send(());
    let agent_result = agent
        .join()
        .map_err(|_| anyhow::anyhow!("the agent thread panicked"))?;
    played.context("playback engine failed")?;
    agent_result.context("player agent failed")?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM (systemd stop) or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(%error, "cannot watch SIGTERM; only Ctrl-C stops the player");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
