//! Path resolution inside the sandbox's root, done by hand, one component at a time.
//!
//! The kernel's own resolution would run in the supervisor's root and mount namespace, so we
//! walk with `openat(O_PATH|O_NOFOLLOW)` from the sandbox root, splice symlink targets in
//! ourselves, keep `..` from climbing above the sandbox root, translate `/proc/self`, and only
//! follow procfs magic links that belong to the calling process (reopened through the host's
//! `/proc/<tid>/...`, i.e. with the kernel's own semantics). Alongside the fd we keep the
//! sandbox-absolute, symlink-free path string that the rules are asked about.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

use super::caller::Caller;

/// Symlinks followed per resolution before ELOOP, as the kernel does.
const MAX_LINKS: u32 = 40;
/// The procfs root directory's inode number.
const PROC_ROOT_INO: u64 = 1;
/// Bound on the directory-path cache.
const CACHE_MAX: usize = 4096;

/// Identity of a directory entry's target: mount, device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ident {
    pub mnt: u64,
    pub dev: u64,
    pub ino: u64,
}

/// Identity of what `fd` refers to.
pub(crate) fn ident(fd: impl AsFd) -> Result<Ident, Errno> {
    let st = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH,
        StatxFlags::INO | StatxFlags::MNT_ID,
    )?;
    Ok(Ident {
        mnt: st.stx_mnt_id,
        dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
    })
}

fn o_path(dir: impl AsFd, name: &[u8], extra: OFlags) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra,
        Mode::empty(),
    )
}

/// Several plain components (no `.`, `..` or over-long name) opened as a directory by the
/// kernel in one call from `dir`, with the walk's own rules: no symlink or magic link followed
/// (each is spliced or checked by the walk instead), mounts crossed, never above `dir`. `None`:
/// anything else (a symlink on the way, a missing name, ...), which the walk then takes
/// component by component and answers for. Git's and tar's paths (`.git/objects/ab/x`) cost one
/// open here instead of one per component.
fn plain_run(dir: &OwnedFd, comps: &VecDeque<Vec<u8>>) -> Option<OwnedFd> {
    if comps.is_empty()
        || !comps
            .iter()
            .all(|c| !matches!(c.as_slice(), b"" | b"." | b"..") && c.len() <= 255)
    {
        return None;
    }
    let mut rel = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for c in comps {
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(c);
    }
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat2(dir, OsStr::from_bytes(&rel), flags, Mode::empty(), how).ok()
}

/// The sandbox root, opened once, and the directory-path cache shared by all workers.
pub(crate) struct Root {
    pub fd: OwnedFd,
    pub id: Ident,
    /// What the host sees as the root's path (for sandboxes that chroot'ed instead of pivoting).
    host_prefix: Vec<u8>,
    /// Directory identity -> sandbox path. Only renames and removals change a directory's
    /// path, and those all pass through us, so [`Root::forget_paths`] on each keeps it true.
    cache: Mutex<HashMap<Ident, Vec<Vec<u8>>>>,
}

impl Root {
    /// Opens `/proc/<init_pid>/root`.
    pub fn open(init_pid: i32) -> Result<Self, Errno> {
        let link = format!("/proc/{init_pid}/root");
        let fd = rustix::fs::open(
            &link,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let id = ident(&fd)?;
        let host_prefix = rustix::fs::readlink(&link, Vec::new())
            .map(|c| c.into_bytes())
            .unwrap_or_default();
        Ok(Self {
            fd,
            id,
            host_prefix,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// A fresh directory handle at the root.
    pub fn dir(&self) -> Result<Dir, Errno> {
        Ok(Dir {
            fd: o_path(&self.fd, b".", OFlags::DIRECTORY)?,
            path: Vec::new(),
        })
    }

    /// Drops every cached directory path (after a rename or rmdir).
    pub fn forget_paths(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    /// The sandbox paths the kernel's name of `fd` may stand for (as seen from our root, and
    /// with the root's host prefix taken off); each must still be verified.
    fn candidates(&self, fd: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
        let own = format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
        let text = rustix::fs::readlink(own.as_str(), Vec::new())?.into_bytes();
        let prefix = &self.host_prefix;
        let stripped =
            (prefix.len() > 1 && text.starts_with(prefix) && text.get(prefix.len()) == Some(&b'/'))
                .then(|| text[prefix.len()..].to_vec());
        Ok(std::iter::once(text)
            .chain(stripped)
            .filter(|c| c.first() == Some(&b'/'))
            .collect())
    }

    fn cached(&self, id: &Ident) -> Option<Vec<Vec<u8>>> {
        self.cache.lock().ok()?.get(id).cloned()
    }

    fn remember(&self, id: Ident, path: &[Vec<u8>]) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(id, path.to_vec());
        }
    }
}

/// A directory reached inside the sandbox: an O_PATH fd and its sandbox-absolute path.
pub(crate) struct Dir {
    pub fd: OwnedFd,
    pub path: Vec<Vec<u8>>,
}

/// Joins components into a sandbox-absolute path.
pub(crate) fn join(comps: &[Vec<u8>]) -> PathBuf {
    let mut s = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum::<usize>() + 1);
    for c in comps {
        s.push(b'/');
        s.extend_from_slice(c);
    }
    if s.is_empty() {
        s.push(b'/');
    }
    PathBuf::from(OsStr::from_bytes(&s))
}

impl Dir {
    /// The sandbox-absolute path of `name` in this directory.
    pub fn child(&self, name: &[u8]) -> PathBuf {
        let mut v = self.path.clone();
        if !name.is_empty() && name != b"." {
            v.push(name.to_vec());
        }
        join(&v)
    }
}

/// Where a relative path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    Cwd,
    Fd(i32),
}

/// Everything but the last component, resolved.
pub(crate) struct Parent {
    pub dir: Dir,
    /// Last component; empty for "/", may be "." or "..".
    pub name: Vec<u8>,
    pub trailing_slash: bool,
}

impl Parent {
    /// Sandbox-absolute path of the last component.
    pub fn full(&self) -> PathBuf {
        self.dir.child(&self.name)
    }

    /// The parent of `new` when it lies in this very directory: `self` resolved `old` from the
    /// same base, and both name the same directory components (git links and renames each
    /// object within its directory). `None`: `new` must be resolved on its own. Under the
    /// guard's tree lock no rename can move the directory in between, so the answer is the one
    /// a second walk would give.
    pub fn sibling(&self, old: &[u8], new: &[u8]) -> Option<Result<Parent, Errno>> {
        if new.is_empty() || old.first() != new.first() || !dir_comps(old).eq(dir_comps(new)) {
            return None;
        }
        let (_, name, trailing_slash) = split_last(new);
        let dir = self.dir.fd.try_clone().map(|fd| Dir {
            fd,
            path: self.dir.path.clone(),
        });
        Some(dir.map_err(|_| Errno::MFILE).map(|dir| Parent {
            dir,
            name,
            trailing_slash,
        }))
    }

    /// "", "." or "..": names that cannot be created or removed.
    pub fn is_dot(&self) -> bool {
        self.name.is_empty() || self.name == b"." || self.name == b".."
    }
}

/// The final object after following symlinks in the last component.
pub(crate) enum Target {
    /// A name in a resolved directory (that is not a symlink, or does not exist).
    Plain(Parent),
    /// A procfs magic link of the caller, opened O_PATH through the host's `/proc/<tid>/...`.
    Magic(OwnedFd),
}

/// What a symlink in the walk turned out to be.
enum Link {
    /// Not a symlink at all.
    Plain,
    /// Splice these bytes (a relative or absolute path) in its place.
    Splice(Vec<u8>),
    /// A magic link of the caller, opened O_PATH.
    Magic(OwnedFd),
}

/// One resolution on behalf of one caller.
pub(crate) struct Resolver<'a> {
    root: &'a Root,
    caller: &'a Caller,
    links: u32,
    /// Whether procfs magic links may be followed (not while verifying a path string).
    magic_ok: bool,
    /// Whether the notification is still pending; checked after opening host /proc paths
    /// by thread id (the id could have been reused by another process).
    valid: &'a dyn Fn() -> bool,
}

fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A path's components but the last, without copying them.
fn dir_comps(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut it = path
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .peekable();
    std::iter::from_fn(move || {
        let c = it.next()?;
        it.peek().is_some().then_some(c)
    })
}

/// A path's components but the last, the last, and whether a slash ended the path.
fn split_last(path: &[u8]) -> (VecDeque<Vec<u8>>, Vec<u8>, bool) {
    let trailing_slash = path.len() > 1 && path.last() == Some(&b'/');
    let mut comps = components(path);
    let name = comps.pop_back().unwrap_or_default();
    (comps, name, trailing_slash)
}

fn is_numeric(c: &[u8]) -> bool {
    !c.is_empty() && c.iter().all(u8::is_ascii_digit)
}

impl<'a> Resolver<'a> {
    pub fn new(root: &'a Root, caller: &'a Caller, valid: &'a dyn Fn() -> bool) -> Self {
        Self {
            root,
            caller,
            links: 0,
            magic_ok: true,
            valid,
        }
    }

    /// Resolves all but the last component of `path` (relative ones from `base`).
    pub fn parent(&mut self, base: Base, path: &[u8]) -> Result<Parent, Errno> {
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        if path.first() == Some(&b'/') {
            return self.parent_from_root(path);
        }
        let start = self.base(base)?;
        self.parent_from(start, path)
    }

    fn parent_from(&mut self, start: Dir, path: &[u8]) -> Result<Parent, Errno> {
        let (comps, name, trailing_slash) = split_last(path);
        let dir = self.walk(start, comps)?;
        Ok(Parent {
            dir,
            name,
            trailing_slash,
        })
    }

    /// [`Resolver::parent_from`] the sandbox root for an absolute path: the fast path opens
    /// from the root's own fd (no copy of it to start from), the walk takes what it refuses.
    fn parent_from_root(&mut self, path: &[u8]) -> Result<Parent, Errno> {
        let (comps, name, trailing_slash) = split_last(path);
        Ok(Parent {
            dir: self.walk_from_root(comps)?,
            name,
            trailing_slash,
        })
    }

    /// Walks `comps` from the sandbox root: by the kernel in one call when it can (see
    /// [`plain_run`], which starts from the root's own fd), else component by component.
    fn walk_from_root(&mut self, comps: VecDeque<Vec<u8>>) -> Result<Dir, Errno> {
        if let Some(fd) = plain_run(&self.root.fd, &comps) {
            return Ok(Dir {
                fd,
                path: comps.into_iter().collect(),
            });
        }
        Ok(self.walk_steps(self.root.dir()?, comps, false)?.0)
    }

    /// Follows the last component while it is a symlink (open without O_NOFOLLOW, link with
    /// AT_SYMLINK_FOLLOW).
    pub fn follow(&mut self, mut p: Parent) -> Result<Target, Errno> {
        loop {
            if p.is_dot() {
                return Ok(Target::Plain(p));
            }
            match self.link(&p.dir, &p.name)? {
                Link::Plain => return Ok(Target::Plain(p)),
                Link::Magic(fd) => return Ok(Target::Magic(fd)),
                Link::Splice(target) => {
                    self.count_link()?;
                    let start = if target.first() == Some(&b'/') {
                        self.root.dir()?
                    } else {
                        p.dir
                    };
                    let slash = p.trailing_slash;
                    p = self.parent_from(start, &target)?;
                    p.trailing_slash |= slash;
                }
            }
        }
    }

    fn count_link(&mut self) -> Result<(), Errno> {
        self.links += 1;
        if self.links > MAX_LINKS {
            return Err(Errno::LOOP);
        }
        Ok(())
    }

    fn base(&mut self, base: Base) -> Result<Dir, Errno> {
        let fd = self.caller.open_base_checked(base);
        fd.and_then(|(fd, checked)| self.locate_with(fd, !checked))
            .map_err(|e| match (base, e) {
                (Base::Fd(_), Errno::NOENT) => Errno::BADF,
                (_, e) => e,
            })
    }

    /// A directory of the caller (its cwd, a dirfd, a magic link target), with its sandbox
    /// path. The path comes from readlink and is trusted only after walking it from the
    /// sandbox root lands on the very same directory.
    fn locate(&mut self, fd: OwnedFd) -> Result<Dir, Errno> {
        self.locate_with(fd, true)
    }

    /// [`Resolver::locate`]; `check`: whether the notification must be seen still pending
    /// first (not for an fd the receiver opened and checked).
    fn locate_with(&mut self, fd: OwnedFd, check: bool) -> Result<Dir, Errno> {
        if check && !(self.valid)() {
            return Err(Errno::SRCH);
        }
        let id = ident(&fd)?;
        if id == self.root.id {
            return Ok(Dir {
                fd,
                path: Vec::new(),
            });
        }
        if let Some(path) = self.root.cached(&id) {
            return Ok(Dir { fd, path });
        }
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::Directory {
            return Err(Errno::NOTDIR);
        }
        for cand in self.root.candidates(&fd)? {
            if let Ok(dir) = self.walk_plain(components(&cand)) {
                if ident(&dir.fd)? == id {
                    self.root.remember(id, &dir.path);
                    return Ok(dir);
                }
            }
        }
        // Deleted, or not reachable from the sandbox root: nothing sane to check against.
        Err(Errno::NOENT)
    }

    /// Walks `comps` from the sandbox root to verify a kernel-given name: no magic link is
    /// followed. A name with no symlink, `.` or `..` in it (the kernel's names have none) is
    /// walked by the kernel in one call, under the same rules as the walk below (no symlink
    /// followed, mounts crossed, never above the root); anything else takes that walk.
    fn walk_plain(&mut self, comps: VecDeque<Vec<u8>>) -> Result<Dir, Errno> {
        let saved = (self.links, self.magic_ok);
        self.magic_ok = false;
        let walked = self.walk_from_root(comps);
        (self.links, self.magic_ok) = saved;
        walked
    }

    /// The sandbox path of the object `fd` refers to (a file the caller holds open, reached
    /// through a magic link or `AT_EMPTY_PATH`), so that the rules decide on the file and not
    /// on the name that reached it. The kernel's name for it is trusted only if walking it
    /// from the sandbox root, without following any symlink, lands on the very same inode.
    /// `None`: no name of it is reachable in the sandbox's view (deleted, a pipe, a memfd,
    /// another mount namespace's file).
    #[cfg(test)]
    pub fn name_of(&mut self, fd: &OwnedFd) -> Result<Option<PathBuf>, Errno> {
        let st = rustix::fs::fstat(fd)?;
        self.name_of_stat(fd, &st)
    }

    /// [`Resolver::name_of`] with the fd's stat already taken.
    pub fn name_of_stat(
        &mut self,
        fd: &OwnedFd,
        st: &rustix::fs::Stat,
    ) -> Result<Option<PathBuf>, Errno> {
        if !(self.valid)() {
            return Err(Errno::SRCH);
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let dup = fd.try_clone().map_err(|_| Errno::MFILE)?;
            return match self.locate(dup) {
                Ok(d) => Ok(Some(join(&d.path))),
                Err(Errno::NOENT) => Ok(None),
                Err(e) => Err(e),
            };
        }
        for cand in self.root.candidates(fd)? {
            let mut comps = components(&cand);
            let Some(name) = comps.pop_back() else {
                continue;
            };
            let Ok(dir) = self.walk_plain(comps) else {
                continue;
            };
            let here =
                rustix::fs::statat(&dir.fd, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW);
            if here.is_ok_and(|h| (h.st_dev, h.st_ino) == (st.st_dev, st.st_ino)) {
                return Ok(Some(dir.child(&name)));
            }
        }
        Ok(None)
    }

    /// The sandbox-absolute path `path` names, for deciding (not for acting on): resolved as
    /// far as it exists in the sandbox's view, the rest (beneath a hidden directory, say)
    /// taken as written. `None`: a procfs magic link, or `.`/`..` as the last component.
    pub fn lexical(
        &mut self,
        base: Base,
        path: &[u8],
        follow: bool,
    ) -> Result<Option<PathBuf>, Errno> {
        if path.is_empty() {
            return Err(Errno::NOENT);
        }
        let start = if path.first() == Some(&b'/') {
            self.root.dir()?
        } else {
            self.base(base)?
        };
        let (comps, name, trailing_slash) = split_last(path);
        let (dir, rest) = self.walk_upto(start, comps, true)?;
        if rest.is_empty() {
            let p = Parent {
                dir,
                name,
                trailing_slash,
            };
            if p.is_dot() {
                return Ok(None);
            }
            let target = if follow {
                self.follow(p)?
            } else {
                Target::Plain(p)
            };
            return Ok(match target {
                Target::Plain(p) if !p.is_dot() => Some(p.full()),
                _ => None,
            });
        }
        // Nothing here exists in the view, so no symlink can either; `..` past a missing
        // name is ENOENT for the kernel too.
        let mut v = dir.path;
        for c in rest.into_iter().chain(std::iter::once(name)) {
            match c.as_slice() {
                b"." => {}
                b".." => return Err(Errno::NOENT),
                _ => v.push(c),
            }
        }
        Ok(Some(join(&v)))
    }

    /// Walks `comps` (all intermediate: each must end up a directory) from `dir`.
    fn walk(&mut self, dir: Dir, comps: VecDeque<Vec<u8>>) -> Result<Dir, Errno> {
        self.walk_upto(dir, comps, false).map(|(d, _)| d)
    }

    /// [`Resolver::walk`]; with `stop_missing`, a missing component ends the walk, which
    /// returns the directory reached and the components left (the missing one first).
    fn walk_upto(
        &mut self,
        mut dir: Dir,
        comps: VecDeque<Vec<u8>>,
        stop_missing: bool,
    ) -> Result<(Dir, VecDeque<Vec<u8>>), Errno> {
        // One component costs one open either way; a failed try would cost two.
        if comps.len() >= 2 {
            if let Some(fd) = plain_run(&dir.fd, &comps) {
                dir.fd = fd;
                dir.path.extend(comps);
                return Ok((dir, VecDeque::new()));
            }
        }
        self.walk_steps(dir, comps, stop_missing)
    }

    /// [`Resolver::walk_upto`] one component at a time: symlinks spliced, magic links checked.
    fn walk_steps(
        &mut self,
        mut dir: Dir,
        mut comps: VecDeque<Vec<u8>>,
        stop_missing: bool,
    ) -> Result<(Dir, VecDeque<Vec<u8>>), Errno> {
        while let Some(comp) = comps.pop_front() {
            if comp.len() > 255 {
                return Err(Errno::NAMETOOLONG);
            }
            match comp.as_slice() {
                b"." => {}
                b".." => {
                    if ident(&dir.fd)? != self.root.id {
                        dir.fd = o_path(&dir.fd, b"..", OFlags::DIRECTORY)?;
                        dir.path.pop();
                    }
                }
                _ => match o_path(&dir.fd, &comp, OFlags::DIRECTORY) {
                    Ok(fd) => {
                        dir.fd = fd;
                        dir.path.push(comp);
                    }
                    Err(Errno::NOENT) if stop_missing => {
                        comps.push_front(comp);
                        return Ok((dir, comps));
                    }
                    Err(Errno::NOTDIR) => match self.link(&dir, &comp)? {
                        Link::Plain => return Err(Errno::NOTDIR),
                        Link::Splice(target) => {
                            self.count_link()?;
                            if target.first() == Some(&b'/') {
                                dir = self.root.dir()?;
                            }
                            for c in components(&target).into_iter().rev() {
                                comps.push_front(c);
                            }
                        }
                        Link::Magic(fd) => {
                            self.count_link()?;
                            dir = self.locate(fd)?;
                        }
                    },
                    Err(e) => return Err(e),
                },
            }
        }
        Ok((dir, comps))
    }

    /// Classifies `name` in `dir` if it is a symlink.
    fn link(&mut self, dir: &Dir, name: &[u8]) -> Result<Link, Errno> {
        let on_proc = rustix::fs::fstatfs(&dir.fd)
            .map(|s| s.f_type == libc::PROC_SUPER_MAGIC)
            .unwrap_or(false);
        if on_proc {
            return self.proc_link(dir, name);
        }
        match rustix::fs::readlinkat(&dir.fd, OsStr::from_bytes(name), Vec::new()) {
            Ok(t) => Ok(Link::Splice(t.into_bytes())),
            Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(Link::Plain),
            Err(e) => Err(e),
        }
    }

    /// Symlinks on the sandbox's procfs: `self`/`thread-self` mean the caller, plain links at
    /// the procfs root are spliced, and everything else is a magic link.
    fn proc_link(&mut self, dir: &Dir, name: &[u8]) -> Result<Link, Errno> {
        let at_proc_root = ident(&dir.fd)?.ino == PROC_ROOT_INO;
        if at_proc_root {
            let st = self.caller.status()?;
            match name {
                b"self" => return Ok(Link::Splice(st.ns_tgid.to_string().into_bytes())),
                b"thread-self" => {
                    let t = format!("{}/task/{}", st.ns_tgid, st.ns_pid);
                    return Ok(Link::Splice(t.into_bytes()));
                }
                _ => {}
            }
            // Plain links such as `mounts -> self/mounts`.
            return match rustix::fs::readlinkat(&dir.fd, OsStr::from_bytes(name), Vec::new()) {
                Ok(t) => Ok(Link::Splice(t.into_bytes())),
                Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(Link::Plain),
                Err(e) => Err(e),
            };
        }
        // Reading a magic link is a ptrace-mode access (refused to our confined thread), so
        // only its type is looked at here.
        let st =
            match rustix::fs::statat(&dir.fd, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::NOENT) => return Ok(Link::Plain),
                Err(e) => return Err(e),
            };
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            return Ok(Link::Plain);
        }
        if !self.magic_ok {
            return Err(Errno::ACCESS);
        }
        let rest = self.own_magic(dir, name)?;
        let fd = self.caller.open_magic(&rest)?;
        // The link must lead to the very object the caller's own link leads to.
        let dir_copy = dir.fd.try_clone().map_err(|_| Errno::MFILE)?;
        let ours = rustix::fs::fstat(self.caller.follow_magic(dir_copy, name)?)?;
        let theirs = rustix::fs::fstat(&fd)?;
        if !(self.valid)() {
            return Err(Errno::SRCH);
        }
        if (ours.st_dev, ours.st_ino) != (theirs.st_dev, theirs.st_ino) {
            return Err(Errno::ACCESS);
        }
        Ok(Link::Magic(fd))
    }

    /// Maps `<tgid>[/task/<tid>]/{fd/N,cwd,root,exe}` of the caller to the part of the host
    /// path after `/proc/<tid>/`; any other process's magic links are refused.
    fn own_magic(&self, dir: &Dir, name: &[u8]) -> Result<String, Errno> {
        let st = self.caller.status()?;
        let p = &dir.path;
        let at = |back: usize| -> Option<&[u8]> {
            p.len()
                .checked_sub(back)
                .and_then(|i| p.get(i))
                .map(Vec::as_slice)
        };
        let (rest, owner_end) = if at(1) == Some(b"fd") && is_numeric(name) {
            (format!("fd/{}", String::from_utf8_lossy(name)), 2)
        } else if matches!(name, b"cwd" | b"root" | b"exe") {
            (String::from_utf8_lossy(name).into_owned(), 1)
        } else {
            return Err(Errno::ACCESS);
        };
        let num = |c: Option<&[u8]>| -> Option<i32> {
            let c = c?;
            if is_numeric(c) {
                std::str::from_utf8(c).ok()?.parse().ok()
            } else {
                None
            }
        };
        let own = num(at(owner_end)).ok_or(Errno::ACCESS)?;
        let ok = if at(owner_end + 1) == Some(b"task") {
            own == st.ns_pid && num(at(owner_end + 2)) == Some(st.ns_tgid)
        } else {
            own == st.ns_tgid
        };
        if !ok {
            return Err(Errno::ACCESS);
        }
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    //! The resolver against the real kernel, with this test process as its own "sandbox"
    //! (root `/`): every spelling of a magic link or fd-relative path must land on the file
    //! it names, and [`Resolver::name_of`] must give that file's real path, so the rules
    //! decide on the file whatever name reached it.
    use super::*;
    use crate::pathguard::caller::ProcOpener;
    use proptest::prelude::*;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    #[test]
    fn dir_comps_are_the_components_but_the_last() {
        let dirs = |p: &str| {
            super::dir_comps(p.as_bytes())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        assert_eq!(dirs("a//b/c"), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(dirs("/a/b/"), [b"a".to_vec()]);
        assert!(dirs("x").is_empty() && dirs("/").is_empty() && dirs("").is_empty());
        assert!(
            super::dir_comps(b".git/objects/ab/tmp").eq(super::dir_comps(b".git//objects/ab/x"))
        );
    }

    struct World {
        _dir: tempfile::TempDir,
        base: PathBuf,
        /// Open read-only fds of the files, and their real paths.
        files: Vec<(std::fs::File, PathBuf)>,
        dir_fd: std::fs::File,
        root: Root,
        caller: Caller,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(dir.path()).expect("canonicalize");
        let mut files = Vec::new();
        for rel in ["nested/.git/config", "packages/x/CLAUDE.md", "plain.txt"] {
            let p = base.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, rel).expect("write");
            files.push((std::fs::File::open(&p).expect("open"), p));
        }
        let dir_fd = std::fs::File::open(base.join("nested")).expect("open dir");
        let pid = std::process::id() as i32;
        let root = Root::open(pid).expect("root");
        let opener = ProcOpener::start().expect("opener");
        let caller = Caller::open(
            rustix::thread::gettid().as_raw_nonzero().get(),
            opener,
            None,
            None,
        )
        .expect("caller");
        World {
            _dir: dir,
            base,
            files,
            dir_fd,
            root,
            caller,
        }
    }

    /// One way of spelling "the file behind fd `n`" from inside.
    fn spell(form: u8, n: i32, pid: u32, tid: i32) -> String {
        match form % 6 {
            0 => format!("/proc/self/fd/{n}"),
            1 => format!("/proc/thread-self/fd/{n}"),
            2 => format!("/dev/fd/{n}"),
            3 => format!("/proc/{pid}/fd/{n}"),
            4 => format!("/proc/{pid}/task/{tid}/fd/{n}"),
            _ => format!("/proc/self/../self/fd/{n}"),
        }
    }

    /// Noise that does not change what a path names: doubled slashes and `.` components.
    fn noisy(path: &str, noise: &[bool]) -> String {
        let mut out = String::new();
        for (i, c) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
                if noise.get(i).copied().unwrap_or(false) {
                    out.push_str("./");
                }
            }
            out.push_str(c);
        }
        out
    }

    fn target_of(w: &World, base: Base, path: &str) -> Result<Target, Errno> {
        let valid = || true;
        let mut r = Resolver::new(&w.root, &w.caller, &valid);
        let p = r.parent(base, path.as_bytes())?;
        r.follow(p)
    }

    fn name_of(w: &World, fd: &OwnedFd) -> Option<PathBuf> {
        let valid = || true;
        Resolver::new(&w.root, &w.caller, &valid)
            .name_of(fd)
            .expect("name_of")
    }

    fn same_file(fd: &OwnedFd, p: &Path) -> bool {
        let a = rustix::fs::fstat(fd).expect("fstat");
        let b = rustix::fs::stat(p).expect("stat");
        (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_magic_spelling_is_decided_on_the_real_file(
            which in 0usize..3,
            form in 0u8..6,
            noise in proptest::collection::vec(any::<bool>(), 0..8),
            via_symlink in any::<bool>(),
        ) {
            let w = world();
            let (file, real) = &w.files[which];
            let pid = std::process::id();
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            let mut path = noisy(&spell(form, file.as_raw_fd(), pid, tid), &noise);
            if via_symlink {
                let link = w.base.join("link");
                std::os::unix::fs::symlink(&path, &link).expect("symlink");
                path = link.display().to_string();
            }
            match target_of(&w, Base::Cwd, &path) {
                Ok(Target::Magic(fd)) => {
                    prop_assert!(same_file(&fd, real), "{path} reached another file");
                    let named = name_of(&w, &fd);
                    prop_assert_eq!(named.as_deref(), Some(real.as_path()), "{}", path);
                }
                Ok(Target::Plain(p)) => prop_assert!(false, "{path} resolved to a plain name {:?}", p.full()),
                Err(e) => prop_assert!(false, "{path}: {e}"),
            }
        }

        #[test]
        fn fd_relative_paths_name_the_real_file(
            noise in proptest::collection::vec(any::<bool>(), 0..6),
            up in any::<bool>(),
        ) {
            let w = world();
            let rel = if up { "../nested/.git/config" } else { ".git/config" };
            let rel = noisy(rel, &noise);
            let base = Base::Fd(w.dir_fd.as_raw_fd());
            match target_of(&w, base, &rel) {
                Ok(Target::Plain(p)) => {
                    prop_assert_eq!(p.full(), w.base.join("nested/.git/config"), "{}", rel);
                }
                Ok(Target::Magic(_)) => prop_assert!(false, "{rel}: a plain file became a magic link"),
                Err(e) => prop_assert!(false, "{rel}: {e}"),
            }
            // The directory fd itself (AT_EMPTY_PATH): its name is the real directory.
            let dir = w.dir_fd.try_clone().expect("dup");
            prop_assert_eq!(name_of(&w, &OwnedFd::from(dir)), Some(w.base.join("nested")));
        }
    }

    #[test]
    fn another_process_magic_links_are_refused() {
        let w = world();
        let (file, _) = &w.files[0];
        // pid 1 is not this process: its fds are never followed.
        let path = format!("/proc/1/fd/{}", file.as_raw_fd());
        assert!(matches!(
            target_of(&w, Base::Cwd, &path),
            Err(Errno::ACCESS) | Err(Errno::NOENT)
        ));
    }

    #[test]
    fn unnamed_objects_have_no_name() {
        let w = world();
        let (r, _wr) = rustix::pipe::pipe().expect("pipe");
        assert_eq!(name_of(&w, &r), None);
        let tmp = rustix::fs::open(
            w.base.as_path(),
            OFlags::TMPFILE | OFlags::RDWR,
            Mode::from_raw_mode(0o600),
        )
        .expect("O_TMPFILE");
        assert_eq!(name_of(&w, &tmp), None);
        // A deleted file is not found under its old name either.
        let p = w.base.join("gone.txt");
        std::fs::write(&p, "x").expect("write");
        let fd = OwnedFd::from(std::fs::File::open(&p).expect("open"));
        std::fs::remove_file(&p).expect("rm");
        std::fs::write(&p, "another").expect("write");
        assert_eq!(name_of(&w, &fd), None);
    }
}
