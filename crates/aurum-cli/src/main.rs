//! `aurum`: the one binary. Trains, registers, serves, audits and configures aurum.
//!
//! Every subcommand runs against a data directory (`--data-dir`, default `./aurum-data`) through
//! the same service layer the HTTP server uses, so a model trained here is the model served there.
//!
//! Exit codes: 0 success; 1 error; 2 usage error; 3 `audit verify` found a broken chain or a log
//! that disagrees with its signed anchor; 4 `predict --strict` stopped at a row it could not
//! score; 130 `predict --input` interrupted (Ctrl-C) after writing the rows scored so far.

// The binary's job is to print; libraries may not (workspace lint).
#![allow(clippy::print_stdout)]

mod cli;
mod commands;
mod output;
mod predict;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
