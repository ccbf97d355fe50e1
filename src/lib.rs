//! Ekran: open-source digital signage with signed playlists, gapless
//! playback and verifiable proof of play.
//!
//! # Layout
//!
//! The protocol core is compiled in every feature set; the player and the
//! server live behind the `player` and `server` features so that a Pi build
//! compiles no server dependency and the server no GPU/GStreamer one.
//!
//! Protocol core:
//! - [`keys`]: Ed25519 key pairs on disk (PKCS#8 / SPKI PEM) and key ids.
//! - [`dsse`]: Dead Simple Signing Envelopes: PAE, signing, strict
//!   verification with a threshold of distinct keys.
//! - [`manifest`]: the signed per-screen manifest payload (SPEC §4) and its
//!   validation.
//! - [`trust`]: the player-side acceptance rules (rollback, freeze, root key
//!   rotation, time floor, size caps) as pure code with an injected clock,
//!   and the persisted trust state.
//! - [`playlist`]: the TOML source form of a campaign (SPEC §3), validated
//!   with `file:line:column` errors.
//! - [`schedule`]: what plays now and next, given a manifest and an instant.
//! - [`pop`]: proof-of-play records, their hash chain and signatures, and the
//!   chain verifier that reports gaps, forks, reordering and bad signatures.
//!
//! Player sync agent (feature `agent`, included in `player`):
//! - [`agent`]: the player's config file, enrollment and the signed
//!   device-API client, the manifest long-poll and atomic activation, boot to
//!   play (accepted manifests on disk), the content-addressed media cache and
//!   its downloads, the durable proof-of-play journal and its upload loop,
//!   heartbeats, the systemd watchdog, and `run`, which drives playback
//!   through the narrow `PlaybackPort` interface.
//!
//! Playback engine (feature `player`):
//! - [`player`]: one GStreamer pipeline per item (hardware decoders preferred
//!   by rank), NV12/I420 planes uploaded into wgpu textures and converted in
//!   WGSL (`shaders/`), gapless preroll and crossfade, stills, fit and
//!   rotation, the ticker and pairing screen, window and headless outputs,
//!   and `agent_source`, the bridge that lets the agent drive the engine;
//!   its own module map is in `src/player/mod.rs`.
//!
//! Server (feature `server`):
//! - [`server`]: the HTTP API on axum (people, devices, media, publishing,
//!   proof-of-play ingest, reports) over SQLite or PostgreSQL through sqlx.
//! - [`prepared_key`]: strict Ed25519 verification of many signatures by one
//!   key through fixed-base tables (the proof-of-play ingest).
//!
//! The binary (`src/main.rs`, `src/cli/`) parses the command line and calls
//! into these modules; it alone uses `anyhow`.

pub mod dsse;
pub mod keys;
pub mod manifest;
pub mod playlist;
pub mod pop;
pub mod schedule;
pub mod trust;

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "player")]
pub mod player;
#[cfg(feature = "server")]
pub mod prepared_key;
#[cfg(feature = "server")]
pub mod server;
