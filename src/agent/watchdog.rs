//! systemd integration (SPEC §5 "runs forever"): `READY=1` once the player
//! is up, and `WATCHDOG=1` pings only while the playback loop makes
//! progress, so that systemd (`Type=notify`, `WatchdogSec=`) restarts a
//! player whose pipeline or render loop hung even though the process lives.
//!
//! The playback loop calls [`Liveness::beat`] every iteration (each frame,
//! or each tick of a still); the [`Watchdog`] pings only if the count moved
//! since its last check. Outside systemd (`NOTIFY_SOCKET` unset) every
//! notification is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;

/// A counter the playback loop advances; shared with the [`Watchdog`].
#[derive(Debug, Clone, Default)]
pub struct Liveness(Arc<AtomicU64>);

impl Liveness {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records progress of the playback loop.
    pub fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Beats so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Tells systemd the player is up (`READY=1`). Failure is logged, not
/// fatal: a player that plays but cannot reach systemd is still useful.
pub fn notify_ready() {
    if let Err(error) = sd_notify::notify(&[NotifyState::Ready]) {
        tracing::warn!(%error, "sd_notify READY=1 failed");
    }
}

/// Pings systemd's watchdog while the playback loop advances.
#[derive(Debug)]
pub struct Watchdog {
    interval: Duration,
    liveness: Liveness,
    last_count: u64,
    stalled_logged: bool,
}

impl Watchdog {
    /// The watchdog systemd asked for (`WATCHDOG_USEC`), or `None` when the
    /// player does not run under a systemd watchdog.
    ///
    /// `WATCHDOG_PID` is deliberately not required to be this process: on a
    /// box the player runs under the kiosk compositor (`cage -- ekran
    /// player`), so systemd's main PID, which `WATCHDOG_PID` names, is
    /// cage's, and the unit sets `NotifyAccess=all` to accept the player's
    /// pings. (`sd_notify::watchdog_enabled` would return `None` there.)
    pub fn from_env(liveness: Liveness) -> Option<Self> {
        let usec = std::env::var("WATCHDOG_USEC")
            .ok()?
            .parse::<u64>()
            .ok()
            .filter(|usec| *usec > 0)?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid != std::process::id().to_string()
        {
            tracing::info!(watchdog_pid = %pid, "watchdog requested for the service's main process (the compositor); the player pings it");
        }
        Some(Self::new(Duration::from_micros(usec), liveness))
    }

    /// A watchdog for a systemd timeout of `timeout`: checks (and pings)
    /// twice per timeout, as sd_watchdog_enabled(3) recommends.
    pub fn new(timeout: Duration, liveness: Liveness) -> Self {
        let last_count = liveness.count();
        Self {
            interval: timeout / 2,
            liveness,
            last_count,
            stalled_logged: false,
        }
    }

    /// How often [`Self::check`] should run.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Pings if the playback loop advanced since the last check; returns
    /// whether it did.
    pub fn check(&mut self) -> bool {
        let count = self.liveness.count();
        if count == self.last_count {
            if !self.stalled_logged {
                tracing::error!(
                    beats = count,
                    "playback loop stalled: withholding watchdog pings so systemd restarts the player"
                );
                self.stalled_logged = true;
            }
            return false;
        }
        self.last_count = count;
        self.stalled_logged = false;
        if let Err(error) = sd_notify::notify(&[NotifyState::Watchdog]) {
            tracing::warn!(%error, "sd_notify WATCHDOG=1 failed");
        }
        true
    }

    /// Checks every [`Self::interval`] until the task is dropped.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_only_when_the_playback_loop_advanced() {
        let liveness = Liveness::new();
        let mut watchdog = Watchdog::new(Duration::from_secs(10), liveness.clone());
        assert_eq!(watchdog.interval(), Duration::from_secs(5));
        assert!(!watchdog.check(), "no beat yet");
        liveness.beat();
        assert!(watchdog.check());
        assert!(!watchdog.check(), "no beat since the last check");
        liveness.beat();
        liveness.beat();
        assert!(watchdog.check());
    }
}
