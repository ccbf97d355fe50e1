//! The `ekran` binary: parses the command line, sets up logging and calls
//! into the library. All logic lives in `ekran::*`; `src/cli/` only turns
//! arguments into calls and results into text and exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
