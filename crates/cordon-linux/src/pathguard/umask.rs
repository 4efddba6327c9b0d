//! The callers' umasks, remembered per task while no umask can have changed.
//!
//! Creating a file, directory or node on a caller's behalf needs its umask, which only
//! `/proc/<tid>/status` tells (about 6 µs to render, as much as the rest of a create). A task's
//! umask changes only through umask(2) by a task sharing its `fs_struct`, and every such task
//! is a sandboxed one, whose umask(2) is routed here: the filter is installed in a freshly
//! forked, single-threaded child (run, exec, the Landlock tier), so a filtered task's
//! `fs_struct` is only ever shared with clones that inherited the filter. So a value read is
//! kept, keyed by the task's identity (its pidfs inode number, unique for the boot: a reused
//! thread id is another key), and all of them are dropped when any umask(2) arrives. Before
//! the first one, every task still has the umask the filter was installed with. The kernel
//! applies a umask(2) only after it is let go, so its task stays "pending" until it makes
//! another routed call (a thread is in one syscall at a time: its umask(2) has returned by
//! then); while any task is pending nothing is remembered or used.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};

use super::caller::Caller;

/// Tasks remembered at most (then the cache starts over).
const CACHE_MAX: usize = 4096;
/// `PIDFD_THREAD` (Linux 6.9, with pidfs and its unique inode numbers): a pidfd for a thread.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;
/// `PID_FS_MAGIC`: the file system whose inode numbers identify tasks.
const PID_FS_MAGIC: i64 = 0x5049_4446;

pub(crate) struct Umasks {
    /// Bumped by every umask(2): entries of older generations are stale.
    gen: AtomicU64,
    /// Tasks whose umask(2) may not have happened yet.
    pending: Mutex<HashSet<i32>>,
    npending: AtomicUsize,
    /// pidfs inode number -> (generation, umask).
    cache: Mutex<HashMap<u64, (u64, u32)>>,
    /// Until the first umask(2), every task has the umask the filter was installed with (all
    /// descend from that one task): no identity needed.
    first: OnceLock<u32>,
}

impl Umasks {
    pub fn new() -> Self {
        Self {
            gen: AtomicU64::new(0),
            pending: Mutex::new(HashSet::new()),
            npending: AtomicUsize::new(0),
            cache: Mutex::new(HashMap::new()),
            first: OnceLock::new(),
        }
    }

    /// A umask(2) of `tid` arrived; called before it is let go.
    pub fn changing(&self, tid: i32) {
        if let Ok(mut p) = self.pending.lock() {
            if p.insert(tid) {
                self.npending.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.gen.fetch_add(1, Ordering::SeqCst);
    }

    /// `tid` made a routed call: any umask(2) it made before has returned.
    pub fn seen(&self, tid: i32) {
        if self.npending.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            if p.remove(&tid) {
                self.npending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// The caller's umask. `valid`: whether its notification is still pending (then the
    /// status read and the identity are the same task's: it cannot have exited meanwhile).
    pub fn of(&self, caller: &Caller, valid: &dyn Fn() -> bool) -> Result<u32, Errno> {
        let read = || caller.status().map(|s| s.umask);
        if self.npending.load(Ordering::SeqCst) != 0 {
            return read();
        }
        let g = self.gen.load(Ordering::SeqCst);
        if g == 0 {
            if let Some(u) = self.first.get() {
                return Ok(*u);
            }
        }
        let id = task_identity(caller.tid);
        if id.is_none() && g != 0 {
            return read();
        }
        let hit = id.and_then(|id| self.cache.lock().ok()?.get(&id).copied());
        if let Some((eg, u)) = hit {
            if eg == g {
                return Ok(u);
            }
        }
        let st = caller.status()?;
        let u = st.umask;
        // A thread that execs takes over its group leader's pid (and so its pidfs inode): a
        // leader's umask is remembered only while it is the group's one thread, so every
        // thread that could take its pid over has inherited that same umask since (and could
        // change it only by a umask(2), which drops everything).
        let ours = match (st.tgid, st.threads) {
            (Some(tgid), _) if tgid != caller.tid => true,
            (Some(_), Some(1)) => true,
            _ => false,
        };
        let unchanged =
            self.gen.load(Ordering::SeqCst) == g && self.npending.load(Ordering::SeqCst) == 0;
        if unchanged && valid() {
            if g == 0 {
                let _ = self.first.set(u);
            }
            if let (Some(id), true, Ok(mut c)) = (id, ours, self.cache.lock()) {
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
                c.insert(id, (g, u));
            }
        }
        Ok(u)
    }
}

/// The pidfs inode number of thread `tid`; `None` where the kernel has no pidfs (its pidfds
/// would all share one inode) or the thread is gone.
fn task_identity(tid: i32) -> Option<u64> {
    static PIDFS: OnceLock<bool> = OnceLock::new();
    let open = |tid: i32| {
        let flags = PidfdFlags::from_bits_retain(PIDFD_THREAD);
        rustix::process::pidfd_open(Pid::from_raw(tid)?, flags).ok()
    };
    let pidfs = *PIDFS.get_or_init(|| {
        let me = rustix::thread::gettid().as_raw_nonzero().get();
        open(me)
            .and_then(|fd| rustix::fs::fstatfs(&fd).ok())
            .is_some_and(|s| s.f_type == PID_FS_MAGIC)
    });
    if !pidfs {
        return None;
    }
    Some(rustix::fs::fstat(open(tid)?).ok()?.st_ino)
}
