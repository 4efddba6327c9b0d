//! `cordon run`: build the plan, start the sandbox, supervise it, report.

use crate::approval::{self, Broker};
use crate::audit::{self, Audit};
use crate::cli::{Isolation, RunArgs};
use crate::fail;
use crate::net::{self, DoorParts, NetFlags};
use crate::{guard, plan, EXIT_CORDON};
use cordon_linux::pathguard::{self, GuardConfig, NetRoute};
use cordon_linux::spec::{DoorSocket, TRANSPARENT_PORT};
use cordon_linux::{mounts, sandbox, supervise, sys};
use cordon_net::{Door, NetPolicy, OriginalDst, Outcome, Precheck};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// The network side of a run: the door's policy and its original-destination map.
struct NetSetup {
    /// `unknown = "ask"`: destinations no rule names are asked about.
    asks: bool,
    policy: Arc<NetPolicy>,
    dst: Arc<OriginalDst>,
    /// Secrets and request rules at the door.
    l7: Option<Arc<cordon_net::L7>>,
}

/// What `supervise::run` hands over while the sandbox starts.
struct RunHooks {
    guard: Option<GuardConfig>,
    parts: DoorParts,
    net: Option<NetSetup>,
    /// The network door, once started (lazily: see [`net::start_door_when_needed`]).
    door: Arc<std::sync::Mutex<Option<Door>>>,
    broker: Option<Broker>,
    audit: Audit,
    error: Option<String>,
    /// Whether the path guard asks about files (`ask_read`, `ask_write`, strict mode).
    file_asks: bool,
    /// A named sandbox's exec socket (`cordon exec`).
    exec: Option<crate::exec::Server>,
    /// `$HOME` and the paths below it to reach inside once the sandbox is built (`None`
    /// without a private layer).
    home: Option<(std::path::PathBuf, Vec<std::path::PathBuf>)>,
    /// The sandbox's `$HOME`, kept open so the agent's saved settings can be read after the
    /// command ends.
    sandbox_home: Option<crate::agentconfig::SandboxView>,
}

impl RunHooks {
    fn route(&mut self, init_pid: libc::pid_t) -> Result<Option<NetRoute>, String> {
        let Some(net) = &self.net else {
            return Ok(None);
        };
        // Every door socket was sent before the command was forked, so they are all here.
        let listeners = self
            .parts
            .listeners
            .take()
            .ok_or("the sandbox did not hand over its network door")?;
        let mut opts = cordon_net::DoorOptions {
            l7: net.l7.clone(),
            ..Default::default()
        };
        if let Some(b) = self.broker.as_mut() {
            b.set_who(Arc::new(move |peer| {
                approval::procinfo::lookup(init_pid, peer)
            }));
            opts.approver = Some(b.approver());
        }
        let present = self.broker.as_ref().map(|b| b.presence());
        net::start_door_when_needed(
            listeners,
            Arc::clone(&net.policy),
            Arc::clone(&net.dst),
            self.audit.clone(),
            opts,
            Arc::clone(&self.door),
        )?;
        net::serve_host_ports(
            std::mem::take(&mut self.parts.host_ports),
            self.audit.clone(),
        );
        let dst = Arc::clone(&net.dst);
        let audit = self.audit.clone();
        let policy = Arc::clone(&net.policy);
        let door = Arc::clone(&self.door);
        let pre_audit = self.audit.clone();
        let sandbox = self
            .broker
            .as_ref()
            .map(|b| b.sandbox().to_string())
            .unwrap_or_default();
        let precheck = Arc::new(move |to: std::net::SocketAddr| {
            let synth = net::synthetic_names(&door, to.ip());
            let present = present.as_deref().map(|p| p as &dyn Fn() -> bool);
            match policy.precheck(synth.as_deref(), to, present) {
                Precheck::Door => true,
                Precheck::Refused(e) => {
                    pre_audit.event(e);
                    false
                }
                Precheck::Unanswered { target, port, fix } => {
                    pre_audit.event(audit::Approval::Decision(audit::Decision {
                        id: None,
                        sandbox: sandbox.clone(),
                        kind: audit::AskKind::Network,
                        target: target.to_string(),
                        port,
                        outcome: Outcome::NoApprover,
                        ms: 0,
                        connections: 1,
                        note: String::new(),
                        fix,
                    }));
                    false
                }
            }
        });
        Ok(Some(NetRoute {
            door: Some((
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, TRANSPARENT_PORT),
                SocketAddrV6::new(Ipv6Addr::LOCALHOST, TRANSPARENT_PORT, 0, 0),
            )),
            register: Arc::new(move |local, original| dst.register(local, original)),
            precheck,
            on_refused: Arc::new(move |target, why| {
                net::audit_refused_connect(&audit, target, why)
            }),
        }))
    }
}

impl supervise::Hooks for RunHooks {
    fn listener(&mut self, fd: OwnedFd, init_pid: libc::pid_t) {
        // The command has not run yet: its $HOME is still cordon's own overlay.
        if let Some((home, watched)) = self.home.take() {
            self.sandbox_home = crate::agentconfig::SandboxView::open(init_pid, &home, &watched)
                .map_err(|e| {
                    eprintln!("cordon: warning: settings saved inside will not be kept: {e}")
                })
                .ok();
        }
        let Some(mut cfg) = self.guard.take() else {
            return;
        };
        let started = self.route(init_pid).and_then(|route| {
            let audit = self.audit.clone();
            cfg.net = Some(route.unwrap_or_else(|| NetRoute {
                on_refused: Arc::new(move |target, why| {
                    net::audit_refused_connect(&audit, target, why)
                }),
                ..NetRoute::loopback_only()
            }));
            if let Some(b) = self.broker.as_ref().filter(|_| self.file_asks) {
                // Without it every file question is denied (fail closed).
                cfg.asker = b
                    .file_asker()
                    .map_err(|e| eprintln!("cordon: warning: {e}"))
                    .ok();
            }
            if let Some(x) = &self.exec {
                x.set_ready(cfg.net.as_ref(), cfg.asker.clone());
            }
            pathguard::serve(fd, init_pid, cfg)
                .map(drop)
                .map_err(|e| format!("cannot start the path guard: {e}"))
        });
        if let Err(e) = started {
            // A command that ends at once can take init with it while the guard starts (its
            // /proc entries vanish before it is a zombie); that is no failure: nothing ran
            // unguarded. Anything else is.
            let gone = (0..100).any(|_| {
                let exited = sys::has_exited(init_pid);
                if !exited {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                exited
            });
            if gone {
                // The command ended before the guard was up: nothing ran unguarded.
                return;
            }
            // Without the guard or the door the sandbox would be weaker than asked: end it.
            self.error = Some(e);
            let _ = sys::kill(init_pid, libc::SIGKILL);
        }
    }

    fn socket(&mut self, kind: DoorSocket, fd: OwnedFd) {
        self.parts.add(kind, fd);
    }
}

/// What a run is asked to do, free of the command line's shape: `cordon run`, `cordon mcp` and
/// the VM tier's outer sandbox each build one.
pub struct Request {
    pub command: Vec<std::ffi::OsString>,
    pub layers: crate::cli::PolicyLayers,
    /// `--audit FILE` (`-`: standard output); `None`: the run log only.
    pub audit: Option<std::path::PathBuf>,
    /// The network door and its flags; `None`: loopback only.
    pub network: Option<NetFlags>,
    pub publish: Vec<u16>,
    pub isolation: Isolation,
    pub named: crate::cli::NamedOpts,
    pub vm: crate::vm::VmOpts,
    pub opts: plan::BuildOpts,
    /// Said again when the command ends, before the exit lines (a first run's profile notice,
    /// which a full-screen command draws over at once).
    pub repeat_at_exit: Vec<String>,
}

impl From<RunArgs> for Request {
    fn from(a: RunArgs) -> Self {
        Request {
            command: a.command,
            layers: a.layers,
            audit: a.audit,
            network: (!a.no_network).then_some(a.net),
            publish: a.publish,
            isolation: a.isolation,
            named: a.named,
            vm: a.vm,
            opts: plan::BuildOpts::default(),
            repeat_at_exit: Vec::new(),
        }
    }
}

/// `cordon run`: picks the command's profile, shows a first run's notice, runs it.
pub fn run(mut args: RunArgs) -> i32 {
    let notices = match crate::profiles::prepare_run(&mut args) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let mut req = Request::from(args);
    // On a terminal the command may have drawn over the notice at once (an agent's full-screen
    // TUI does): it is said again after the command, before the exit lines (which end with
    // what to do next: they stay last, where the person reads).
    if rustix::termios::isatty(std::io::stderr()) {
        req.repeat_at_exit = notices
            .iter()
            .map(|n| {
                let n = n.strip_prefix("cordon: ").unwrap_or(n);
                let n = n.replace(" (Shown once.)", "");
                format!("cordon: shown at the start, again here in case the command's screen hid it: {n}")
            })
            .collect();
    }
    run_request(req)
}

/// Runs a request: the plan is made complete first, then the sandbox is started from it in
/// order; any failure is one line and exit 125.
pub fn run_request(req: Request) -> i32 {
    let lite = match req.isolation {
        Isolation::Namespaces => false,
        Isolation::Landlock => true,
        Isolation::Vm => return crate::vm::run(req),
    };
    match prepare(req, lite).and_then(execute) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// Kills init unless the supervisor took it over: a set-up step that fails after the launch
/// never leaves the command running with less isolation than was asked.
struct InitGuard(libc::pid_t);

impl InitGuard {
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        let _ = sys::kill(self.0, libc::SIGKILL);
    }
}

/// Everything a run needs, decided before anything starts; nothing changes it afterwards.
struct Prepared {
    sandbox_id: String,
    /// The run's audit log (`None`: none could be made; `-`: standard output).
    log_path: Option<std::path::PathBuf>,
    audit_flag: Option<std::path::PathBuf>,
    audit: Audit,
    started_at: f64,
    /// The command, for the audit trail.
    argv: Vec<String>,
    spec: cordon_linux::Spec,
    effective: cordon_policy::Effective,
    workspace: std::path::PathBuf,
    own: Arc<cordon_policy::OwnConfig>,
    new_state: Vec<std::path::PathBuf>,
    session: Option<crate::named::Session>,
    /// `--isolation landlock`'s private TMPDIR.
    lite_tmp: Option<std::path::PathBuf>,
    secrets: crate::secrets::Prepared,
    published: Vec<(u16, std::net::TcpListener)>,
    broker_settings: Option<approval::Settings>,
    hooks: RunHooks,
    exec_guard: Option<crate::exec::GuardFactory>,
    read_asks: bool,
    idle_exit: Option<std::time::Duration>,
    repeat_at_exit: Vec<String>,
}

/// Builds the complete plan of a run: policy, named state, secrets, the door's policy, the
/// guard's inputs. Fails before anything is started.
fn prepare(req: Request, lite: bool) -> Result<Prepared, String> {
    let opts = req.opts;
    if lite {
        if !req.layers.allow_domain.is_empty()
            || !req.publish.is_empty()
            || req
                .network
                .as_ref()
                .is_some_and(|n| !n.host_ports.is_empty())
        {
            return Err("--isolation landlock has no network at all; --allow-domain, --host-port and --publish need the default isolation".into());
        }
        eprintln!(
            "cordon: warning: --isolation landlock is weaker than the default: {}",
            cordon_linux::landlock_tier::LACKS
        );
    }
    let sandbox_id = sandbox_id(&req.command);
    // Every run keeps an audit trail (for `cordon log` and the summary line at exit).
    let log_path = match &req.audit {
        Some(p) => Some(p.clone()),
        None => crate::log::new_run_log(&sandbox_id)
            .map_err(|e| eprintln!("cordon: warning: no run log: {e}"))
            .ok(),
    };
    let audit = Audit::open(log_path.as_deref())?;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let net_flags = req.network.as_ref().filter(|_| !lite);
    let published = net::bind_published(&req.publish)?;
    let mut plan = plan::build(&req.layers, &req.command, net_flags, &req.publish, opts)?;
    let tier = if opts.vm {
        crate::named::TIER_VM
    } else {
        crate::named::TIER_NAMESPACES
    };
    let session = crate::named::start(&req.named, lite, tier, &mut plan)?;
    crate::named::hide_state(&mut plan.spec);
    // Without a private layer, the command gets a private TMPDIR in cordon's runtime directory.
    let lite_tmp = if lite {
        let t = lite_tmpdir()?;
        let mut kv = b"TMPDIR=".to_vec();
        kv.extend_from_slice(t.as_os_str().as_encoded_bytes());
        plan.spec
            .env
            .retain(|e| !e.as_bytes().starts_with(b"TMPDIR="));
        plan.spec.env.extend(std::ffi::CString::new(kv).ok());
        Some(t)
    } else {
        None
    };
    // Secrets are fetched on the host before anything starts: a missing one stops the run.
    let secrets = crate::secrets::prepare(&plan.effective, &sandbox_id, net_flags.is_some())?;
    for r in &plan.effective.secrets {
        if r.value.inject != cordon_policy::Inject::Door {
            eprintln!(
                "cordon: warning: secret {} is inside the sandbox (inject = \"{}\"): the command can read it and send it wherever it may connect",
                r.value.name,
                r.value.inject.name()
            );
        }
    }
    if lite && !secrets.files.is_empty() {
        eprintln!("cordon: warning: --isolation landlock cannot place files: inject = \"file\" secrets and the CA bundle are not available inside");
    }
    crate::secrets::apply_env(&mut plan.spec.env, &secrets.unset, &secrets.env);
    plan.spec.files.extend(secrets.files.iter().cloned());
    let net = match net_flags {
        None => None,
        Some(_) => Some(NetSetup {
            asks: plan.effective.network.unknown.value == cordon_policy::UnknownAction::Ask,
            policy: Arc::new(NetPolicy::new(net::config(&plan.effective))?),
            dst: Arc::new(OriginalDst::new()),
            l7: secrets.l7.clone(),
        }),
    };
    let file_asks = plan.asks.any();
    let read_asks = plan.asks.reads();
    let broker_settings = (net.as_ref().is_some_and(|n| n.asks) || file_asks)
        .then(|| broker_settings(&sandbox_id, &plan, &req.command));
    let plan::Plan {
        spec,
        effective,
        protect,
        workspace,
        asks,
        own,
        new_state,
    } = plan;
    let mut roots = match &lite_tmp {
        Some(t) => {
            let mut r = spec.writable.clone();
            r.push(t.clone());
            r
        }
        None => mounts::writable_roots(&spec),
    };
    roots.push("/dev".into());
    let guard_inputs = guard::GuardInputs {
        home: spec.home.clone(),
        shared: spec.writable.clone(),
        writable_roots: roots,
        protected_existing: spec.protect_existing.clone(),
        asks,
        audit: audit.clone(),
        own_sockets: Arc::default(),
        own: (!lite).then(|| Arc::clone(&own)),
    };
    let exec_guard = (session.is_some() && !opts.vm)
        .then(|| crate::exec::guard_factory(guard_inputs.clone(), protect.rules().to_vec()));
    let mut guard_cfg = guard_inputs.config(protect);
    guard_cfg.kvm = spec.extra_devices.iter().any(|d| d == "kvm");
    let hooks = RunHooks {
        guard: Some(guard_cfg),
        parts: DoorParts::default(),
        net,
        door: Arc::new(std::sync::Mutex::new(None)),
        broker: None,
        audit: audit.clone(),
        error: None,
        file_asks,
        exec: None,
        home: (!lite && (!own.is_empty() || !new_state.is_empty())).then(|| {
            let watched = crate::agentconfig::watched(&own, &new_state);
            (spec.home.clone(), watched)
        }),
        sandbox_home: None,
    };
    Ok(Prepared {
        sandbox_id,
        log_path,
        audit_flag: req.audit,
        audit,
        started_at,
        spec,
        effective,
        workspace,
        own,
        new_state,
        argv: req
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        session,
        lite_tmp,
        secrets,
        published,
        broker_settings,
        hooks,
        exec_guard,
        read_asks,
        idle_exit: req.named.idle_exit.map(std::time::Duration::from_secs),
        repeat_at_exit: req.repeat_at_exit,
    })
}

/// Starts the sandbox a [`Prepared`] run describes, supervises it, and reports.
fn execute(p: Prepared) -> Result<i32, String> {
    let Prepared {
        sandbox_id,
        log_path,
        audit_flag,
        audit,
        started_at,
        argv,
        spec,
        effective,
        workspace,
        own,
        new_state,
        session,
        lite_tmp,
        secrets,
        published,
        broker_settings,
        mut hooks,
        exec_guard,
        read_asks,
        idle_exit,
        repeat_at_exit,
    } = p;
    if audit.enabled() {
        audit.event(audit::Event::Start(audit::Start {
            argv,
            workspace: workspace.clone(),
            // Digesting costs start-up time: only for an audit file someone asked for.
            policy_digest: audit_flag.is_some().then(|| effective.digest()),
            writable: spec.writable.clone(),
            hidden: spec.deny_read.clone(),
            protected_binds: spec.protect_existing.len(),
            network: if hooks.net.is_some() { "door" } else { "none" }.into(),
            sandbox: sandbox_id.clone(),
            approvals: broker_settings.is_some(),
        }));
    }
    for r in &effective.secrets {
        // Names, hosts and modes only: never a value or a placeholder.
        audit.event(audit::Event::Secret(audit::Secret {
            name: r.value.name.clone(),
            source: r.value.source.kind().into(),
            hosts: r.value.hosts.clone(),
            inject: r.value.inject.name().into(),
            intercepted: secrets.l7.is_some(),
        }));
    }
    // Sandbox-wide limits where cgroup v2 is delegated; rlimits and tmpfs sizes otherwise.
    let _cgroup =
        match cordon_linux::cgroup::SandboxCgroup::enter(spec.max_tasks, spec.memory_bytes) {
            Ok(cg) => cg,
            Err(e) => {
                // The rlimit and tmpfs limits below still apply; say what is missing.
                eprintln!(
                    "cordon: warning: cgroup v2 limits not applied ({e}); using per-process limits"
                );
                None
            }
        };
    let signals = supervise::block_signals().map_err(|e| e.to_string())?;
    // Read-only opens reach the guard only when some read is asked about (they cost).
    let install: sandbox::ListenerInstaller = if read_asks {
        pathguard::install_with_reads
    } else {
        pathguard::install
    };
    // SAFETY: nothing before this point starts a thread; the process is single-threaded.
    let launched = match &lite_tmp {
        // SAFETY: as above.
        Some(t) => unsafe { cordon_linux::landlock_tier::launch(&spec, t.clone(), install) },
        // SAFETY: as above.
        None => unsafe { sandbox::launch(&spec, Some(install)) },
    };
    let mut launched = launched.map_err(|e| e.to_string())?;
    let init = InitGuard(launched.init_pid);
    // After the fork: init must stay dumpable (see sandbox.rs); only the supervisor, which
    // holds the real values, is closed off.
    if secrets.any_secret {
        crate::secrets::harden_supervisor()?;
    }
    // The broker's threads start only now: launching forks from a single-threaded process,
    // and threads made after the signals were blocked leave SIGCHLD to the supervisor.
    if let Some(settings) = broker_settings {
        let b = start_broker(settings, audit.clone())?;
        audit.event(audit::Event::Approvals(audit::ApprovalsSocket {
            sandbox: sandbox_id.clone(),
            socket: b.path().to_path_buf(),
        }));
        hooks.broker = Some(b);
    }
    if let (Some(s), Some(guard)) = (&session, exec_guard) {
        let roots = mounts::writable_roots(&spec);
        hooks.exec = Some(crate::exec::Server::start(
            &s.entry.name,
            launched.init_pid,
            &spec,
            roots,
            &workspace,
            guard,
            read_asks,
            audit.clone(),
            idle_exit,
        )?);
    }
    if let Some(factory) = launched.factory.take() {
        net::serve_published(published, factory, audit.clone());
    }
    // From here the supervisor owns init: it reaps it, and kills it if a layer fails.
    init.disarm();
    let result = supervise::run(launched, signals, &mut hooks);
    for line in &repeat_at_exit {
        eprintln!("{line}");
    }
    if let Some(t) = &lite_tmp {
        cordon_linux::landlock_tier::end_orphans();
        let _ = std::fs::remove_dir_all(t);
    }
    if let Some(b) = hooks.broker.take() {
        b.close();
    }
    if let Some(x) = hooks.exec.take() {
        x.close();
    }
    drop(session);
    if let Some(door) = hooks.door.lock().ok().and_then(|mut d| d.take()) {
        door.shutdown();
    }
    // Events on standard output (`--audit -`) went where the reader already looks.
    if let Some(p) = log_path.as_ref().filter(|p| p.as_os_str() != "-") {
        let me = crate::dirs::self_command();
        let see = match &audit_flag {
            Some(f) => format!("{me} log --file {}", f.display()),
            None => format!("{me} log --sandbox {sandbox_id}"),
        };
        if let Some(line) = crate::log::exit_summary(p, started_at, std::process::id(), &see) {
            eprintln!("{line}");
        }
    }
    if let Some(view) = hooks.sandbox_home.take() {
        let home = &spec.home;
        let c = crate::agentconfig::collect(&view, &own, &new_state, &spec.writable);
        for p in &c.kept {
            audit.event(audit::Event::State(audit::StateKept { kept: p.clone() }));
        }
        for (profile, p) in &c.saved {
            audit.event(audit::Event::Config(audit::ConfigSaved {
                saved: p.clone(),
                profile: profile.clone(),
            }));
        }
        for e in &c.errors {
            eprintln!("cordon: warning: {e}");
        }
        if let Some(line) = crate::agentconfig::exit_line(home, &c) {
            eprintln!("{line}");
        }
    }
    match (result, hooks.error) {
        (_, Some(e)) => {
            audit.event(stop(EXIT_CORDON, Some(e.clone())));
            Err(e)
        }
        (Ok(code), None) => {
            audit.event(stop(code, None));
            Ok(code)
        }
        (Err(e), None) => {
            audit.event(stop(EXIT_CORDON, Some(e.to_string())));
            Err(e.to_string())
        }
    }
}

fn stop(status: i32, error: Option<String>) -> audit::Event {
    audit::Event::Stop(audit::Stop { status, error })
}

/// A fresh private TMPDIR for `--isolation landlock`, in cordon's runtime directory.
fn lite_tmpdir() -> Result<std::path::PathBuf, String> {
    let runtime = crate::dirs::runtime_dir()?;
    crate::dirs::sweep_runs(&runtime);
    let dir = runtime.join(format!("run-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The sandbox's id: the command's name and cordon's pid (`claude-4242`).
fn sandbox_id(command: &[std::ffi::OsString]) -> String {
    let name: String = command
        .first()
        .and_then(|c| std::path::Path::new(c).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(32)
        .collect();
    let name = if name.is_empty() || name.starts_with('.') {
        "sandbox".to_string()
    } else {
        name
    };
    format!("{name}-{}", std::process::id())
}

/// The approval broker for a run whose policy asks about unknown destinations.
fn start_broker(settings: approval::Settings, audit: Audit) -> Result<Broker, String> {
    let runtime = crate::dirs::runtime_dir()?;
    let dir = approval::approvals_dir(&runtime)?;
    approval::sweep(&dir);
    Broker::start(&dir, settings, audit)
}

/// How the run's approvals behave: `[approval]` of the effective policy.
fn broker_settings(
    id: &str,
    plan: &plan::Plan,
    command: &[std::ffi::OsString],
) -> approval::Settings {
    let a = &plan.effective.approval;
    let mut settings = approval::Settings::new(
        id.to_string(),
        std::time::Duration::from_secs(a.timeout.value),
        a.session_scope.value,
    );
    settings.command = command
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    settings.workspace = plan.workspace.display().to_string();
    settings
}
