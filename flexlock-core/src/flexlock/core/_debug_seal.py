"""A seal on saved failure locals: proof that flexlock wrote them here, before anything unpickles.

A pickle runs code when it is loaded, so `load_debug_locals` loads only what this
user's flexlock wrote. `seal` signs a debug directory (HMAC-SHA256 over the index
and each pickle's sha256) with a random key kept in the user's flexlock cache
directory (`debug.key`, mode 0600; `FLEXLOCK_CACHE_DIR` or `~/.cache/flexlock`);
`is_sealed` checks it. A debug directory that was pulled, copied from another
user or machine, or edited has no valid seal. Machines sharing the home directory
(cluster nodes) share the key, so a Slurm task's save loads on the login node.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SEAL_NAME", "is_sealed", "seal"]

SEAL_NAME = "seal"
_KEY_NAME = "debug.key"


def _key(*, create: bool) -> bytes | None:
    from flexlock.core._hashcache import default_cache_dir

    path = default_cache_dir() / _KEY_NAME
    try:
        key = path.read_bytes()
        return key if len(key) == 32 else None
    except OSError:
        if not create:
            return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _key(create=False)
    with os.fdopen(handle, "wb") as file:
        file.write(key)
    return key


def _digest(directory: Path, key: bytes) -> str:
    mac = hmac.new(key, b"flexlock-debug-seal-1\n", hashlib.sha256)
    for path in sorted(directory.iterdir()):
        if path.name == SEAL_NAME:
            continue
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "not-a-file"
        mac.update(f"{path.name}\0{content}\n".encode("utf-8", "surrogateescape"))
    return mac.hexdigest()


def seal(directory: Path) -> None:
    """Sign every file of `directory` (call once it is complete)."""
    key = _key(create=True)
    if key is not None:
        (directory / SEAL_NAME).write_text(_digest(directory, key) + "\n", encoding="ascii")


def is_sealed(directory: Path) -> bool:
    """Tell whether this user's flexlock wrote `directory` as it is now."""
    key = _key(create=False)
    try:
        recorded = (directory / SEAL_NAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return key is not None and hmac.compare_digest(recorded, _digest(directory, key))
