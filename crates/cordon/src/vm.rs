//! `cordon run --isolation vm` and `cordon vm-host`: the command line of the VM tier and its
//! wiring into an ordinary sandbox; the tier itself is the `cordon-vm` crate.

use crate::fail;
use clap::Args;
use cordon_vm::qemu::Accel;
use cordon_vm::{host, initramfs, kernel, GUEST_MEMORY_MB};
use std::ffi::OsString;
use std::path::PathBuf;

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
        return fail(format!("unknown accelerator {:?}", a.accel));
    };
    let run = host::run(host::HostArgs {
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
    });
    run.unwrap_or_else(fail)
}

/// `cordon run --isolation vm`: prepares the guest's kernel and initramfs on the host, then
/// runs `cordon vm-host` (which starts QEMU) as the command of a namespace-tier sandbox.
pub fn run(mut args: crate::run::Request) -> i32 {
    let opts = args.opts;
    if args
        .network
        .as_ref()
        .is_some_and(|n| !n.host_ports.is_empty())
        || !args.publish.is_empty()
    {
        return fail("--isolation vm does not support --host-port or --publish yet (docs/vm.md)");
    }
    // The writable roots become the shares; the outer plan is built again by the outer run.
    let plan = match crate::plan::build(
        &args.layers,
        &args.command,
        args.network.as_ref(),
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
    let places = match crate::dirs::vm_places() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let initrd = match initramfs::ensure(&kernel, &places) {
        Ok(i) => i,
        Err(e) => return fail(format!("cannot build the VM's initramfs: {e}")),
    };
    let accel = match cordon_vm::choose_accel(&kernel, &initrd, args.vm.allow_emulation, &places) {
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
    if args.network.is_some() {
        cmd.push("--net".into());
        for p in cordon_vm::transparent_ports(&plan.effective) {
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
    args.opts = crate::plan::BuildOpts {
        // QEMU needs /dev/kvm inside the outer sandbox; nothing else ever gets it.
        devices: if accel == Accel::Kvm { &["kvm"] } else { &[] },
        vm: true,
        ..opts
    };
    crate::run::run_request(args)
}
