//! All integration tests, compiled into one test binary (one `mod` per area).

#[cfg(feature = "server")]
mod server_api;
#[cfg(feature = "server")]
mod server_support;
