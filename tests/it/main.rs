//! The one integration-test binary: one module per area.
//! Helpers (`unwrap` and friends) are fine in tests.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "agent")]
mod agent_boot;
#[cfg(feature = "agent")]
mod agent_crash;
#[cfg(feature = "agent")]
mod agent_download;
#[cfg(feature = "agent")]
mod agent_journal;
#[cfg(feature = "agent")]
mod agent_support;
#[cfg(feature = "agent")]
mod agent_sync;
#[cfg(feature = "agent")]
mod agent_upload;
#[cfg(feature = "agent")]
mod agent_watchdog;
mod cli_keys_manifest;
mod deploy;
mod dsse;
#[cfg(feature = "player")]
mod playback;
#[cfg(feature = "player")]
mod playback_media;
#[cfg(feature = "player")]
mod playback_render;
#[cfg(feature = "player")]
mod playback_window;
mod playlist;
mod pop;
mod schedule;
#[cfg(feature = "server")]
mod server_api;
#[cfg(feature = "server")]
mod server_bad_input;
#[cfg(feature = "server")]
mod server_bench;
#[cfg(feature = "server")]
mod server_cli;
#[cfg(feature = "server")]
mod server_device;
#[cfg(feature = "server")]
mod server_media;
#[cfg(feature = "server")]
mod server_pop;
#[cfg(feature = "server")]
mod server_publish;
#[cfg(feature = "server")]
mod server_support;
mod trust;
