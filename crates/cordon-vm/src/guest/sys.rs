//! The few raw system calls the guest's init makes (it is root in the guest kernel).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(p.as_ref()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// mount(2).
pub fn mount(
    src: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let (s, t, f, d) = (
        cstr(src)?,
        cstr(target.as_os_str().as_bytes())?,
        cstr(fstype)?,
        cstr(data)?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("mount {fstype} {src} on {}: {e}", target.display()),
        ));
    }
    Ok(())
}

/// Loads a kernel module from a file with `params` (EEXIST, already loaded, is success).
pub fn load_module(path: &Path, params: &str) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    let params = cstr(params)?;
    // SAFETY: a valid fd and an empty NUL-terminated parameter string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

/// mknod(2) for a character device.
pub fn chardev(path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let p = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: a valid path; makedev is pure arithmetic.
    let r = unsafe {
        libc::mknod(
            p.as_ptr(),
            libc::S_IFCHR | mode,
            libc::makedev(major, minor),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // mknod honours the umask; the modes are meant exactly.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
}

/// Makes `dir` the root: move its mount onto / and chroot into it (rootfs cannot be pivoted).
pub fn switch_root(dir: &Path) -> io::Result<()> {
    std::env::set_current_dir(dir)?;
    mount(".", Path::new("/"), "", libc::MS_MOVE, "")?;
    let dot = cstr(".")?;
    // SAFETY: a valid path.
    if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    std::env::set_current_dir("/")
}

/// Ends the guest at once (QEMU runs with -no-reboot, so it exits).
pub fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    cordon_linux::sys::exit_now(0)
}
