//! All integration tests, one binary (one `mod` per area).

mod playlist;
mod schedule;
