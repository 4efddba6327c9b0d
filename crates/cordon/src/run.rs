//! `cordon run`: build the plan, start the sandbox, supervise it, report.

use crate::audit::Audit;
use crate::cli::RunArgs;
use crate::{guard, plan, EXIT_CORDON};
use cordon_linux::{mounts, pathguard, sandbox, supervise};
use serde_json::json;
use std::sync::Mutex;

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("cordon: {msg}");
    EXIT_CORDON
}

pub fn run(args: RunArgs) -> i32 {
    if args.isolation != "namespaces" {
        return fail(format!(
            "isolation mode {:?} is not available (use `namespaces`, the default)",
            args.isolation
        ));
    }
    let audit = match Audit::open(args.audit.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let plan = match plan::build(&args.layers, &args.command) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    audit.event(
        "start",
        json!({
            "argv": argv,
            "workspace": plan.workspace,
            "policy_digest": plan.effective.digest(),
            "writable": plan.spec.writable,
            "hidden": plan.spec.deny_read,
            "protected_binds": plan.spec.protect_existing.len(),
        }),
    );

    let mut roots = mounts::writable_roots(&plan.spec);
    roots.push("/dev".into());
    let guard_cfg = Mutex::new(Some(guard::config(
        plan.protect,
        roots,
        &plan.spec.protect_existing,
        audit.clone(),
    )));
    let signals = match supervise::block_signals() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // SAFETY: nothing before this point starts a thread; the process is single-threaded.
    let launched = match unsafe { sandbox::launch(&plan.spec, Some(pathguard::install)) } {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut guard_error = None;
    let result = supervise::run(launched, signals, |listener, init_pid| {
        let Some(cfg) = guard_cfg.lock().ok().and_then(|mut g| g.take()) else {
            return;
        };
        if let Err(e) = pathguard::serve(listener, init_pid, cfg) {
            // Without the guard, protected paths could be created: end the sandbox.
            guard_error = Some(e.to_string());
            let _ = cordon_linux::sys::kill(init_pid, libc::SIGKILL);
        }
    });
    match (result, guard_error) {
        (_, Some(e)) => {
            audit.event("stop", json!({ "status": EXIT_CORDON, "error": e }));
            fail(format!("cannot start the path guard: {e}"))
        }
        (Ok(code), None) => {
            audit.event("stop", json!({ "status": code }));
            code
        }
        (Err(e), None) => {
            audit.event(
                "stop",
                json!({ "status": EXIT_CORDON, "error": e.to_string() }),
            );
            fail(e)
        }
    }
}
