"""One running run per save_dir: an NFS-safe lock, history of older sheets, temp sweeping.

The lock is a file `<save_dir>/.flexlock/lock` holding JSON owner data
`{host, pid, boot_id, start_time, nonce, created}`. It is created complete
under a temp name and hard-linked into place: `link()` is atomic and fails if
the name exists, on local filesystems and on NFS alike, where `flock` may be
unsupported or silently local (DVC's NFS/Lustre lock failures). Falls back to
`O_EXCL` where hard links are not supported. Owners are identified by host,
boot id, pid *and* process start time, never by pid alone; a holder on this
host whose process is gone is stale and taken over. A holder on another host
is respected until its heartbeat (the lock file's mtime, refreshed by a
daemon thread) is older than the TTL.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from flexlock.core._errors import FlexLockError, LockFileError, RunInProgressError
from flexlock.core._layout import STATE_DIR
from flexlock.core._lockfile import (
    TEMP_PREFIX,
    dump,
    load,
    lock_path,
    sweep_temp_files,
    write_atomic,
)
from flexlock.core._model import ErrorRecord, RunLock
from flexlock.core._system import utc_now

__all__ = [
    "DEFAULT_TTL_S",
    "STATE_DIR",
    "SaveDirLock",
    "break_lock",
    "history_dir",
    "lock_holder",
    "mark_failed",
    "preserve_previous",
    "sweep_save_dir",
    "write_fault",
]

#: A lock held from another host is stale when its heartbeat is older than this.
DEFAULT_TTL_S = float(os.environ.get("FLEXLOCK_LOCK_TTL", "600"))
# A takeover guard without a readable owner (being made, or an older version's) is
# abandoned when older than this; one whose owner died is removed at once.
_GUARD_STALE_S = 30.0
# How long `acquire` waits for another process's takeover before failing.
_GUARD_WAIT_S = 2.0


@functools.cache  # a reboot ends this process: read once, not once per lock
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """Return the kernel start time of `pid` (clock ticks since boot), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it do not.
    return stat.rsplit(")", 1)[1].split()[19]


@functools.cache  # per pid: a forked child asks again
def _own_start_time(pid: int) -> str | None:
    return _start_time(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return False
    # A zombie (exited, not yet reaped by its parent) holds nothing any more.
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class SaveDirLock:
    """Exclusive hold of a save_dir by one live run (see the module docstring).

    Args:
        save_dir: the run directory to hold.
        ttl_s: a holder on another host is stale when its heartbeat is older than this.
        wait_s: how long `acquire` waits for a live holder before failing (0: fail at once).
    """

    def __init__(
        self, save_dir: str | os.PathLike[str], *, ttl_s: float = DEFAULT_TTL_S, wait_s: float = 0.0
    ) -> None:
        self.save_dir = Path(save_dir)
        self.path = self.save_dir / STATE_DIR / "lock"
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self.owner: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return bool(self.owner)

    def acquire(self) -> None:
        """Take the lock, taking over a stale holder.

        Raises:
            RunInProgressError: a live run holds the save_dir (after `wait_s`).
        """
        if self.held:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_s
        # A live takeover lasts milliseconds: worth waiting this long for even with wait_s=0.
        guard_deadline = time.monotonic() + _GUARD_WAIT_S
        while True:
            owner = self._new_owner()
            if self._try_create(owner):
                self.owner = owner
                self._start_heartbeat()
                return
            holder, age = self._read_holder()
            if holder is None and age is None:
                continue  # released between our attempt and the read
            if self._is_stale(holder, age):
                if self._take_over(holder) or time.monotonic() < max(deadline, guard_deadline):
                    continue
                raise RunInProgressError(self._guard_message())
            if time.monotonic() >= deadline:
                raise RunInProgressError(self._in_use_message(holder, age))
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def release(self) -> None:
        """Give the lock back (only if it is still ours)."""
        if not self.held:
            return
        _heartbeats.remove(self)  # returns once no beat of this lock is under way
        holder, _ = self._read_holder()
        if holder is not None and holder.get("nonce") == self.owner["nonce"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.owner = {}

    def __enter__(self) -> SaveDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # -- internals -------------------------------------------------------------

    @staticmethod
    def _new_owner() -> dict[str, Any]:
        pid = os.getpid()
        return {
            "host": socket.gethostname(),
            "pid": pid,
            "boot_id": _boot_id(),
            "start_time": _own_start_time(pid),
            "nonce": os.urandom(8).hex(),
            "created": utc_now(),
        }

    def _try_create(self, owner: dict[str, Any]) -> bool:
        content = json.dumps(owner, sort_keys=True).encode("ascii")
        temp = self.path.with_name(f"lock.{owner['nonce']}.tmp")
        temp.write_bytes(content)
        try:
            try:
                os.link(temp, self.path)
            except FileExistsError:
                return False
            except OSError:
                # NFS may report failure for a link that was made: trust the link count.
                with contextlib.suppress(OSError):
                    if temp.stat().st_nlink == 2:
                        return True
                return self._try_create_exclusive(content)
            return True
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()

    def _try_create_exclusive(self, content: bytes) -> bool:
        # Filesystems without hard links: O_EXCL. A reader may see the file
        # empty for a moment; `_is_stale` gives unreadable owners a grace period.
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _read_holder(self) -> tuple[dict[str, Any] | None, float | None]:
        """Return (owner or None if unreadable, heartbeat age); (None, None) if unlocked."""
        try:
            age = time.time() - self.path.stat().st_mtime
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None
        except OSError:
            return None, 0.0
        try:
            holder = json.loads(text)
        except ValueError:
            return None, age
        return (holder if isinstance(holder, dict) else None), age

    def _is_stale(self, holder: dict[str, Any] | None, age: float | None) -> bool:
        age = age or 0.0
        if holder is None:  # being written (O_EXCL fallback) or corrupt
            return age > _GUARD_STALE_S
        if holder.get("host") != socket.gethostname():
            return age > self.ttl_s
        if holder.get("boot_id") and _boot_id() and holder["boot_id"] != _boot_id():
            return True  # this host rebooted since
        pid = holder.get("pid")
        if not isinstance(pid, int) or not _pid_alive(pid):
            return True
        recorded = holder.get("start_time")
        return bool(recorded) and _start_time(pid) not in (None, recorded)  # pid reused

    def _take_over(self, stale: dict[str, Any] | None) -> bool:
        """Remove the stale holder's lock under the takeover guard; False if guard is busy."""
        # The guard directory serialises takeovers, so two processes that both
        # judged the same holder stale cannot delete each other's fresh lock.
        guard = self.path.with_name("lock.takeover")
        if not self._make_guard(guard):
            self._break_dead_guard(guard)
            time.sleep(0.05)
            return False
        try:
            holder, age = self._read_holder()
            same = (holder or {}).get("nonce") == (stale or {}).get("nonce")
            if age is not None and same and self._is_stale(holder, age):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            with contextlib.suppress(OSError):
                (guard / "owner").unlink()
                guard.rmdir()
        return True

    def _make_guard(self, guard: Path) -> bool:
        # Made whole, then renamed into place: a guard is never seen without its owner.
        owner = self._new_owner()
        temp = guard.with_name(f"{guard.name}.{owner['nonce']}.tmp")
        temp.mkdir()
        (temp / "owner").write_text(json.dumps(owner), encoding="ascii")
        try:
            temp.rename(guard)  # fails if the guard exists (it is never empty)
        except OSError:
            with contextlib.suppress(OSError):
                (temp / "owner").unlink()
                temp.rmdir()
            return False
        return True

    def _break_dead_guard(self, guard: Path) -> None:
        """Remove the guard of a takeover whose process died (kill -9 mid-takeover)."""
        try:
            age = time.time() - guard.stat().st_mtime
        except OSError:
            return  # gone already
        try:
            owner = json.loads((guard / "owner").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            owner = None  # an older version's guard (no owner file)
        if isinstance(owner, dict) and owner.get("host") == socket.gethostname():
            if not self._is_stale(owner, 0.0):
                return  # its process lives: a takeover in progress
        elif age <= _GUARD_STALE_S:
            return
        # Renamed away first: of two processes breaking it, one wins; the other's
        # rename finds nothing and a new guard made meanwhile is put back.
        dead = guard.with_name(f"{guard.name}.{os.urandom(8).hex()}.dead")
        try:
            guard.rename(dead)
        except OSError:
            return
        with contextlib.suppress(OSError, ValueError):
            moved = json.loads((dead / "owner").read_text(encoding="utf-8"))
            if isinstance(owner, dict) and moved.get("nonce") != owner.get("nonce"):
                dead.rename(guard)  # not the one judged dead: a live takeover's
                return
        import shutil  # with its compression modules, only to clear a stale lock

        shutil.rmtree(dead, ignore_errors=True)

    def _guard_message(self) -> str:
        guard = self.path.with_name("lock.takeover")
        return (
            f"{self.save_dir}: another process is taking over its stale lock ({guard} exists). "
            f"Retry in a moment; if no flexlock run is starting there, remove {guard}."
        )

    def _start_heartbeat(self) -> None:
        _heartbeats.add(self, max(1.0, min(60.0, self.ttl_s / 4)))

    def _beat(self) -> bool:
        """Refresh the heartbeat; False when the lock is no longer ours."""
        holder, _ = self._read_holder()
        if holder is None or holder.get("nonce") != self.owner.get("nonce"):
            return False  # broken by hand (`flexlock unlock`): nothing left to refresh
        with contextlib.suppress(OSError):
            os.utime(self.path)
        return True

    def _in_use_message(self, holder: dict[str, Any] | None, age: float | None) -> str:
        if holder is None:
            who = "a run whose lock file is unreadable"
        else:
            who = (
                f"a running run (host {holder.get('host')}, pid {holder.get('pid')}, "
                f"started {holder.get('created')})"
            )
        remote = holder is not None and holder.get("host") != socket.gethostname()
        wait = (
            f" It counts as stale {self.ttl_s:.0f} s after its last heartbeat "
            f"({age or 0:.0f} s ago)."
            if remote
            else ""
        )
        return (
            f"{self.save_dir} is in use by {who}.{wait} Wait for it to finish or use another "
            f"save_dir; if that run is dead, remove {self.path} and retry."
        )


class _Heartbeats:
    """One daemon thread refreshing every lock this process holds.

    A thread per lock cost a task list a thread start per task (milliseconds on a
    loaded machine); one thread, started with the first lock, serves them all.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[int, tuple[SaveDirLock, float, float]] = {}  # lock, interval, due
        self._thread: threading.Thread | None = None

    def add(self, lock: SaveDirLock, interval: float) -> None:
        with self._changed:
            self._due[id(lock)] = (lock, interval, time.monotonic() + interval)
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = threading.Thread(
                    target=self._run, name="flexlock-heartbeat", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def remove(self, lock: SaveDirLock) -> None:
        with self._changed:  # a beat runs under this lock: none is in flight after it
            self._due.pop(id(lock), None)

    def _run(self) -> None:
        with self._changed:
            while True:
                if not self._due:
                    self._changed.wait()
                    continue
                now = time.monotonic()
                wake = min(due for _, _, due in self._due.values())
                if wake > now:
                    self._changed.wait(wake - now)
                    continue
                for key, (lock, interval, due) in list(self._due.items()):
                    if due <= now:
                        if lock._beat():
                            self._due[key] = (lock, interval, now + interval)
                        else:
                            del self._due[key]


_heartbeats = _Heartbeats()


def lock_holder(save_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], float, bool] | None:
    """Return (owner, heartbeat age in seconds, stale) of a save_dir's lock; None if unlocked.

    The owner is `{}` when the lock file is unreadable. Stale as `acquire` judges it: a
    holder on this host whose process is gone, or a heartbeat older than the TTL.
    """
    lock = SaveDirLock(save_dir)
    holder, age = lock._read_holder()
    if age is None:
        return None
    return holder or {}, age, lock._is_stale(holder, age)


def break_lock(save_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Remove a save_dir's lock whoever holds it (manual recovery); return the owner it had."""
    lock = SaveDirLock(save_dir)
    holder, age = lock._read_holder()
    if age is None:
        return None
    with contextlib.suppress(FileNotFoundError):
        lock.path.unlink()
    return holder or {}


def history_dir(save_dir: str | os.PathLike[str]) -> Path:
    """Return the directory that keeps a save_dir's earlier sheets."""
    return Path(save_dir) / STATE_DIR / "history"


def _read_header(lock_file: Path) -> dict[str, str] | None:
    """Return id, status and created of a sheet from the keys written before `config:`."""
    from flexlock.core._lockfile import parse_yaml

    try:
        text = lock_file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    # The writer puts these keys first; parsing only them keeps a big sheet cheap.
    head = text.split("\nconfig:", 1)[0]
    try:
        raw = parse_yaml(head, source=str(lock_file))
    except LockFileError:
        return None
    keys = ("id", "status", "created")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(key), str) for key in keys):
        return None
    return {key: raw[key] for key in keys}


def preserve_previous(save_dir: str | os.PathLike[str], lock_file: Path) -> Path | None:
    """Keep the sheet at `lock_file` (if any) under the history dir; return where it went.

    Called by the lock holder before a new run replaces `lock_file`. The name is
    `<created>-<status>-<id prefix>.lock`; a sheet left `running` by a dead run is
    kept as `interrupted`, an unreadable one as `unreadable`; a `queued` placeholder
    is not kept.
    """
    if not lock_file.exists():
        return None
    header = _read_header(lock_file)
    if header is not None and header["status"] == "queued":
        return None  # a submission's placeholder, not a run: the run replaces it
    if header is not None:
        stamp = header["created"].replace("-", "").replace(":", "")
        status = "interrupted" if header["status"] == "running" else header["status"]
        name = f"{stamp}-{status}-{header['id'].rpartition(':')[2][:12]}"
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(lock_file.stat().st_mtime))
        name = f"{stamp}-unreadable"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)  # a hand-edited header must not make a path
    target_dir = history_dir(save_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.lock"
    while True:
        try:
            os.link(lock_file, target)  # no copy: the new run replaces the name, not the inode
        except FileExistsError:
            target = target_dir / f"{name}-{os.urandom(3).hex()}.lock"
            continue
        except OSError:  # no hard links here
            write_atomic(target, lock_file.read_bytes())
        return target


def sweep_save_dir(save_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove temp files of killed writers in a save_dir the caller holds the lock of."""
    save_dir = Path(save_dir)
    # Under the lock no one else writes run.lock, so its temp files are strays at any age.
    removed = sweep_temp_files(save_dir, older_than_s=0, prefix=f"{TEMP_PREFIX}run.lock.")
    removed += sweep_temp_files(save_dir)
    state = save_dir / STATE_DIR
    removed += sweep_temp_files(state)
    removed += sweep_temp_files(state, prefix="lock.", older_than_s=600)  # lock.<nonce>.tmp
    return [path for path in removed if path.name != "lock.takeover"]


def mark_failed(
    save_dir: str | os.PathLike[str],
    error: ErrorRecord,
    *,
    only_if: Callable[[RunLock], bool] | None = None,
    lock_wait_s: float | None = None,
) -> bool:
    """Finalise the sheet a dead run left `running` in `save_dir` as `failed` with `error`.

    Executors call this for tasks killed before their own process could finish the
    sheet (Ctrl-C, a Slurm time limit). Only a `running` sheet is changed, and only
    when `only_if(sheet)` holds (say, the sheet names the killed job). With
    `lock_wait_s`, the save_dir lock is taken first: it is free only once the run's
    process is gone, so a live run is never marked failed under its own feet.

    Returns:
        Whether the sheet was changed. An absent, unreadable or finished sheet, or a
        lock still held after `lock_wait_s`, leaves everything as it was.
    """
    holder = SaveDirLock(save_dir, wait_s=lock_wait_s) if lock_wait_s is not None else None
    path = lock_path(save_dir)
    try:
        if not path.exists() or load(path).status != "running":
            return False  # cheap check before taking the lock
        if holder is not None:
            holder.acquire()
    except (FlexLockError, OSError):
        return False
    try:
        sheet = load(path)
        if sheet.status != "running" or (only_if is not None and not only_if(sheet)):
            return False
        dump(attrs.evolve(sheet, status="failed", finished=utc_now(), error=error), path)
        return True
    except (FlexLockError, OSError):
        return False
    finally:
        if holder is not None:
            holder.release()


#: What to do about a write that failed, by errno (ENOSPC, EDQUOT, EROFS, EACCES...).
_WRITE_FIXES = {
    errno.ENOSPC: "free space on that file system or point save_dir at another one",
    errno.EDQUOT: "free space within your quota or point save_dir at another file system",
    errno.EROFS: "point save_dir at a writable file system",
    errno.EACCES: "fix its permissions or point save_dir at a directory you can write",
    errno.EPERM: "fix its permissions or point save_dir at a directory you can write",
}


def write_fault(error: OSError, where: Path) -> str:
    """Return one line saying which path could not be written, why, and what to do."""
    named = error.filename if isinstance(error.filename, str) else None
    # A temporary file of an atomic write is gone by now: name the file it was for.
    path = os.fspath(where) if not named or Path(named).name.startswith(TEMP_PREFIX) else named
    cause = error.strerror or str(error)
    name = errno.errorcode.get(error.errno or 0)
    fix = _WRITE_FIXES.get(error.errno or 0, "check that the save_dir can be written")
    return f"{path}: cannot write ({cause}{f', {name}' if name else ''}): {fix}"
