//! `ekran pop …`: offline verification of proof-of-play exports, for
//! auditors who should not have to take airtime figures on trust.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ekran::pop::{AuditBundle, AuditReport, verify_bundle};

/// Proof-of-play commands.
#[derive(Debug, clap::Subcommand)]
pub enum PopCmd {
    /// Verify an auditor's export: every record's hash and screen signature,
    /// and each screen's chain (gaps, forks, reordering). Exits 0 only when
    /// every record verifies and nothing is missing.
    Verify {
        /// The export (`ekran-pop-audit/1` JSON).
        file: PathBuf,
        /// Print the full report as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `pop` subcommand.
pub fn run(cmd: PopCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PopCmd::Verify { file, json } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let bundle = AuditBundle::from_json(&bytes)
                .with_context(|| format!("{} is not a proof-of-play export", file.display()))?;
            let report = verify_bundle(&bundle);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_summary(&report);
            }
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn print_summary(report: &AuditReport) {
    for screen in &report.screens {
        let chain = &screen.chain;
        println!(
            "screen {}: {} records, {} verified, complete through seq {}",
            screen.screen_id,
            chain.records,
            chain.verified_seqs.len(),
            chain.highest_contiguous
        );
        if let Some(error) = &screen.key_error {
            println!("  problem: {error}");
        }
        for finding in &chain.findings {
            println!("  finding: {finding}");
        }
        for airtime in &screen.airtime {
            print!(
                "  campaign {:?}: {} plays ({} completed), {:.1} s verified",
                airtime.campaign,
                airtime.plays,
                airtime.completed_plays,
                airtime.airtime_ms as f64 / 1000.0
            );
            if airtime.unverified_plays > 0 {
                print!(
                    "; {} plays, {:.1} s NOT verified",
                    airtime.unverified_plays,
                    airtime.unverified_airtime_ms as f64 / 1000.0
                );
            }
            println!();
        }
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if report.is_clean() {
        println!("OK: every record verified; no gaps, forks or reordering");
    } else {
        println!("FAILED: see the findings above");
    }
}
