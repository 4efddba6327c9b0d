//! cordon: run an AI coding agent and everything it starts in a kernel-enforced sandbox.

mod approval;
mod audit;
mod cli;
mod dirs;
mod doctor;
mod gitprotect;
mod guard;
mod log;
mod mcp;
mod net;
mod plan;
mod policy_cmd;
mod profiles;
mod run;
mod vm;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

/// cordon's own failure: the command did not run.
pub const EXIT_CORDON: i32 = 125;

fn main() {
    // Inside a VM guest, cordon is /init: no command line to parse.
    if vm::guest::is_init() {
        vm::guest::main();
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cordon", &mut std::io::stdout());
            0
        }
        Command::Mcp(args) => mcp::mcp(args),
        Command::VmHost(args) => vm::vm_host(args),
        Command::Profiles => profiles::list(),
        Command::Doctor => doctor::doctor(),
        Command::Approvals { sandbox } => approval::client::approvals(sandbox),
        Command::Log {
            sandbox,
            since,
            file,
        } => log::log_command(sandbox.as_deref(), since.as_deref(), file.as_deref()),
        Command::Connect { host, port } => net::connect_command(&host, port),
        Command::Policy { command } => policy_cmd::policy(command),
        Command::Trust { workspace, revoke } => policy_cmd::trust(workspace.as_deref(), revoke),
    };
    std::process::exit(code);
}
