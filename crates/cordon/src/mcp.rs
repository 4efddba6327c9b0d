//! `cordon mcp`: a stdio MCP server in its own sandbox. The agent speaks JSON-RPC over the
//! server's stdin/stdout, so there is never a pty (bytes pass through untouched), the
//! workspace is read-only and there is no network unless asked for.

use crate::cli::McpArgs;
use crate::plan::BuildOpts;
use cordon_linux::Stdio;

pub fn mcp(args: McpArgs) -> i32 {
    let wants_net = args.network
        || !args.layers.allow_domain.is_empty()
        || !args.net.host_ports.is_empty()
        || !args.layers.profile.is_empty();
    // No profile is picked from the command's name: an agent's profile would give the
    // server the agent's hosts and state.
    crate::run::run_request(crate::run::Request {
        command: args.command,
        layers: args.layers,
        audit: args.audit,
        network: wants_net.then_some(args.net),
        publish: Vec::new(),
        isolation: crate::cli::Isolation::Namespaces,
        named: Default::default(),
        vm: Default::default(),
        opts: BuildOpts {
            stdio: Some(Stdio::Inherit),
            workspace_writable: false,
            ..BuildOpts::default()
        },
        repeat_at_exit: Vec::new(),
    })
}
