"""Shared by the benchmark scripts' Python parts: who runs the measured commands, and where."""
import os
import pwd


def as_user(run_user):
    """(workspace, environment, subprocess keyword arguments) for measuring as `run_user`
    (empty: as the current user). The workspace lies below $HOME: cordon refuses $HOME itself."""
    kw = {}
    if run_user:
        pw = pwd.getpwnam(run_user)
        home = pw.pw_dir
        kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    else:
        home = os.environ.get("HOME", "/tmp")
    ws = os.path.join(home, "cordon-bench-ws")
    os.makedirs(ws, exist_ok=True)
    if run_user:
        os.chown(ws, pw.pw_uid, pw.pw_gid)
    env = {"HOME": home, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    if run_user:
        env.update(USER=run_user, LOGNAME=run_user)
    return ws, env, kw


def srt_settings(ws, kw=None):
    """srt's settings file for a workspace (written once): the workspace and /tmp writable (it
    allows no writes by default), no network. Owned by the measuring user when `kw` names one."""
    cfg = os.path.join(ws, ".bench-srt.json")
    if not os.path.exists(cfg):
        with open(cfg, "w") as f:
            f.write('{"filesystem": {"denyRead": [], "allowWrite": ["%s", "/tmp"], '
                    '"denyWrite": []}, "network": {"allowedDomains": [], '
                    '"deniedDomains": []}}\n' % ws)
        if kw and "user" in kw:
            os.chown(cfg, kw["user"], kw["group"])
    return cfg
