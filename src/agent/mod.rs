//! The player's sync agent (SPEC §4–§6), without GPU or GStreamer: what a
//! screen box keeps on disk and fetches from the network.
//!
//! - [`config`]: the player's TOML configuration (`/etc/ekran/player.toml`).
//! - [`boot`]: the accepted manifests on disk (active, pending) and what
//!   is playable at boot before any network.
//! - [`sync`]: applying a manifest envelope: trust rules, pending manifest,
//!   media fetch, atomic activation, eviction.
//! - [`journal`]: the durable, hash-chained proof-of-play journal with the
//!   checkpoint of the play in progress.
//! - [`cache`]: the content-addressed media cache (verify, commit, evict,
//!   quota); [`download`]: resumable, size-capped, throughput-floored HTTP
//!   downloads into it.
//! - [`upload`]: delivering journal records in batches, retried for ever,
//!   removed only once acknowledged.
//! - [`backoff`]: capped exponential backoff with full jitter, shared by
//!   every retry loop.
//! - [`watchdog`]: systemd `READY=1` and watchdog pings that stop when the
//!   playback loop stalls.
//!
//! The device-API client (enrollment, manifest long-poll, proof-of-play
//! upload request, heartbeat) is not here yet; it plugs in through
//! [`sync::Syncer::apply_envelope`] (each envelope the long-poll returns),
//! [`download::AuthorizeRequest`] (credentials on media requests) and
//! [`upload::PopTransport`] (one batch upload).

pub mod backoff;
pub mod boot;
pub mod cache;
pub mod config;
pub mod download;
pub mod journal;
pub mod sync;
pub mod upload;
pub mod watchdog;
