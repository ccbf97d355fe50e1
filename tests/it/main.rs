//! The one integration-test binary: one module per area.
//! Helpers (`unwrap` and friends) are fine in tests.
#![allow(clippy::unwrap_used)]

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
mod trust;
