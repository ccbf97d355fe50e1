//! Operational counters served at `/metrics` in the Prometheus text format:
//! requests by status class, proof-of-play records ingested, publish
//! latency, and (read from the database at scrape time) screens online.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-local counters (each server process exports its own).
#[derive(Debug, Default)]
pub struct Metrics {
    requests_2xx: AtomicU64,
    requests_3xx: AtomicU64,
    requests_4xx: AtomicU64,
    requests_5xx: AtomicU64,
    pop_records: AtomicU64,
    publications: AtomicU64,
    publish_micros: AtomicU64,
}

/// Fleet figures read from the database when scraped.
#[derive(Debug, Default, Clone, Copy)]
pub struct FleetGauges {
    /// Enrolled screens.
    pub screens: u64,
    /// Screens whose last heartbeat is recent.
    pub online: u64,
    /// Online screens that report themselves stale (manifest expired).
    pub stale: u64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, status: u16) {
        let counter = match status {
            200..=299 => &self.requests_2xx,
            300..=399 => &self.requests_3xx,
            400..=499 => &self.requests_4xx,
            _ => &self.requests_5xx,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts newly stored proof-of-play records.
    pub fn pop_records_ingested(&self, count: u64) {
        self.pop_records.fetch_add(count, Ordering::Relaxed);
    }

    /// Records one per-screen publication and how long compiling and signing it took.
    pub fn published(&self, elapsed: std::time::Duration) {
        self.publications.fetch_add(1, Ordering::Relaxed);
        self.publish_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self, fleet: FleetGauges) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP ekran_http_requests_total HTTP requests answered, by status class."
        );
        let _ = writeln!(out, "# TYPE ekran_http_requests_total counter");
        for (class, counter) in [
            ("2xx", &self.requests_2xx),
            ("3xx", &self.requests_3xx),
            ("4xx", &self.requests_4xx),
            ("5xx", &self.requests_5xx),
        ] {
            let _ = writeln!(
                out,
                "ekran_http_requests_total{{class=\"{class}\"}} {}",
                load(counter)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ekran_pop_records_ingested_total Proof-of-play records stored."
        );
        let _ = writeln!(out, "# TYPE ekran_pop_records_ingested_total counter");
        let _ = writeln!(
            out,
            "ekran_pop_records_ingested_total {}",
            load(&self.pop_records)
        );
        let _ = writeln!(
            out,
            "# HELP ekran_publish_seconds Time to compile, sign and store per-screen manifests."
        );
        let _ = writeln!(out, "# TYPE ekran_publish_seconds summary");
        let _ = writeln!(
            out,
            "ekran_publish_seconds_sum {}",
            load(&self.publish_micros) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "ekran_publish_seconds_count {}",
            load(&self.publications)
        );
        for (name, help, value) in [
            ("ekran_screens", "Enrolled screens.", fleet.screens),
            (
                "ekran_screens_online",
                "Screens with a heartbeat in the last 5 minutes.",
                fleet.online,
            ),
            (
                "ekran_screens_stale",
                "Online screens playing an expired manifest.",
                fleet.stale,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}
