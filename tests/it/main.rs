//! The one integration-test binary: one module per area.
//! Helpers (`unwrap` and friends) are fine in tests.
#![allow(clippy::unwrap_used)]

mod cli_keys_manifest;
mod deploy;
mod dsse;
mod playlist;
mod pop;
mod schedule;
mod trust;
