//! QEMU's command line for the guest: the `microvm` machine (virtio-mmio, no firmware, no PCI),
//! straight to the kernel, one virtio-serial port for control, stdio and network, and 9p shares
//! served by QEMU from the outer sandbox's view.

use super::config::{share_tag, HOME_TAG, PORT_NAME, ROOT_TAG, VARTMP_TAG};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How the guest's CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation (TCG): slow, only with `--allow-emulation`.
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
    pub fn parse(s: &str) -> Option<Accel> {
        match s {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }
}

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// Everything the machine is made of.
#[derive(Debug, Clone)]
pub struct Machine {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    pub memory_mb: u64,
    /// The unix socket QEMU connects the control port to (None: no control port, as in a probe).
    pub control: Option<PathBuf>,
    /// Read-write shares, in tag order.
    pub shares: Vec<PathBuf>,
    /// The outer `$HOME` (private layer, or a named sandbox's kept layer): it and `/var/tmp` are
    /// shared read-write as well.
    pub kept_home: Option<PathBuf>,
    /// Whether the root share exists (the probe boots without one).
    pub root_share: bool,
    /// Extra kernel command-line words.
    pub append: Vec<String>,
    /// Send the guest's serial console here (debugging, the probe).
    pub serial: Option<PathBuf>,
}

fn escape(p: &Path) -> String {
    // QEMU option values separate on ','; a literal comma is written twice.
    p.to_string_lossy().replace(',', ",,")
}

impl Machine {
    /// QEMU's arguments (without the binary).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        let serial = if self.serial.is_some() { "on" } else { "off" };
        push(&[
            "-M",
            // rtc=on: without a clock the guest starts in 1970 (TLS certificates are "not yet
            // valid") and the kernel waits 2 s probing the missing CMOS clock.
            &format!("microvm,x-option-roms=off,rtc=on,isa-serial={serial}"),
            "-accel",
            self.accel.name(),
            "-cpu",
            match self.accel {
                Accel::Kvm => "host",
                Accel::Tcg => "max",
            },
            "-m",
            &self.memory_mb.to_string(),
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            // QEMU's own seccomp on top of cordon's: a guest that takes over QEMU still cannot
            // spawn processes, change ids or use obsolete system calls.
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            "-kernel",
            &escape(&self.kernel),
            "-initrd",
            &escape(&self.initrd),
        ]);
        // no_timer_check: under emulation on a busy host the IO-APIC timer check can fail.
        let mut cmdline = vec!["panic=-1", "rdinit=/init", "no_timer_check"];
        if self.serial.is_some() {
            cmdline.push("console=ttyS0");
        } else {
            cmdline.extend(["quiet", "loglevel=1"]);
        }
        let mut line = cmdline.join(" ");
        if self.accel == Accel::Tcg {
            // Under emulation on a busy host the guest's TSC calibration against the PIT can
            // fail, and the boot then hangs waiting for a clock: give it the host's rate (TCG's
            // TSC runs at the host's).
            if let Some(khz) = host_tsc_khz() {
                line.push_str(&format!(" tsc_early_khz={khz}"));
            }
        }
        for w in &self.append {
            line.push(' ');
            line.push_str(w);
        }
        push(&["-append", &line]);
        if let Some(s) = &self.serial {
            push(&[
                "-chardev",
                &format!("file,id=con,path={}", escape(s)),
                "-serial",
                "chardev:con",
            ]);
        }
        if let Some(c) = &self.control {
            push(&[
                "-device",
                "virtio-serial-device",
                "-chardev",
                &format!("socket,id=ctl,path={}", escape(c)),
                "-device",
                &format!("virtserialport,chardev=ctl,name={PORT_NAME}"),
            ]);
        }
        if self.root_share {
            push(&[
                "-fsdev",
                "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
                "-device",
                &format!("virtio-9p-device,fsdev=root,mount_tag={ROOT_TAG}"),
            ]);
        }
        let kept = self.kept_home.iter().flat_map(|h| {
            [
                (HOME_TAG.to_string(), h.clone()),
                (VARTMP_TAG.to_string(), PathBuf::from("/var/tmp")),
            ]
        });
        let shares = self.shares.iter().enumerate();
        for (tag, s) in kept.chain(shares.map(|(i, s)| (share_tag(i), s.clone()))) {
            push(&[
                "-fsdev",
                &format!(
                    "local,id={tag},path={},security_model=none,multidevs=remap",
                    escape(&s)
                ),
                "-device",
                &format!("virtio-9p-device,fsdev={tag},mount_tag={tag}"),
            ]);
        }
        a.into_iter().map(OsString::from).collect()
    }
}

/// The host CPU's clock in kHz, from /proc/cpuinfo.
fn host_tsc_khz() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    (mhz > 0.0).then_some((mhz * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microvm_without_firmware_or_nic() {
        let m = Machine {
            kernel: "/boot/vmlinuz-x".into(),
            initrd: "/c/i,1.cpio".into(),
            accel: Accel::Tcg,
            memory_mb: 512,
            control: Some("/tmp/c.sock".into()),
            shares: vec!["/w".into()],
            kept_home: None,
            root_share: true,
            append: vec![],
            serial: None,
        };
        let a: Vec<String> = m
            .args()
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        let all = a.join(" ");
        assert!(all.contains("-M microvm,x-option-roms=off,rtc=on"));
        assert!(all.contains("-nodefaults"));
        assert!(all.contains("-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny"));
        assert!(all.contains("-accel tcg"));
        assert!(all.contains("/c/i,,1.cpio"), "commas escaped: {all}");
        assert!(all.contains("path=/,security_model=none,readonly=on"));
        assert!(all.contains("path=/w,security_model=none,multidevs=remap"));
        assert!(!all.contains("-netdev") && !all.contains("-nic"));
        assert!(!all.contains("mount_tag=home") && !all.contains("mount_tag=vartmp"));
    }

    #[test]
    fn a_named_sandbox_shares_home_and_var_tmp_read_write() {
        let m = Machine {
            kernel: "/boot/vmlinuz-x".into(),
            initrd: "/c/i.cpio".into(),
            accel: Accel::Tcg,
            memory_mb: 512,
            control: None,
            shares: vec!["/h/ws".into()],
            kept_home: Some("/h".into()),
            root_share: true,
            append: vec![],
            serial: None,
        };
        let all = m
            .args()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let at = |what: &str| all.find(what).unwrap_or_else(|| panic!("{what}: {all}"));
        at("local,id=home,path=/h,security_model=none,multidevs=remap");
        at("local,id=vartmp,path=/var/tmp,security_model=none,multidevs=remap");
        // The workspace under $HOME keeps its tag w0 (the guest mounts it over the home).
        assert!(at("mount_tag=home") < at("mount_tag=w0"));
        at("local,id=w0,path=/h/ws,");
    }
}
