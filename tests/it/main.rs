//! Ekran's integration tests: one test binary, one module per area.

#[cfg(feature = "agent")]
mod agent_crash;
#[cfg(feature = "agent")]
mod agent_download;
#[cfg(feature = "agent")]
mod agent_journal;
#[cfg(feature = "agent")]
mod agent_support;
#[cfg(feature = "agent")]
mod agent_watchdog;
