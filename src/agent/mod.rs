//! The player's sync agent (SPEC §4–§6), without GPU or GStreamer: what a
//! screen box keeps on disk and fetches from the network.
//!
//! - [`config`]: the player's TOML configuration (`/etc/ekran/player.toml`).
//! - [`journal`]: the durable, hash-chained proof-of-play journal with the
//!   checkpoint of the play in progress.
//! - [`backoff`]: capped exponential backoff with full jitter, shared by
//!   every retry loop.

pub mod backoff;
pub mod config;
pub mod journal;
