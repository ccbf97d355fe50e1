//! The benchmark harness runs end to end on both backends (tiny sizes;
//! what it measures is printed by `ekran bench ingest`, never asserted).

use ekran::server::bench::{self, BenchDb};

use crate::both_backends;
use crate::server_support::{Backend, pg_admin_url};

both_backends!(bench_harness_runs);

async fn bench_harness_runs(backend: Backend) {
    let db = match backend {
        Backend::Sqlite => BenchDb::Sqlite,
        Backend::Postgres => BenchDb::Postgres(pg_admin_url()),
    };
    // Two rounds: the second uploads the same chains again on emptied
    // tables (the harness fails unless every upload is acknowledged).
    let ingest = bench::ingest(&db, 120, 50, 3, 2).await.unwrap();
    assert_eq!((ingest.records, ingest.batch), (120, 50));
    assert_eq!(ingest.rounds.len(), 2);
    for round in &ingest.rounds {
        assert_eq!((round.fleet.screens, round.fleet.records), (3, 120));
        assert!(round.fleet.ratio().is_finite() && round.fleet.ratio() > 0.0);
        assert!(round.ratio().is_finite() && round.ratio() > 0.0);
    }
    assert!(ingest.ratio().is_finite() && ingest.fleet_ratio().is_finite());
    assert!(ingest.verify_per_sec > 0.0 && ingest.verify_ceiling() < 1.0);
    let fetches = bench::manifest_304(&db, 20, 4).await.unwrap();
    assert!(fetches.per_sec > 0.0);
    // 50 screens x 5 campaigns x 28 days x 7 venues, folded by the modulos.
    let report = bench::report(&db, 2_000).await.unwrap();
    assert!(report.rows > 0 && report.speedup().is_finite());
}

/// `ekran bench ingest --scalar-engine` measures the engine of a CPU
/// without AVX-512 IFMA wherever it runs, and says so.
#[tokio::test]
async fn bench_ingest_can_check_on_the_scalar_engine() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ekran"))
        .args([
            "bench",
            "ingest",
            "--scalar-engine",
            "--records",
            "60",
            "--batch",
            "20",
        ])
        .args([
            "--screens",
            "2",
            "--rounds",
            "1",
            "--fetches",
            "4",
            "--concurrency",
            "2",
        ])
        .env_remove("DATABASE_URL")
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("PoP ingest, one screen"), "{stdout}");
    assert!(
        stdout.contains("checks alone") && stdout.contains("(64-bit scalar engine"),
        "{stdout}"
    );
}
