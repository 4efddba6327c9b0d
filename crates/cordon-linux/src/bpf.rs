//! A small classic-BPF assembler for seccomp filters: the sandbox's denylist (`seccomp.rs`)
//! and the path guard's routing program (`pathguard/filter.rs`) are written with it.
//!
//! Jumps name labels, resolved when the program is finished; a jump that does not fit in
//! classic BPF's 8-bit offset is an error (the install then fails and cordon exits 125), never
//! a silently shortened jump.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// x32 syscalls share x86_64's arch value and carry this bit in their number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
pub const RET_USER_NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;
const RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;

/// Offsets into `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// Low and high 32 bits of `args[i]` (little endian).
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;

/// A place in the program, bound with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// The next instruction.
    Next,
    Label(Label),
}

impl From<Label> for To {
    fn from(l: Label) -> Self {
        To::Label(l)
    }
}

enum Ins {
    Stmt { code: u16, k: u32 },
    Jump { code: u16, k: u32, jt: To, jf: To },
}

/// A program being written: statements, labelled jumps, and the labels' positions.
#[derive(Default)]
pub struct Asm {
    ins: Vec<Ins>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    /// A label to bind later.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `l` at the next instruction.
    pub fn bind(&mut self, l: Label) {
        if let Some(slot) = self.labels.get_mut(l.0) {
            *slot = Some(self.ins.len());
        }
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.ins.push(Ins::Stmt { code, k });
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.ins.push(Ins::Jump { code, k, jt, jf });
    }

    /// A = the architecture.
    pub fn load_arch(&mut self) {
        self.stmt(LD_W_ABS, OFF_ARCH);
    }

    /// A = the syscall number.
    pub fn load_nr(&mut self) {
        self.stmt(LD_W_ABS, OFF_NR);
    }

    /// A = the low 32 bits of argument `i` (flags and `int`s live there).
    pub fn load_arg_lo(&mut self, i: u32) {
        self.stmt(LD_W_ABS, off_arg_lo(i));
    }

    /// A = the high 32 bits of argument `i`.
    pub fn load_arg_hi(&mut self, i: u32) {
        self.stmt(LD_W_ABS, off_arg_hi(i));
    }

    pub fn ret(&mut self, k: u32) {
        self.stmt(RET_K, k);
    }

    pub fn ret_errno(&mut self, errno: i32) {
        self.ret(RET_ERRNO | (errno as u32 & 0xffff));
    }

    /// if A == k goto jt else goto jf.
    pub fn jeq(&mut self, k: u32, jt: impl Into<To>, jf: impl Into<To>) {
        self.jump(JEQ, k, jt.into(), jf.into());
    }

    /// if A >= k goto jt else goto jf.
    pub fn jge(&mut self, k: u32, jt: impl Into<To>, jf: impl Into<To>) {
        self.jump(JGE, k, jt.into(), jf.into());
    }

    /// if A & k != 0 goto jt else goto jf.
    pub fn jset(&mut self, k: u32, jt: impl Into<To>, jf: impl Into<To>) {
        self.jump(JSET, k, jt.into(), jf.into());
    }

    /// `if A == k { <then> }`, where `then` ends in a return; falls through otherwise.
    pub fn if_eq(&mut self, k: u32, then: impl FnOnce(&mut Asm)) {
        let skip = self.label();
        self.jeq(k, To::Next, skip);
        then(self);
        self.bind(skip);
    }

    /// The finished program, every label resolved.
    pub fn finish(self) -> io::Result<Vec<libc::sock_filter>> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        let offset = |at: usize, to: To| -> io::Result<u8> {
            let target =
                match to {
                    To::Next => return Ok(0),
                    To::Label(l) => self.labels.get(l.0).copied().flatten().ok_or_else(|| {
                        bad(format!("seccomp program: label {} never bound", l.0))
                    })?,
                };
            let rel = target
                .checked_sub(at + 1)
                .ok_or_else(|| bad(format!("seccomp program: backward jump at {at}")))?;
            u8::try_from(rel).map_err(|_| bad(format!("seccomp program: jump at {at} too far")))
        };
        let mut out = Vec::with_capacity(self.ins.len());
        for (at, ins) in self.ins.iter().enumerate() {
            out.push(match *ins {
                Ins::Stmt { code, k } => libc::sock_filter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Ins::Jump { code, k, jt, jf } => libc::sock_filter {
                    code,
                    jt: offset(at, jt)?,
                    jf: offset(at, jf)?,
                    k,
                },
            });
        }
        if out.len() > usize::from(u16::MAX) {
            return Err(bad("seccomp program too long".into()));
        }
        Ok(out)
    }
}

/// Installs a program on the calling thread (no_new_privs must already be set). `flags` are
/// SECCOMP_FILTER_FLAG_* values; the syscall's return value (a listener fd with
/// SECCOMP_FILTER_FLAG_NEW_LISTENER) is returned.
pub fn install(program: &[libc::sock_filter], flags: libc::c_ulong) -> io::Result<libc::c_long> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: fprog points at a valid program that outlives the call; the kernel copies it and
    // never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Installs a program with SECCOMP_FILTER_FLAG_NEW_LISTENER; the user-notification fd.
pub fn install_listener(program: &[libc::sock_filter]) -> io::Result<OwnedFd> {
    let fd = install(
        program,
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as libc::c_ulong,
    )?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A classic-BPF interpreter for the instructions above, so the programs' decisions are
/// unit-tested.
#[cfg(test)]
pub(crate) fn run(prog: &[libc::sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            LD_W_ABS => {
                let k = ins.k as usize;
                acc = u32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
            }
            RET_K => return ins.k,
            code => {
                let taken = match code {
                    JEQ => acc == ins.k,
                    JGE => acc >= ins.k,
                    JSET => acc & ins.k != 0,
                    _ => panic!("unexpected opcode {code:#x}"),
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_resolve_forward_and_next_falls_through() {
        let mut a = Asm::new();
        let yes = a.label();
        a.load_nr();
        a.jeq(7, yes, To::Next);
        a.ret(1);
        a.bind(yes);
        a.ret(2);
        let p = a.finish().unwrap();
        assert_eq!(p[1].jt, 1);
        assert_eq!(p[1].jf, 0);
        assert_eq!(run(&p, 7, AUDIT_ARCH_X86_64, [0; 6]), 2);
        assert_eq!(run(&p, 8, AUDIT_ARCH_X86_64, [0; 6]), 1);
    }

    #[test]
    fn unbound_labels_and_far_jumps_are_errors() {
        let mut a = Asm::new();
        let never = a.label();
        a.load_nr();
        a.jeq(1, never, To::Next);
        a.ret(RET_ALLOW);
        assert!(a.finish().is_err());

        let mut a = Asm::new();
        let far = a.label();
        a.load_nr();
        a.jeq(1, far, To::Next);
        for _ in 0..300 {
            a.ret(RET_ALLOW);
        }
        a.bind(far);
        a.ret(RET_ALLOW);
        assert!(a.finish().is_err());
    }

    #[test]
    fn if_eq_skips_its_block() {
        let mut a = Asm::new();
        a.load_arg_lo(0);
        a.if_eq(5, |b| b.ret_errno(libc::EPERM));
        a.ret(RET_ALLOW);
        let p = a.finish().unwrap();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(&p, 0, 0, [5, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(run(&p, 0, 0, [6, 0, 0, 0, 0, 0]), RET_ALLOW);
    }
}
