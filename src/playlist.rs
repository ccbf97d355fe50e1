//! The TOML source form of a campaign playlist (SPEC §3).
