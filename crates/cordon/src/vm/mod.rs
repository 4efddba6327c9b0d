//! `cordon run --isolation vm`: the command runs in a QEMU microVM whose QEMU is itself the
//! command of an ordinary namespace-tier sandbox. Two walls: the guest kernel (with cordon's
//! Linux layers inside it), and the namespace tier around QEMU, whose 9p server can only see
//! and write what the outer sandbox allows. See docs/vm.md.

pub mod config;
pub mod frame;
pub mod guest;
pub mod host;
pub mod hostnet;
pub mod hostsig;
pub mod initramfs;
pub mod kernel;
pub mod probe;
pub mod qemu;

use crate::cli::RunArgs;
use crate::fail;
use crate::EXIT_CORDON;
use clap::Args;
use qemu::Accel;
use std::ffi::OsString;
use std::path::PathBuf;

/// Guest memory (MiB): the private layer lives in it.
pub const GUEST_MEMORY_MB: u64 = 1024;

/// `cordon run`'s options for `--isolation vm`.
#[derive(Args, Debug, Clone, Default)]
pub struct VmOpts {
    /// With --isolation vm: run under software emulation (slow) when KVM is unusable
    #[arg(long)]
    pub allow_emulation: bool,
    /// With --isolation vm: boot this kernel instead of the newest /boot/vmlinuz-*
    #[arg(long, value_name = "PATH")]
    pub vm_kernel: Option<PathBuf>,
    /// Say what the isolation tiers provide (with --isolation vm: the inner wall's Landlock ABI)
    #[arg(long)]
    pub verbose: bool,
}

/// `cordon vm-host` (hidden): the host side of a guest, run inside the outer sandbox.
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct VmHostArgs {
    #[arg(long)]
    pub kernel: PathBuf,
    #[arg(long)]
    pub initrd: PathBuf,
    #[arg(long, default_value = "kvm")]
    pub accel: String,
    /// Read-write shares (the workspace first).
    #[arg(long)]
    pub share: Vec<PathBuf>,
    /// Forward the door's ports into the guest.
    #[arg(long)]
    pub net: bool,
    /// Share $HOME and /var/tmp read-write (the outer private layer, or a named sandbox's kept layer).
    #[arg(long)]
    pub kept: bool,
    /// Capture connections to any address on this port (repeatable).
    #[arg(long = "tport")]
    pub transparent_ports: Vec<u16>,
    #[arg(long)]
    pub verbose: bool,
    /// Write the guest's console here (debugging).
    #[arg(long)]
    pub serial: Option<PathBuf>,
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// Entry of `cordon vm-host`.
pub fn vm_host(a: VmHostArgs) -> i32 {
    let Some(accel) = Accel::parse(&a.accel) else {
        eprintln!("cordon: unknown accelerator {:?}", a.accel);
        return EXIT_CORDON;
    };
    host::run(host::HostArgs {
        kernel: a.kernel,
        initrd: a.initrd,
        accel,
        memory_mb: GUEST_MEMORY_MB,
        shares: a.share,
        net: a.net,
        kept: a.kept,
        transparent_ports: a.transparent_ports,
        verbose: a.verbose,
        serial: a.serial,
        command: a.command,
    })
}

/// The accelerator to use, or the exit-125 message when KVM is unusable and emulation was not
/// allowed.
pub fn choose_accel(
    kernel: &kernel::Kernel,
    initrd: &std::path::Path,
    allow_emulation: bool,
) -> Result<Accel, String> {
    // For testing the KVM wiring on hosts whose KVM boots nothing (docs/vm.md).
    if std::env::var_os("CORDON_VM_FORCE_KVM").is_some_and(|v| v == "1") {
        return Ok(Accel::Kvm);
    }
    match probe::kvm(kernel, initrd) {
        Ok(_) => Ok(Accel::Kvm),
        Err(why) if allow_emulation => {
            eprintln!(
                "cordon: warning: KVM unavailable ({why}); running the VM under software emulation (TCG): it is slow"
            );
            Ok(Accel::Tcg)
        }
        Err(why) => Err(format!(
            "KVM unavailable: {why}; pass --allow-emulation to run under TCG (slow)"
        )),
    }
}

/// The ports a program that ignores the proxy variables may reach: 80 and 443, and every
/// explicit `:PORT` of an allow rule (a `:*` rule cannot be listened for; such programs get
/// those destinations through the proxies only).
fn transparent_ports(eff: &cordon_policy::Effective) -> Vec<u16> {
    let mut ports = vec![80u16, 443];
    for r in &eff.network.allow {
        if let cordon_policy::Ports::One(port) = r.value.ports() {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
    }
    ports.truncate(64);
    ports
}

/// `cordon doctor`'s lines about the VM tier: (layer, detail). The tier is optional, so these
/// are notes, never failures of the namespace tier.
/// `verbose`: boot test guests where no cached result says how KVM behaves (seconds, up to a
/// minute and more under emulation); otherwise only what can be known at once is reported.
pub fn doctor_lines(verbose: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let qemu_found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(qemu::QEMU).is_file()));
    if !qemu_found {
        out.push((
            "VM tier",
            format!(
                "unusable: {} not found (apt-get install qemu-system-x86)",
                qemu::QEMU
            ),
        ));
        return out;
    }
    let kernel = match kernel::find(None) {
        Ok(k) => k,
        Err(e) => {
            out.push(("VM tier", format!("unusable: {e}")));
            return out;
        }
    };
    out.push((
        "VM kernel",
        format!("{} ({})", kernel.image.display(), kernel.version),
    ));
    if !verbose {
        let kvm = match probe::kvm_known(&kernel) {
            Some(Ok(b)) => format!(
                "works: a guest reached userspace in {} ms",
                b.took.as_millis()
            ),
            Some(Err(why)) => format!(
                "unavailable: {why}; `--isolation vm --allow-emulation` runs under TCG (slow)"
            ),
            None => "not probed yet: `cordon doctor --verbose` boots a test guest".into(),
        };
        out.push(("VM tier: KVM", kvm));
        return out;
    }
    let initrd = match initramfs::ensure(&kernel) {
        Ok(i) => i,
        Err(e) => {
            out.push((
                "VM tier",
                format!("unusable: cannot build the initramfs: {e}"),
            ));
            return out;
        }
    };
    let booted = match probe::kvm(&kernel, &initrd) {
        Ok(b) => {
            out.push((
                "VM tier: KVM",
                format!(
                    "works: a guest reached userspace in {} ms",
                    b.took.as_millis()
                ),
            ));
            Some(b)
        }
        Err(why) => {
            out.push((
                "VM tier: KVM",
                format!(
                    "unavailable: {why}; `--isolation vm --allow-emulation` runs under TCG (slow)"
                ),
            ));
            match probe::boot(
                &kernel,
                &initrd,
                Accel::Tcg,
                std::time::Duration::from_secs(90),
            ) {
                Ok(b) => {
                    out.push((
                        "VM tier: emulation",
                        format!(
                            "works: a TCG guest reached userspace in {} ms",
                            b.took.as_millis()
                        ),
                    ));
                    Some(b)
                }
                Err(e) => {
                    out.push(("VM tier: emulation", format!("unusable: {e}")));
                    None
                }
            }
        }
    };
    if let Some(abi) = booted.and_then(|b| b.landlock) {
        out.push(("VM inner wall", format!("guest Landlock ABI {abi}, the seccomp denylist, no capabilities (the outer wall is the namespace tier)")));
    }
    out
}

/// `cordon run --isolation vm`: prepares the guest's kernel and initramfs on the host, then
/// runs `cordon vm-host` (which starts QEMU) as the command of a namespace-tier sandbox.
pub fn run(mut args: RunArgs, opts: crate::plan::BuildOpts) -> i32 {
    if !args.host_port.is_empty() || !args.publish.is_empty() {
        return fail("--isolation vm does not support --host-port or --publish yet (docs/vm.md)");
    }
    // The writable roots become the shares; the outer plan is built again by run_with.
    let net_flags = crate::net::NetFlags {
        host_ports: args.host_port.clone(),
    };
    let plan = match crate::plan::build(
        &args.layers,
        &args.command,
        (!args.no_network).then_some(&net_flags),
        &args.publish,
        opts,
    ) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let named = args
        .vm
        .vm_kernel
        .clone()
        .or_else(|| plan.effective.vm_kernel.as_ref().map(|r| r.value.clone()));
    let kernel = match kernel::find(named.as_deref()) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let initrd = match initramfs::ensure(&kernel) {
        Ok(i) => i,
        Err(e) => return fail(format!("cannot build the VM's initramfs: {e}")),
    };
    let accel = match choose_accel(&kernel, &initrd, args.vm.allow_emulation) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let mut cmd: Vec<OsString> = vec![
        cordon_linux::mounts::SELF_EXE.into(),
        "vm-host".into(),
        "--kernel".into(),
        kernel.image.into(),
        "--initrd".into(),
        initrd.into(),
        "--accel".into(),
        accel.name().into(),
    ];
    for w in &plan.spec.writable {
        cmd.push("--share".into());
        cmd.push(w.into());
    }
    // The guest's $HOME and /var/tmp are the outer sandbox's (its size-limited private layer,
    // or a named sandbox's kept layer), shared over 9p: what the guest writes there goes
    // through QEMU's 9p server, i.e. through the outer path guard, so configuration in $HOME
    // (shell rc files, agent hooks and settings) is protected as in the namespace tier. An
    // in-memory layer inside the guest would be guarded by nothing but the guest kernel.
    cmd.push("--kept".into());
    if !args.no_network {
        cmd.push("--net".into());
        for p in transparent_ports(&plan.effective) {
            cmd.push("--tport".into());
            cmd.push(p.to_string().into());
        }
    }
    if args.vm.verbose {
        cmd.push("--verbose".into());
        eprintln!(
            "cordon: vm: kernel {}, accelerator {}, initramfs {}",
            kernel.version,
            accel.name(),
            cmd[5].to_string_lossy()
        );
    }
    if let Some(s) = std::env::var_os("CORDON_VM_SERIAL") {
        cmd.push("--serial".into());
        cmd.push(s);
    }
    cmd.push("--".into());
    cmd.append(&mut args.command);
    args.command = cmd;
    args.isolation = crate::cli::Isolation::Namespaces;
    let opts = crate::plan::BuildOpts {
        // QEMU needs /dev/kvm inside the outer sandbox; nothing else ever gets it.
        devices: if accel == Accel::Kvm { &["kvm"] } else { &[] },
        vm: true,
        ..opts
    };
    crate::run::run_with(args, opts)
}
