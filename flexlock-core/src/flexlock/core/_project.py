"""A project's own settings: the `[tool.flexlock]` table of its repository's `pyproject.toml`.

It says, once for every run of every script, what the project's code is and which hash
algorithm its data identities use:

    [tool.flexlock]
    hash = "blake3"                   # default "sha256"; every run of the project uses it

    [tool.flexlock.code]
    exclude = ["notes/", "*.ipynb"]   # git pathspecs left out of the recorded tree
    include = ["src", "scripts"]      # only these paths (default: the whole checkout)

The default stays the exact tree. The scope used is recorded in each repo's record
(`include`, `exclude`), so re-checks capture the same paths.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import attrs

from flexlock.core._errors import ConfigError

__all__ = ["CodeScope", "ProjectSettings", "project_code_scope", "project_settings"]

_TABLE = "tool.flexlock"


@attrs.frozen
class CodeScope:
    """Git pathspecs that say what a repository's code is (empty: the whole tree)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def hides(self, path: str) -> bool:
        """Tell whether this scope leaves `path` (relative to the repo root) out of the code.

        Git pathspec rules for the common forms: `dir/` (everything below), a path, a glob
        (`*` also matches `/`, as in git), `:(glob)`/`:(exclude)` magic not interpreted.
        """
        if self.include and not any(_matches(spec, path) for spec in self.include):
            return True
        return any(_matches(spec, path) for spec in self.exclude)

    def __add__(self, other: CodeScope) -> CodeScope:
        """Return this scope with `other`'s pathspecs after its own, without repeats."""
        return CodeScope(
            tuple(dict.fromkeys((*self.include, *other.include))),
            tuple(dict.fromkeys((*self.exclude, *other.exclude))),
        )


def _matches(spec: str, path: str) -> bool:
    import fnmatch

    spec = spec.removeprefix("./")
    if spec in ("", "."):
        return True
    if spec.endswith("/") or not any(char in spec for char in "*?["):
        prefix = spec.rstrip("/")
        return path == prefix or path.startswith(f"{prefix}/")
    return fnmatch.fnmatchcase(path, spec)


@attrs.frozen
class ProjectSettings:
    """The `[tool.flexlock]` table of a project; `path` is the file it came from."""

    code: CodeScope = CodeScope()
    hash: str | None = None  # the data hash algorithm; None: not set (sha256)
    path: str = ""


def project_settings(root: str | os.PathLike[str]) -> ProjectSettings:
    """Return the settings `root/pyproject.toml` declares under `[tool.flexlock]`.

    Raises:
        ConfigError: the file is not valid TOML, or the table holds something else than
            a string `hash` and a `code` table (the message names file and key).
    """
    path = Path(root) / "pyproject.toml"
    try:
        info = path.stat()
    except OSError:
        return ProjectSettings()
    # Read once per process and version of the file: a task list asks for every task.
    return _read_settings(os.fspath(path), info.st_mtime_ns, info.st_size)


def project_code_scope(root: str | os.PathLike[str]) -> CodeScope:
    """Return the code scope `root/pyproject.toml` declares under `[tool.flexlock.code]`.

    Raises:
        ConfigError: the file is not valid TOML, or the table holds something else than
            lists of strings `include` and `exclude` (the message names file and key).
    """
    return project_settings(root).code


@functools.lru_cache(maxsize=64)
def _read_settings(path: str, _mtime_ns: int, _size: int) -> ProjectSettings:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the project settings: {error}") from None
    if "[tool.flexlock" not in text and "tool.flexlock." not in text:
        return ProjectSettings()  # most projects: no TOML parsing at all
    table = _table(_parse_toml(text, path), path)
    unknown_keys = sorted(set(table) - {"code", "hash"})
    if unknown_keys:
        raise ConfigError(
            f"{path}: [{_TABLE}] has unknown key(s) {', '.join(unknown_keys)}; accepted: code, hash"
        )
    algorithm = table.get("hash")
    if algorithm is not None and (not isinstance(algorithm, str) or not algorithm):
        raise ConfigError(
            f'{path}: {_TABLE}.hash must be the name of a hash algorithm (e.g. hash = "blake3"),'
            f" got {algorithm!r}"
        )
    code = table.get("code", {})
    if not isinstance(code, dict):
        raise ConfigError(f"{path}: [{_TABLE}] code must be a table (code.exclude = [...])")
    unknown = sorted(set(code) - {"include", "exclude"})
    if unknown:
        raise ConfigError(
            f"{path}: [{_TABLE}.code] has unknown key(s) {', '.join(unknown)}; "
            "accepted: include, exclude"
        )
    scope = CodeScope(
        include=_patterns(code, "include", path), exclude=_patterns(code, "exclude", path)
    )
    return ProjectSettings(scope, algorithm, path)


def _parse_toml(text: str, path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # tomllib is 3.11+; tomli is the same parser, for 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ConfigError(
                f"{path} has a [{_TABLE}] table; reading it on Python 3.10 needs tomli: "
                "pip install tomli"
            ) from None
    try:
        parsed: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return parsed


def _table(parsed: dict[str, Any], path: str) -> dict[str, Any]:
    table: Any = parsed.get("tool", {})
    table = table.get("flexlock", {}) if isinstance(table, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {_TABLE} must be a table")
    return table


def _patterns(code: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = code.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(
            f"{path}: {_TABLE}.code.{key} must be a list of git pathspecs "
            f'(e.g. {key} = ["notes/", "*.ipynb"]), got {value!r}'
        )
    return tuple(value)
