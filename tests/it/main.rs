//! The one integration-test binary: one module per area.
//! Helpers (`unwrap` and friends) are fine in tests.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "agent")]
mod agent_boot;
#[cfg(feature = "agent")]
mod agent_crash;
#[cfg(feature = "agent")]
mod agent_download;
#[cfg(all(feature = "agent", feature = "server"))]
mod agent_e2e;
#[cfg(all(feature = "agent", feature = "server"))]
mod agent_e2e_support;
#[cfg(all(feature = "agent", feature = "server"))]
mod agent_enroll;
#[cfg(all(feature = "agent", feature = "server"))]
mod agent_hostile_e2e;
#[cfg(feature = "agent")]
mod agent_journal;
#[cfg(feature = "player")]
mod agent_screenshot;
#[cfg(feature = "agent")]
mod agent_support;
#[cfg(all(feature = "agent", feature = "server"))]
mod agent_switch;
#[cfg(feature = "agent")]
mod agent_sync;
#[cfg(feature = "agent")]
mod agent_upload;
#[cfg(all(feature = "agent", feature = "server"))]
mod agent_upload_e2e;
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
#[cfg(all(feature = "player", feature = "server"))]
mod player_e2e;
#[cfg(all(feature = "player", feature = "server"))]
mod player_e2e_support;
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
#[cfg(feature = "server")]
mod web_browser;
#[cfg(feature = "server")]
mod web_firefox;
#[cfg(feature = "server")]
mod web_form;
#[cfg(feature = "server")]
mod web_http;
#[cfg(feature = "server")]
mod web_support;
#[cfg(feature = "server")]
mod web_venues;
