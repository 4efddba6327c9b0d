//! cordon: run an AI coding agent and everything it starts in a kernel-enforced sandbox.

mod audit;
mod cli;
mod dirs;
mod doctor;
mod plan;
mod run;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

/// cordon's own failure: the command did not run.
pub const EXIT_CORDON: i32 = 125;

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cordon", &mut std::io::stdout());
            0
        }
        Command::Doctor => doctor::doctor(),
        Command::Policy { .. } | Command::Trust { .. } => {
            eprintln!("cordon: not implemented yet");
            EXIT_CORDON
        }
    };
    std::process::exit(code);
}
