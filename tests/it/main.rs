//! The one integration-test binary: one module per area.

mod cli_keys_manifest;
mod deploy;
mod dsse;
