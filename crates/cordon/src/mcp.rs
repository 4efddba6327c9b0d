//! `cordon mcp`: a stdio MCP server in its own sandbox. The agent speaks JSON-RPC over the
//! server's stdin/stdout, so there is never a pty (bytes pass through untouched), the
//! workspace is read-only and there is no network unless asked for.

use crate::cli::{McpArgs, RunArgs};
use crate::plan::BuildOpts;
use cordon_linux::Stdio;

pub fn mcp(args: McpArgs) -> i32 {
    let wants_net = args.network
        || !args.layers.allow_domain.is_empty()
        || !args.host_port.is_empty()
        || !args.layers.profile.is_empty();
    let run = RunArgs {
        layers: args.layers,
        audit: args.audit,
        no_network: !wants_net,
        host_port: args.host_port,
        publish: Vec::new(),
        isolation: crate::cli::Isolation::Namespaces,
        vm: Default::default(),
        // An agent's profile would give the server the agent's hosts and state.
        no_auto_profile: true,
        named: Default::default(),
        command: args.command,
    };
    crate::run::run_with(
        run,
        BuildOpts {
            stdio: Some(Stdio::Inherit),
            workspace_writable: false,
            ..BuildOpts::default()
        },
    )
}
