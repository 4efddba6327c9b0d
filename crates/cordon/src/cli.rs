//! The command line. Keep it stable: scripts and later features depend on it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "cordon",
    version,
    about = "Run an AI coding agent, and everything it starts, in a kernel-enforced sandbox",
    long_about = "cordon runs a command (an agent such as claude, codex or gemini, or a shell, or `make test`) \
                  in a sandbox: the host's files read-only, the workspace writable, configuration files \
                  protected, secrets hidden, no network, and nothing left behind when it ends."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command inside a sandbox
    #[command(
        after_help = "Exit status: the command's own; 128+N if it died of signal N; \
                            125 if cordon itself failed (the command did not run); \
                            126/127 if the command could not be executed / was not found."
    )]
    Run(RunArgs),
    /// Show or check policy
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Agents' own settings saved inside sandboxes: review them and copy them out
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Trust the project policy file of a workspace (bound to its exact content)
    Trust {
        /// Workspace whose .cordon.toml to trust (default: the current directory)
        #[arg(short, long)]
        workspace: Option<PathBuf>,
        /// Remove the trust instead
        #[arg(long)]
        revoke: bool,
    },
    /// Answer the sandboxes' approval requests in this terminal (a = allow once, d = deny,
    /// s = allow for the session when offered, q = quit)
    Approvals {
        /// Only this sandbox (its id, as in `<runtime dir>/approvals/<id>.sock`)
        sandbox: Option<String>,
    },
    /// Show what was denied (last day by default), grouped by destination or path, with the
    /// rule that decided and the flag or policy line that would allow it
    Log {
        /// Only this sandbox's run (its id, as printed after a run with denials)
        #[arg(long, value_name = "ID")]
        sandbox: Option<String>,
        /// Only events since T: 30m, 2h, 1d, today, or unix seconds
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Read this audit file instead of the run logs
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Run a command inside a running named sandbox (`cordon run --name NAME`)
    #[command(
        after_help = "Same namespaces, file-system rules, protections, seccomp filter, network door \
                            and approvals as the run. On a terminal CMD gets a filtered pty; otherwise \
                            stdio is passed through. Exit status: the command's own; 125 if cordon \
                            failed (e.g. NAME is not running)."
    )]
    Exec(ExecArgs),
    /// A drop-in $SHELL for agents: each `-c CMD` runs inside this workspace's named sandbox
    /// (started in the background when needed; it ends after 15 idle minutes)
    Shell(ShellArgs),
    /// List named sandboxes: name, workspace, age, size on disk, last use, running or not
    Ls {
        /// One JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove named sandboxes and everything they kept
    Rm {
        /// Stop a running sandbox first
        #[arg(short, long)]
        force: bool,
        /// Sandbox names
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Remove named sandboxes older than their maximum age (with --all: every stopped one)
    Gc {
        /// Remove every stopped named sandbox
        #[arg(long)]
        all: bool,
    },
    /// Run a stdio MCP server in a sandbox: no pty, no network, workspace read-only
    #[command(
        after_help = "Put it in front of every local MCP server in an agent's configuration, e.g. \
                            \"command\": \"cordon\", \"args\": [\"mcp\", \"--\", \"npx\", \"-y\", \"some-server\"]. \
                            Network: none unless --allow-domain, --profile or --network is given."
    )]
    Mcp(McpArgs),
    /// List agent and tool profiles (built in, or yours in ~/.config/cordon/profiles)
    Profiles,
    /// Check what this machine supports, layer by layer, by starting a tiny sandbox
    Doctor {
        /// Also boot a test guest for the VM tier (takes seconds; the result is cached)
        #[arg(long, short)]
        verbose: bool,
    },
    /// Kubernetes: render agent-sandbox objects from this policy, claim warm sandboxes, check
    /// manifests offline
    Kube {
        #[command(subcommand)]
        command: crate::kube::KubeCommand,
    },
    /// Connect stdin/stdout to HOST:PORT through the sandbox's network door (ssh ProxyCommand)
    #[command(hide = true)]
    Connect { host: String, port: u16 },
    /// The host side of `--isolation vm` (runs QEMU inside the outer sandbox)
    #[command(hide = true, name = "vm-host")]
    VmHost(crate::vm::VmHostArgs),
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Show what agents saved inside sandboxes against the files on the host
    Diff {
        /// Only this profile's files (default: every profile's)
        name: Option<String>,
    },
    /// Copy what profile NAME saved inside sandboxes to the host (read `cordon config diff` first)
    Apply {
        /// The profile (`claude`, `codex`, `gemini`, `opencode`, ...)
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print the merged effective policy, each rule with the file and tier it came from
    Show {
        #[command(flatten)]
        layers: PolicyLayers,
        /// Only the rules the `--profile` profiles add
        #[arg(long)]
        only: bool,
    },
    /// Validate a policy file (errors name file:line:col); without FILE, every tier that
    /// applies here (what `cordon run` would read)
    Check {
        /// The policy file
        file: Option<PathBuf>,
        #[command(flatten)]
        layers: PolicyLayers,
    },
}

/// Everything that contributes policy, shared by `run` and `policy show`.
#[derive(Args, Debug, Clone, Default)]
pub struct PolicyLayers {
    /// The read-write project root (default: the current directory)
    #[arg(short, long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// An extra policy file, merged at the user tier (repeatable)
    #[arg(short, long = "policy", value_name = "FILE")]
    pub policy: Vec<PathBuf>,
    /// Make PATH writable and persistent (repeatable; ~ expanded)
    #[arg(long, value_name = "PATH")]
    pub allow_write: Vec<String>,
    /// Make PATH readable even if a weaker rule hides it (repeatable)
    #[arg(long, value_name = "PATH")]
    pub allow_read: Vec<String>,
    /// Hide PATH from the sandbox (repeatable)
    #[arg(long, value_name = "PATH")]
    pub deny_read: Vec<String>,
    /// Pass host variable NAME, or set NAME=VALUE (repeatable)
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Add an agent or tool profile's rules (repeatable; `cordon profiles` lists them)
    #[arg(long = "profile", value_name = "NAME")]
    pub profile: Vec<String>,
    /// File-system mode: `strict` shows only system directories, the workspace and named
    /// paths; opening anything else asks an approver
    #[arg(long = "fs", value_name = "MODE", value_parser = ["normal", "strict"])]
    pub fs: Option<String>,
    /// Allow network access to PATTERN (`name`, `*.name`, optional `:PORT` or `:*`; default
    /// ports 80 and 443; repeatable; for `cordon mcp` it turns the network door on)
    #[arg(long, value_name = "PATTERN")]
    pub allow_domain: Vec<String>,
    /// Deny network access to PATTERN (beats any allow; repeatable)
    #[arg(long, value_name = "PATTERN")]
    pub deny_domain: Vec<String>,
}

/// `--isolation`: which walls a run gets.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Namespaces, Landlock, seccomp, the path guard and the network door (the default).
    Namespaces,
    /// A microVM (a second kernel) whose QEMU runs inside the namespace tier.
    Vm,
    /// Weaker, explicit: Landlock and seccomp only, no namespaces and no network.
    Landlock,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub layers: PolicyLayers,
    /// Append audit events (JSON lines) to FILE (`-`: standard output)
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Loopback only: no proxy, no DNS, nothing leaves the sandbox
    #[arg(long)]
    pub no_network: bool,
    #[command(flatten)]
    pub net: crate::net::NetFlags,
    /// Let the host reach a server listening inside the sandbox on PORT (repeatable)
    #[arg(long, value_name = "PORT")]
    pub publish: Vec<u16>,
    /// Isolation: `namespaces` (default, full), `vm` (a microVM inside the namespace tier:
    /// a second kernel) or `landlock` (weaker: no namespaces; see --help)
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Isolation::Namespaces)]
    pub isolation: Isolation,
    #[command(flatten)]
    pub vm: crate::vm::VmOpts,
    /// Do not pick a profile from the command's name (only --profile ones apply)
    #[arg(long)]
    pub no_auto_profile: bool,
    #[command(flatten)]
    pub named: NamedOpts,
    /// The command and its arguments
    #[arg(required = true, value_name = "CMD", allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct McpArgs {
    #[command(flatten)]
    pub layers: PolicyLayers,
    /// Append audit events (JSON lines) to FILE
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Turn the network door on with only the policy's allowed hosts
    #[arg(long)]
    pub network: bool,
    #[command(flatten)]
    pub net: crate::net::NetFlags,
    /// The server command and its arguments
    #[arg(required = true, value_name = "CMD", allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// `cordon run --name`: a named sandbox that keeps its state (see `cordon ls`).
#[derive(Args, Debug, Clone, Default)]
pub struct NamedOpts {
    /// Keep this sandbox's $HOME layer and /var/tmp between runs under NAME; other commands
    /// can join it with `cordon exec NAME`
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// End the sandbox after this many seconds without `cordon exec` activity (used by
    /// `cordon shell`)
    #[arg(long, value_name = "SECS", hide = true, requires = "name")]
    pub idle_exit: Option<u64>,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// The running named sandbox
    pub name: String,
    /// The command and its arguments
    #[arg(required = true, value_name = "CMD", allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ShellArgs {
    /// Run this command string (as `sh -c` would) inside the workspace's sandbox
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,
    /// Accepted for compatibility with login shells; ignored
    #[arg(short = 'l', long = "login")]
    pub login: bool,
    /// Accepted for compatibility; ignored
    #[arg(short = 'i')]
    pub interactive: bool,
    /// $0 and positional parameters for the command string
    #[arg(value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}
