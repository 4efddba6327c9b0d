//! Deciding and performing one routed syscall.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

use super::ask::{self, FileAsk};
use super::caller::Caller;
use super::identity::{Known, Protected};
use super::notif::{Listener, Notif};
use super::open::{self, Opened};
use super::request::{decode, Request};
use super::resolve::{Parent, Resolver, Root, Target};
use super::subtree;
use super::umask::Umasks;
use super::{Event, GuardConfig, Op, Verdict};

/// Questions one syscall may raise (a rename asks for both names) before it is refused.
const MAX_ASKS: usize = 3;

/// A question raised while handling a syscall, asked once the tree lock is released.
pub(crate) struct Pending {
    ask: FileAsk,
    /// For reads: the rule's host root, beneath which the approved file is opened.
    root: Option<PathBuf>,
    /// For reads: whether the caller asked for O_CLOEXEC.
    cloexec: bool,
}

/// How to answer one notification.
pub(crate) enum Reply {
    /// Return this value.
    Val(i64),
    /// Return -errno.
    Err(Errno),
    /// Inject this fd and return its number.
    Fd { fd: OwnedFd, cloexec: bool },
    /// Let the syscall proceed (read-only opens nobody asks about).
    Continue,
    /// The caller is gone: answer nothing.
    Skip,
}

impl From<Result<(), Errno>> for Reply {
    fn from(r: Result<(), Errno>) -> Self {
        match r {
            Ok(()) => Reply::Val(0),
            Err(e) => Reply::Err(e),
        }
    }
}

/// State shared by all workers.
pub(crate) struct Guard {
    pub root: Root,
    pub cfg: GuardConfig,
    /// Writable roots as path components.
    roots: Vec<Vec<Vec<u8>>>,
    /// Renames take it exclusively: they are the only calls that change the path of names
    /// other than their own, so every other resolution sees a stable tree.
    tree: RwLock<()>,
    /// Protected files by identity, whatever their names.
    protected: Protected,
    /// The callers' umasks, while none can have changed.
    pub umasks: Umasks,
}

fn comps(p: &Path) -> Vec<Vec<u8>> {
    p.as_os_str()
        .as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

impl Guard {
    pub fn new(root: Root, cfg: GuardConfig) -> Self {
        let roots = cfg.writable_roots.iter().map(|p| comps(p)).collect();
        let protected = Protected::new(cfg.protected_inodes.clone());
        Self {
            root,
            cfg,
            roots,
            tree: RwLock::new(()),
            protected,
            umasks: Umasks::new(),
        }
    }

    /// Handles one notification end to end (except sending the reply). `caller` was opened
    /// by the (unconfined) receiver, which also checked NOTIF_ID_VALID.
    pub fn handle(&self, listener: &Listener, n: &Notif, caller: Caller) -> Reply {
        let Some(req) = decode(n.nr, &n.args) else {
            return Reply::Err(Errno::NOSYS);
        };
        // Each question is asked with no lock held (a person may take a minute); the call is
        // then handled again from the start, and goes ahead only if it raises exactly the
        // questions already approved.
        let mut approved: Vec<(Op, PathBuf)> = Vec::new();
        for _ in 0..=MAX_ASKS {
            let step = {
                let ctx = Ctx {
                    g: self,
                    caller: &caller,
                    valid: Box::new(move || listener.id_valid(n.id)),
                    approved: &approved,
                    pending: RefCell::new(None),
                };
                let _lock = if matches!(req, Request::Rename { .. }) {
                    WriteOrRead::W(self.tree.write().unwrap_or_else(|p| p.into_inner()))
                } else {
                    WriteOrRead::R(self.tree.read().unwrap_or_else(|p| p.into_inner()))
                };
                let done = ctx.run(req);
                // A question unwinds the handler with an error (which may have been turned
                // into a reply on the way): ask it, whatever came back.
                match (ctx.pending.take(), done) {
                    (Some(p), _) => Err(p),
                    (None, Ok(Done::Reply(r))) => return r,
                    (None, Ok(Done::Fifo(f))) => Ok(f),
                    (None, Err(e)) => return Reply::Err(e),
                }
            };
            let wait = match step {
                Ok(f) => f,
                // Asked with no lock held.
                Err(p) => match self.ask(listener, n, p) {
                    Asked::Approved(op, path) => {
                        approved.push((op, path));
                        continue;
                    }
                    Asked::Done(r) => return r,
                },
            };
            // Outside the lock: a FIFO may wait for its peer for a long time.
            return match open::wait_fifo(wait, || listener.id_valid(n.id)) {
                Ok(Some(o)) => Reply::Fd {
                    fd: o.fd,
                    cloexec: o.cloexec,
                },
                Ok(None) => Reply::Skip,
                Err(e) => Reply::Err(e),
            };
        }
        Reply::Err(Errno::ACCESS)
    }

    /// Asks one question. An approved read is opened here (on the host); an approved write
    /// goes back to be performed.
    fn ask(&self, listener: &Listener, n: &Notif, p: Pending) -> Asked {
        let waiting = || listener.id_valid(n.id);
        let allowed = match &self.cfg.asker {
            Some(a) => a.ask(p.ask.clone(), &waiting).allowed(),
            None => {
                self.report(
                    p.ask.op,
                    &p.ask.path,
                    p.ask.tid,
                    format!("{} (nobody to ask)", p.ask.rule),
                );
                false
            }
        };
        if !waiting() {
            return Asked::Done(Reply::Skip);
        }
        if !allowed {
            return Asked::Done(Reply::Err(Errno::ACCESS));
        }
        match p.root {
            Some(root) => match ask::open_host(&root, &p.ask.path) {
                Ok(fd) => Asked::Done(Reply::Fd {
                    fd,
                    cloexec: p.cloexec,
                }),
                Err(e) => Asked::Done(Reply::Err(e)),
            },
            None => Asked::Approved(p.ask.op, p.ask.path),
        }
    }

    /// Asks the rules (and, for `parent`, the writable roots); reports denials.
    /// A name asked about (`ask_write`) cannot be decided here, one of many: the caller gets
    /// EXDEV, so tools fall back to moving name by name, each asked about.
    pub fn decide(
        &self,
        op: Op,
        path: &Path,
        parent: Option<&[Vec<u8>]>,
        pid: i32,
    ) -> Result<(), Errno> {
        match self.verdict(op, path, parent, pid)? {
            None => Ok(()),
            Some(_) => Err(Errno::XDEV),
        }
    }

    /// Rules, then writable roots; `Some(rule)`: allowed only if a person says so.
    /// A deny or protection is final: it never reaches a person.
    fn verdict(
        &self,
        op: Op,
        path: &Path,
        parent: Option<&[Vec<u8>]>,
        pid: i32,
    ) -> Result<Option<String>, Errno> {
        self.classify(op, path, parent).map_err(|(errno, why)| {
            self.report(op, path, pid, why);
            errno
        })
    }

    /// [`Self::verdict`] without reporting a refusal: `Err((errno, why))`.
    fn classify(
        &self,
        op: Op,
        path: &Path,
        parent: Option<&[Vec<u8>]>,
    ) -> Result<Option<String>, (Errno, String)> {
        let ask = match self.cfg.rules.check(op, path) {
            Verdict::Deny { errno, rule } => return Err((Errno::from_raw_os_error(errno), rule)),
            Verdict::Ask { rule, .. } => Some(rule),
            Verdict::Allow => None,
        };
        if let Some(parent) = parent {
            if !self.writable(parent) {
                return Err((Errno::ACCESS, "outside writable roots".into()));
            }
        }
        Ok(ask)
    }

    /// Whether a directory (as path components) is under a writable root.
    fn writable(&self, dir: &[Vec<u8>]) -> bool {
        self.roots.iter().any(|r| dir.starts_with(r))
    }

    /// Holds every other name change off (as a rename does).
    pub fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.tree.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn report(&self, op: Op, path: &Path, pid: i32, rule: String) {
        (self.cfg.on_event)(Event {
            op,
            path: path.to_path_buf(),
            pid,
            allowed: false,
            rule: Some(rule),
        });
    }
}

enum WriteOrRead<'a> {
    W(#[allow(dead_code)] std::sync::RwLockWriteGuard<'a, ()>),
    R(#[allow(dead_code)] std::sync::RwLockReadGuard<'a, ()>),
}

/// The outcome of asking.
enum Asked {
    /// Handle the call again; this operation on this path is approved.
    Approved(Op, PathBuf),
    /// The answer for the caller.
    Done(Reply),
}

/// What a handler produced: a reply, or a FIFO to wait on outside the lock.
pub(crate) enum Done {
    Reply(Reply),
    Fifo(open::FifoWait),
}

impl From<Reply> for Done {
    fn from(r: Reply) -> Self {
        Done::Reply(r)
    }
}

/// One notification being handled.
pub(crate) struct Ctx<'a> {
    pub g: &'a Guard,
    pub caller: &'a Caller,
    /// `listener.id_valid(id)`, as a closure for the resolver.
    pub valid: Box<dyn Fn() -> bool + 'a>,
    /// Operations a person approved for this very call.
    pub approved: &'a [(Op, PathBuf)],
    /// A question to ask (set with an error return, which then means "ask first").
    pub pending: RefCell<Option<Pending>>,
}

fn name(p: &Parent) -> &OsStr {
    OsStr::from_bytes(&p.name)
}

impl Ctx<'_> {
    pub fn resolver(&self) -> Resolver<'_> {
        Resolver::new(&self.g.root, self.caller, &*self.valid)
    }

    fn decide(&self, op: Op, p: &Parent, writable: bool) -> Result<(), Errno> {
        let parent = writable.then_some(p.dir.path.as_slice());
        self.decide_path(op, p.full(), parent)
    }

    fn decide_path(&self, op: Op, path: PathBuf, parent: Option<&[Vec<u8>]>) -> Result<(), Errno> {
        let ask = self.g.verdict(op, &path, parent, self.caller.tid)?;
        self.settle(op, path, ask)
    }

    /// Rules (and, for `parent`, the writable roots) for `op` on `p`; a refusal first gets
    /// `instead` its say: the kernel's own answer where it would give one whatever the policy
    /// says (then no denial is reported). Only a refusal pays for what `instead` looks at.
    /// `Ok(true)`: allowed without asking anybody.
    fn decide_or(
        &self,
        op: Op,
        p: &Parent,
        parent: Option<&[Vec<u8>]>,
        instead: impl FnOnce(PathBuf) -> Option<Result<bool, Errno>>,
    ) -> Result<bool, Errno> {
        let path = p.full();
        match self.g.classify(op, &path, parent) {
            Ok(None) => Ok(true),
            Ok(ask) => self.settle(op, path, ask).map(|()| false),
            Err((errno, why)) => instead(path.clone()).unwrap_or_else(|| {
                self.g.report(op, &path, self.caller.tid, why);
                Err(errno)
            }),
        }
    }

    /// rmdir: a refused directory that still has entries gets ENOTEMPTY, as the kernel would
    /// answer whatever the policy says, and is no denial (git tries `rmdir .git` after every
    /// stash; refusing it made an ordinary stash read as an attempt to delete the repository).
    fn decide_rmdir(&self, p: &Parent) -> Result<(), Errno> {
        let parent = Some(p.dir.path.as_slice());
        self.decide_or(Op::Rmdir, p, parent, |_| {
            has_entries(p).then_some(Err(Errno::NOTEMPTY))
        })
        .map(|_| ())
    }

    /// An open with O_CREAT, on the name (the writable roots are checked where a file is
    /// created). On a name that exists, a refused create is what the kernel would answer
    /// instead: O_EXCL's EEXIST (Python's `open(p, "x")` of an existing CLAUDE.md, a lock file
    /// taken twice), else the write it is (`>> ~/.bashrc`), decided and reported as one.
    /// `Ok(true)`: the rules allow the create without asking.
    fn decide_create(&self, p: &Parent, exclusive: bool) -> Result<bool, Errno> {
        self.decide_or(Op::Create, p, None, |path| {
            rustix::fs::statat(&p.dir.fd, name(p), AtFlags::SYMLINK_NOFOLLOW).ok()?;
            Some(match exclusive {
                true => Err(Errno::EXIST),
                false => self.decide_path(Op::Write, path, None).map(|()| false),
            })
        })
    }

    /// After the rules: go ahead, or ask (unless this exact op was approved already).
    fn settle(&self, op: Op, path: PathBuf, ask: Option<String>) -> Result<(), Errno> {
        match ask {
            None => Ok(()),
            Some(_) if self.approved.iter().any(|(o, a)| *o == op && *a == path) => Ok(()),
            Some(rule) => self.raise(op, path, rule, None, false),
        }
    }

    /// Decides `op` on the existing object `fd` by the file, not by the name that reached it:
    /// its name in the sandbox's view (`name` when the guard resolved it itself, else the
    /// kernel's name for it, verified) goes to the rules, and its identity is looked up among
    /// the protected files. A regular file or directory that still has names, none of which
    /// the guard can see, is refused: nothing says it is not protected.
    /// Returns the file's stat.
    pub fn decide_file(
        &self,
        op: Op,
        fd: &OwnedFd,
        name: Option<PathBuf>,
    ) -> Result<rustix::fs::Stat, Errno> {
        self.decide_file_stat(op, fd, name, rustix::fs::fstat(fd)?)
    }

    /// [`Ctx::decide_file`] with the file's stat already taken.
    pub fn decide_file_stat(
        &self,
        op: Op,
        fd: &OwnedFd,
        name: Option<PathBuf>,
        st: rustix::fs::Stat,
    ) -> Result<rustix::fs::Stat, Errno> {
        let name = match name {
            Some(n) => Some(n),
            None => self.resolver().name_of_stat(fd, &st)?,
        };
        let shown = || {
            name.clone().unwrap_or_else(|| {
                PathBuf::from(format!("(inode {} with no name here)", st.st_ino))
            })
        };
        self.check_identity(op, &st, shown)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        match name {
            Some(path) => self.decide_path(op, path, None)?,
            None if st.st_nlink > 0
                && matches!(kind, FileType::RegularFile | FileType::Directory) =>
            {
                let why = "file not reachable in the sandbox's view";
                self.g.report(op, &shown(), self.caller.tid, why.into());
                return Err(Errno::ACCESS);
            }
            None => {}
        }
        Ok(st)
    }

    /// Refuses `op` on a protected file reached under an unprotected name (a hard link).
    pub fn check_identity(
        &self,
        op: Op,
        st: &rustix::fs::Stat,
        shown: impl FnOnce() -> PathBuf,
    ) -> Result<(), Errno> {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(());
        }
        let g = self.g;
        let why = match g.protected.check(
            (st.st_dev, st.st_ino),
            st.st_nlink,
            &g.root,
            &g.cfg.writable_roots,
            &*g.cfg.rules,
        ) {
            Known::No => return Ok(()),
            Known::Protected(why) => why,
            Known::Unknown => "a file with several names, too many files to check them all",
        };
        g.report(
            op,
            &shown(),
            self.caller.tid,
            format!("protected inode: {why}"),
        );
        Err(Errno::PERM)
    }

    /// Records a question; the error return unwinds the handler, the question is asked.
    fn raise(
        &self,
        op: Op,
        path: PathBuf,
        rule: String,
        root: Option<PathBuf>,
        cloexec: bool,
    ) -> Result<(), Errno> {
        let pid = self.caller.status().ok().map(|s| s.ns_tgid);
        *self.pending.borrow_mut() = Some(Pending {
            ask: FileAsk {
                op,
                path,
                tid: self.caller.tid,
                pid,
                rule,
            },
            root,
            cloexec,
        });
        Err(Errno::AGAIN)
    }

    /// A read-only open: asked about if a rule says so, else it proceeds as it is.
    fn read_open(&self, base: super::resolve::Base, path: u64, flags: i32) -> Result<Done, Errno> {
        let go_on = Ok(Done::Reply(Reply::Continue));
        // Directories are not asked about: the view shows their stand-ins.
        if flags & libc::O_DIRECTORY != 0 {
            return go_on;
        }
        let Ok(raw) = self.caller.read_cstr(path) else {
            return go_on;
        };
        let follow = flags & libc::O_NOFOLLOW == 0;
        let full = match self.resolver().lexical(base, &raw, follow) {
            Ok(Some(p)) => p,
            // Magic links, unreachable or malformed paths: the kernel answers for itself.
            Ok(None) | Err(_) => return go_on,
        };
        match self.g.cfg.rules.check(Op::Read, &full) {
            Verdict::Allow => go_on,
            Verdict::Deny { errno, rule } => {
                self.g.report(Op::Read, &full, self.caller.tid, rule);
                Err(Errno::from_raw_os_error(errno))
            }
            Verdict::Ask { rule, root } => {
                let cloexec = flags & libc::O_CLOEXEC != 0;
                self.raise(Op::Read, full, rule, Some(root), cloexec)?;
                go_on
            }
        }
    }

    pub fn umask(&self) -> Result<u32, Errno> {
        self.g.umasks.of(self.caller, &*self.valid)
    }

    fn run(&self, req: Request) -> Result<Done, Errno> {
        let r = match req {
            Request::Open {
                base, path, flags, ..
            } if ask::is_read(flags) => return self.read_open(base, path, flags),
            Request::Open {
                base,
                path,
                flags,
                mode,
            } => return self.open(base, path, flags, mode),
            Request::Mkdir { base, path, mode } => self.mkdir(base, path, mode),
            Request::Mknod { base, path, mode } => self.mknod(base, path, mode),
            Request::Symlink { target, base, path } => self.symlink(target, base, path),
            Request::Link {
                old_base,
                old,
                new_base,
                new,
                flags,
            } => self.link(old_base, old, new_base, new, flags),
            Request::Rename {
                old_base,
                old,
                new_base,
                new,
                flags,
            } => self.rename(old_base, old, new_base, new, flags),
            Request::Unlink { base, path, flags } => self.unlink(base, path, flags),
            Request::Truncate { path, len } => self.truncate(path, len),
            Request::Meta { on, change } => self.meta(on, change),
        };
        Ok(Done::Reply(r.into()))
    }

    fn open(
        &self,
        base: super::resolve::Base,
        path: u64,
        flags: i32,
        mode: u32,
    ) -> Result<Done, Errno> {
        let path = self.caller.read_cstr(path)?;
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Errno::INVAL);
        }
        let mut res = self.resolver();
        let p = res.parent(base, &path)?;
        if p.trailing_slash || p.is_dot() {
            return Err(Errno::ISDIR);
        }
        let target = if flags & (libc::O_NOFOLLOW | libc::O_EXCL) != 0 {
            Target::Plain(p)
        } else {
            res.follow(p)?
        };
        // The umask is applied when a file is created (an existing one needs none).
        let req = open::OpenReq {
            flags,
            mode: mode & 0o7777,
        };
        let opened = match target {
            Target::Magic(fd) => {
                self.decide_file(Op::Write, &fd, None)?;
                open::magic(self, fd, req)?
            }
            Target::Plain(p) => {
                if p.is_dot() || p.trailing_slash {
                    return Err(Errno::ISDIR);
                }
                let outright = if flags & libc::O_CREAT != 0 {
                    self.decide_create(&p, flags & libc::O_EXCL != 0)?
                } else {
                    self.decide(Op::Write, &p, false)?;
                    false
                };
                open::plain(self, &p, req, outright)?
            }
        };
        Ok(match opened {
            Opened::Fd(o) => Reply::Fd {
                fd: o.fd,
                cloexec: o.cloexec,
            }
            .into(),
            Opened::Fifo(w) => Done::Fifo(w),
        })
    }

    /// truncate(2): resolved like an open for writing, then truncated through the checked fd.
    fn truncate(&self, path: u64, len: i64) -> Result<(), Errno> {
        let path = self.caller.read_cstr(path)?;
        let len = u64::try_from(len).map_err(|_| Errno::INVAL)?;
        let mut res = self.resolver();
        let p = res.parent(super::resolve::Base::Cwd, &path)?;
        let req = open::OpenReq {
            flags: libc::O_WRONLY,
            mode: 0,
        };
        let opened = match res.follow(p)? {
            Target::Magic(fd) => {
                self.decide_file(Op::Truncate, &fd, None)?;
                open::magic(self, fd, req)?
            }
            Target::Plain(p) => {
                if p.is_dot() || p.trailing_slash {
                    return Err(Errno::ISDIR);
                }
                self.decide(Op::Truncate, &p, false)?;
                open::plain(self, &p, req, false)?
            }
        };
        match opened {
            Opened::Fd(o) => rustix::fs::ftruncate(&o.fd, len),
            // A FIFO cannot be truncated.
            Opened::Fifo(_) => Err(Errno::INVAL),
        }
    }

    /// Called by `open::plain` before it creates a new name.
    pub fn may_create(&self, p: &Parent) -> Result<(), Errno> {
        self.decide(Op::Create, p, true)
    }

    /// Whether `p`'s directory is under a writable root.
    pub fn in_writable_root(&self, p: &Parent) -> bool {
        self.g.writable(&p.dir.path)
    }

    /// Whether `p`'s directory is under the sandbox's `/dev`.
    pub fn in_dev(p: &Parent) -> bool {
        p.dir.path.first().map(Vec::as_slice) == Some(b"dev")
    }

    fn mkdir(&self, base: super::resolve::Base, path: u64, mode: u32) -> Result<(), Errno> {
        let path = self.caller.read_cstr(path)?;
        let p = self.resolver().parent(base, &path)?;
        if p.is_dot() {
            return Err(Errno::EXIST);
        }
        // An existing name is EEXIST, as the kernel says, before any rule: `mkdir -p` of an
        // existing protected directory (a tool ensuring its config dir) must not fail.
        if rustix::fs::statat(&p.dir.fd, name(&p), rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            return Err(Errno::EXIST);
        }
        self.decide(Op::Mkdir, &p, true)?;
        let mode = mode & 0o1777 & !self.umask()?;
        rustix::fs::mkdirat(&p.dir.fd, name(&p), Mode::from_raw_mode(mode))
    }

    fn mknod(&self, base: super::resolve::Base, path: u64, mode: u32) -> Result<(), Errno> {
        let path = self.caller.read_cstr(path)?;
        let kind = match mode & libc::S_IFMT {
            0 | libc::S_IFREG => FileType::RegularFile,
            libc::S_IFIFO => FileType::Fifo,
            libc::S_IFSOCK => FileType::Socket,
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::PERM),
            _ => return Err(Errno::INVAL),
        };
        let p = self.resolver().parent(base, &path)?;
        if p.is_dot() {
            return Err(Errno::EXIST);
        }
        self.decide(Op::Mknod, &p, true)?;
        let perm = mode & 0o7777 & !self.umask()?;
        rustix::fs::mknodat(&p.dir.fd, name(&p), kind, Mode::from_raw_mode(perm), 0)
    }

    fn symlink(&self, target: u64, base: super::resolve::Base, path: u64) -> Result<(), Errno> {
        let target = self.caller.read_cstr(target)?;
        if target.is_empty() {
            return Err(Errno::NOENT);
        }
        let path = self.caller.read_cstr(path)?;
        let p = self.resolver().parent(base, &path)?;
        if p.is_dot() {
            return Err(Errno::EXIST);
        }
        self.decide(Op::Symlink, &p, true)?;
        rustix::fs::symlinkat(OsStr::from_bytes(&target), &p.dir.fd, name(&p))
    }

    fn link(
        &self,
        old_base: super::resolve::Base,
        old: u64,
        new_base: super::resolve::Base,
        new: u64,
        flags: i32,
    ) -> Result<(), Errno> {
        if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
            return Err(Errno::INVAL);
        }
        let old = self.caller.read_cstr(old)?;
        let new = self.caller.read_cstr(new)?;
        let mut res = self.resolver();
        // The source as an O_PATH fd: we link exactly the inode we checked, and decide on
        // that file (its name in the view and its identity), however it was named.
        let mut same_dir = None;
        let (src, src_name) = if old.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
            let super::resolve::Base::Fd(fd) = old_base else {
                return Err(Errno::PERM);
            };
            (self.caller.open_magic(&format!("fd/{fd}"))?, None)
        } else {
            let sp = res.parent(old_base, &old)?;
            if old_base == new_base {
                same_dir = sp.sibling(&old, &new);
            }
            let target = if flags & libc::AT_SYMLINK_FOLLOW != 0 {
                res.follow(sp)?
            } else {
                Target::Plain(sp)
            };
            match target {
                Target::Magic(fd) => (fd, None),
                Target::Plain(sp) => {
                    if sp.is_dot() {
                        return Err(Errno::PERM);
                    }
                    let fd = rustix::fs::openat(
                        &sp.dir.fd,
                        name(&sp),
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    (fd, Some(sp.full()))
                }
            }
        };
        let st = rustix::fs::fstat(&src)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(Errno::PERM);
        }
        self.decide_file_stat(Op::LinkFrom, &src, src_name, st)?;
        let dp = match same_dir {
            Some(dp) => dp?,
            None => res.parent(new_base, &new)?,
        };
        if dp.is_dot() {
            return Err(Errno::EXIST);
        }
        self.decide(Op::LinkTo, &dp, true)?;
        rustix::fs::linkat(
            CWD,
            open::thread_fd_path(&src).as_str(),
            &dp.dir.fd,
            name(&dp),
            AtFlags::SYMLINK_FOLLOW,
        )
    }

    fn rename(
        &self,
        old_base: super::resolve::Base,
        old: u64,
        new_base: super::resolve::Base,
        new: u64,
        flags: u32,
    ) -> Result<(), Errno> {
        let known = RenameFlags::NOREPLACE | RenameFlags::EXCHANGE | RenameFlags::WHITEOUT;
        let flags = RenameFlags::from_bits(flags).ok_or(Errno::INVAL)?;
        if !known.contains(flags) {
            return Err(Errno::INVAL);
        }
        let old = self.caller.read_cstr(old)?;
        let new = self.caller.read_cstr(new)?;
        let mut res = self.resolver();
        let sp = res.parent(old_base, &old)?;
        let same_dir = (old_base == new_base)
            .then(|| sp.sibling(&old, &new))
            .flatten();
        let dp = match same_dir {
            Some(dp) => dp?,
            None => res.parent(new_base, &new)?,
        };
        if sp.is_dot() || dp.is_dot() {
            return Err(Errno::BUSY);
        }
        self.decide(Op::RenameFrom, &sp, true)?;
        self.decide(Op::RenameTo, &dp, true)?;
        let src_dir = is_dir(&sp)?;
        if (sp.trailing_slash || dp.trailing_slash) && !src_dir {
            return Err(Errno::NOTDIR);
        }
        let pid = self.caller.tid;
        if src_dir {
            subtree::check(self.g, &sp, &sp.full(), &dp.full(), pid)?;
        }
        if flags.contains(RenameFlags::EXCHANGE) {
            self.decide(Op::RenameFrom, &dp, true)?;
            self.decide(Op::RenameTo, &sp, true)?;
            if is_dir(&dp)? {
                subtree::check(self.g, &dp, &dp.full(), &sp.full(), pid)?;
            }
        }
        let r = rustix::fs::renameat_with(&sp.dir.fd, name(&sp), &dp.dir.fd, name(&dp), flags);
        // The cache holds directories' paths, which only a directory moving changes: a file
        // renamed (git's every object, an editor's every save) keeps it. Even a failed rename
        // may have partly happened on some filesystems, and what now sits at the new name is
        // looked at, not what was there before: be safe.
        let moved_dir = src_dir || is_dir(&dp).unwrap_or(true);
        if r.is_err() || moved_dir || flags.contains(RenameFlags::EXCHANGE) {
            self.g.root.forget_paths();
        }
        r
    }

    fn unlink(&self, base: super::resolve::Base, path: u64, flags: i32) -> Result<(), Errno> {
        if flags & !libc::AT_REMOVEDIR != 0 {
            return Err(Errno::INVAL);
        }
        let rmdir = flags & libc::AT_REMOVEDIR != 0;
        let path = self.caller.read_cstr(path)?;
        let p = self.resolver().parent(base, &path)?;
        if p.is_dot() {
            return Err(match (rmdir, p.name.as_slice()) {
                (false, _) => Errno::ISDIR,
                (true, b".") => Errno::INVAL,
                (true, b"..") => Errno::NOTEMPTY,
                (true, _) => Errno::BUSY,
            });
        }
        if p.trailing_slash && !rmdir {
            return Err(if is_dir(&p)? {
                Errno::ISDIR
            } else {
                Errno::NOTDIR
            });
        }
        if rmdir {
            self.decide_rmdir(&p)?;
        } else {
            self.decide(Op::Unlink, &p, true)?;
        }
        let at = if rmdir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        let r = rustix::fs::unlinkat(&p.dir.fd, name(&p), at);
        if rmdir {
            self.g.root.forget_paths();
        }
        r
    }
}

/// Whether `p` names a directory (not through a symlink) with an entry besides `.` and `..`.
/// Any failure is `false`: the ordinary path then decides and reports it.
fn has_entries(p: &Parent) -> bool {
    let Ok(fd) = rustix::fs::openat(
        &p.dir.fd,
        name(p),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let Ok(mut dir) = rustix::fs::Dir::read_from(&fd) else {
        return false;
    };
    dir.any(|e| e.is_ok_and(|e| !matches!(e.file_name().to_bytes(), b"." | b"..")))
}

fn is_dir(p: &Parent) -> Result<bool, Errno> {
    let st = rustix::fs::statat(&p.dir.fd, name(p), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}
