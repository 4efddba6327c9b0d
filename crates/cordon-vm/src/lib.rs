//! The VM tier (`cordon run --isolation vm`): the command runs in a QEMU microVM whose QEMU is itself the
//! command of an ordinary namespace-tier sandbox. Two walls: the guest kernel (with cordon's
//! Linux layers inside it), and the namespace tier around QEMU, whose 9p server can only see
//! and write what the outer sandbox allows. See docs/vm.md.

#![cfg_attr(test, allow(clippy::unwrap_used))]

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

use qemu::Accel;
use std::path::Path;

/// Where the VM tier keeps its files: cordon's own directories, chosen by the caller.
#[derive(Debug, Clone)]
pub struct Places {
    /// Built initramfs images (per cordon build and kernel).
    pub cache: std::path::PathBuf,
    /// The person's runtime directory: KVM probe results (per boot) and probe guests.
    pub runtime: std::path::PathBuf,
}

/// Guest memory (MiB): the private layer lives in it.
pub const GUEST_MEMORY_MB: u64 = 1024;

/// The accelerator to use, or the exit-125 message when KVM is unusable and emulation was not
/// allowed.
pub fn choose_accel(
    kernel: &kernel::Kernel,
    initrd: &Path,
    allow_emulation: bool,
    places: &Places,
) -> Result<Accel, String> {
    // For testing the KVM wiring on hosts whose KVM boots nothing (docs/vm.md).
    if std::env::var_os("CORDON_VM_FORCE_KVM").is_some_and(|v| v == "1") {
        return Ok(Accel::Kvm);
    }
    match probe::kvm(kernel, initrd, places) {
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
pub fn transparent_ports(eff: &cordon_policy::Effective) -> Vec<u16> {
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
pub fn doctor_lines(verbose: bool, places: &Places) -> Vec<(&'static str, String)> {
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
        let kvm = match probe::kvm_known(&kernel, places) {
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
    let initrd = match initramfs::ensure(&kernel, places) {
        Ok(i) => i,
        Err(e) => {
            out.push((
                "VM tier",
                format!("unusable: cannot build the initramfs: {e}"),
            ));
            return out;
        }
    };
    let booted = match probe::kvm(&kernel, &initrd, places) {
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
                places,
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
