//! `cordon run`: build the plan, start the sandbox, supervise it, report.

use crate::audit::Audit;
use crate::cli::RunArgs;
use crate::{plan, EXIT_CORDON};
use cordon_linux::{sandbox, supervise};
use serde_json::json;

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("cordon: {msg}");
    EXIT_CORDON
}

pub fn run(args: RunArgs) -> i32 {
    if args.isolation != "namespaces" {
        return fail(format!("unknown isolation mode {:?} (use `namespaces`)", args.isolation));
    }
    let audit = match Audit::open(args.audit.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let plan = match plan::build(&args.layers, &args.command) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let argv: Vec<String> = args.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    audit.event("start", json!({ "argv": argv, "workspace": plan.workspace }));

    let signals = match supervise::block_signals() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // SAFETY: nothing before this point starts a thread; the process is single-threaded.
    let launched = match unsafe { sandbox::launch(&plan.spec, None) } {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    match supervise::run(launched, signals, |_fd, _pid| {}) {
        Ok(code) => {
            audit.event("stop", json!({ "status": code }));
            code
        }
        Err(e) => {
            audit.event("stop", json!({ "status": EXIT_CORDON, "error": e.to_string() }));
            fail(e)
        }
    }
}
