//! cordon: run an AI coding agent and everything it starts in a kernel-enforced sandbox.

// Tests may unwrap: a panic there is a failed test, not hostile input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agentconfig;
mod approval;
mod audit;
mod cli;
mod dirs;
mod doctor;
mod exec;
mod fileask;
mod gitprotect;
mod guard;
mod kube;
mod log;
mod mcp;
mod named;
mod net;
mod plan;
mod policy_cmd;
mod profiles;
mod run;
mod secrets;
mod shell;
mod vm;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

/// cordon's own failure: the command did not run.
pub const EXIT_CORDON: i32 = 125;

/// Reports cordon's own failure in its one line and returns the exit status that says so
/// (every subcommand fails this way: what went wrong and how to fix it, then 125).
pub fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("cordon: {msg}");
    EXIT_CORDON
}

fn main() {
    // Inside a VM guest, cordon is /init: no command line to parse.
    if cordon_vm::guest::is_init() {
        cordon_vm::guest::main();
    }
    // Installed as `cordon-shell` (a symlink), cordon is `cordon shell`: agents take $SHELL
    // as one path.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "cordon-shell")
    {
        argv.insert(1, "shell".into());
    }
    // A usage error is cordon's own failure (125), like any other: the command never ran.
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { EXIT_CORDON } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cordon", &mut std::io::stdout());
            0
        }
        Command::Mcp(args) => mcp::mcp(args),
        Command::Exec(args) => exec::exec(&args.name, &args.command),
        Command::Shell(args) => shell::shell(args),
        Command::Ls { json } => named::ls(json),
        Command::Rm { force, names } => named::rm(&names, force),
        Command::Gc { all } => named::gc(all),
        Command::VmHost(args) => vm::vm_host(args),
        Command::Profiles => profiles::list(),
        Command::Doctor { verbose } => doctor::doctor(verbose),
        Command::Kube { command } => kube::kube(command),
        Command::Approvals { sandbox } => approval::client::approvals(sandbox),
        Command::Log {
            sandbox,
            since,
            file,
        } => log::log_command(sandbox.as_deref(), since.as_deref(), file.as_deref()),
        Command::Connect { host, port } => net::connect_command(&host, port),
        Command::Policy { command } => policy_cmd::policy(command),
        Command::Config { command } => {
            let done = match command {
                cli::ConfigCommand::Diff { name } => agentconfig::diff(name.as_deref()),
                cli::ConfigCommand::Apply { name } => agentconfig::apply(&name),
            };
            done.unwrap_or_else(|e| {
                eprintln!("cordon: {e}");
                EXIT_CORDON
            })
        }
        Command::Trust { workspace, revoke } => policy_cmd::trust(workspace.as_deref(), revoke),
    };
    std::process::exit(code);
}
