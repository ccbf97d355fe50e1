//! The central server: HTTP API on axum, storage on SQLite or PostgreSQL through sqlx.
