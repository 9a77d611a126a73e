"""Turn a run sheet into what MLflow stores: a logical run key, params and tags.

Pure functions, no MLflow import: MLflow's limits (key charset, key and value
lengths) are restated here so that nothing is silently cut or rejected by the
store. They were measured on MLflow 3.17 (see docs/mlflow.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flexlock.core import RunLock

__all__ = [
    "ACTIVE",
    "DEPRECATED",
    "FAILED",
    "LEGACY_STATUS_TAG",
    "LOGGED_MS_TAG",
    "LOGICAL_RUN_ID_TAG",
    "LOGICAL_RUN_KEY_TAG",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "PENDING",
    "SHEET_DIGEST_TAG",
    "STATUS_TAG",
    "SUPERSEDED_BY_TAG",
    "TRUNCATION_MARKER",
    "default_run_name",
    "epoch_ms",
    "flatten_config",
    "log_state",
    "logical_run_key",
    "normalise_save_dir",
    "sanitise_key",
    "sheet_digest",
    "sheet_params",
    "sheet_tags",
    "truncate",
    "unique_keys",
]

#: Tag holding the supersession state; un-namespaced so a filter needs no backticks.
#: Not `status`: MLflow's run status and its UI's "State: Active" (lifecycle) filter
#: mean something else, and a bare `status` in a filter is theirs.
STATUS_TAG = "logical_status"
#: The tag's name up to flexlock-mlflow 0.11: still read, kept in step where present.
LEGACY_STATUS_TAG = "status"
#: The with-block is still running; the run is not a candidate yet.
PENDING = "pending"
#: The current log of its logical run (one per logical run id and experiment).
ACTIVE = "active"
#: Was active, then a newer log of the same logical run replaced it.
DEPRECATED = "deprecated"
#: The with-block raised; the run never became active.
FAILED = "failed"
#: sha256 hex of the normalised save dir: safe in a filter whatever the path holds.
LOGICAL_RUN_KEY_TAG = "logical_run_key"
#: The normalised absolute save dir, for people.
LOGICAL_RUN_ID_TAG = "logical_run_id"
#: When the run was logged (epoch ms): the supersession order, since start time is the sheet's.
LOGGED_MS_TAG = "flexlock.logged_ms"
#: On a deprecated run: the run id that was newest when it was demoted.
SUPERSEDED_BY_TAG = "superseded_by"
#: sha256 of the logged run.lock's bytes: `--changed-only` skips a dir whose sheet still matches.
SHEET_DIGEST_TAG = "flexlock.sheet_sha256"

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
TRUNCATION_MARKER = "…[truncated; full value in run.lock]"

# MLflow's own pattern (mlflow.utils.validation.validate_param_and_metric_name).
_DISALLOWED = re.compile(r"[^/\w.\- :]")
_SUFFIX_LENGTH = 8


def normalise_save_dir(save_dir: str | os.PathLike[str]) -> Path:
    """Return `save_dir` as an absolute path with `~`, `..` and symlinks resolved."""
    return Path(save_dir).expanduser().resolve()


def default_run_name(save_dir: Path) -> str:
    """Name a run by the last two folders of its save dir (`svc/model.C=10`).

    The folder name alone (`model.C=10`) repeats across scripts and sweeps;
    the parent folder tells them apart in the runs table.
    """
    parent = save_dir.parent.name
    return f"{parent}/{save_dir.name}" if parent else save_dir.name or str(save_dir)


def epoch_ms(timestamp: str | None) -> int | None:
    """Return an ISO-8601 sheet timestamp in epoch ms, as MLflow stores times (None if invalid)."""
    if not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def sheet_digest(save_dir: str | os.PathLike[str]) -> str | None:
    """Return `sha256:<hex>` of `save_dir/run.lock`'s bytes, or None when there is none."""
    try:
        data = Path(save_dir, "run.lock").read_bytes()
    except FileNotFoundError:
        return None
    return "sha256:" + hashlib.sha256(data).hexdigest()


def logical_run_key(save_dir: str | os.PathLike[str]) -> str:
    """Return the filter-safe key of a save dir: sha256 hex of its normalised absolute path."""
    return hashlib.sha256(str(normalise_save_dir(save_dir)).encode("utf-8")).hexdigest()


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_SUFFIX_LENGTH]


def sanitise_key(key: str) -> str:
    """Map `key` to a param/tag key MLflow accepts, keeping it readable.

    Disallowed characters become `_`; empty, `.` and `..` path segments (which
    MLflow rejects because they normalise differently) are dropped or replaced;
    keys over 250 characters are cut and given a hash suffix of the full key.
    """
    cleaned = _DISALLOWED.sub("_", key)
    segments = [
        "_" if segment in {".", ".."} else segment for segment in cleaned.split("/") if segment
    ]
    cleaned = "/".join(segments) or "_"
    if len(cleaned) > MAX_KEY_LENGTH:
        cleaned = f"{cleaned[: MAX_KEY_LENGTH - _SUFFIX_LENGTH - 1]}-{_short_hash(key)}"
        # The cut may leave a trailing "/" or "." segment; normalise once more.
        cleaned = "/".join("_" if s in {".", ".."} else s for s in cleaned.split("/") if s)
    if posixpath.normpath(cleaned) != cleaned:  # pragma: no cover - defensive, see tests
        cleaned = _short_hash(key)
    return cleaned


def unique_keys(keys: Iterable[str]) -> dict[str, str]:
    """Map each original key to a sanitised key, distinct from every other one.

    A key that sanitises to itself keeps its name; any other key whose
    sanitised form collides gets `-<8 hex of the original>` appended, so the
    mapping does not depend on the order of the keys.
    """
    originals = list(dict.fromkeys(keys))
    sanitised = {key: sanitise_key(key) for key in originals}
    taken: dict[str, list[str]] = {}
    for key, clean in sanitised.items():
        taken.setdefault(clean, []).append(key)
    result: dict[str, str] = {}
    for clean, group in taken.items():
        for key in group:
            if len(group) == 1 or key == clean:
                result[key] = clean
            else:
                result[key] = sanitise_key(f"{clean[: MAX_KEY_LENGTH - 9]}-{_short_hash(key)}")
    return result


def truncate(value: str, limit: int) -> str:
    """Cut `value` to `limit` characters, ending with a marker when it was cut."""
    if len(value) <= limit:
        return value
    return value[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def _render(value: Any) -> str:
    # Scalars as MLflow's own log_param renders them (str); lists as JSON, which
    # reads better than Python's repr and parses back.
    if isinstance(value, list | tuple):
        return json.dumps(list(value), ensure_ascii=False, default=str)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested config to dotted keys with string values.

    Mappings nest as `a.b`; lists that hold mappings nest by index as
    `layers.0.dim`; lists of scalars and empty mappings stay one value (JSON).
    """
    flat: dict[str, str] = {}
    for raw_key, value in config.items():
        key = f"{prefix}{raw_key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{key}."))
        elif isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                if isinstance(item, Mapping) and item:
                    flat.update(flatten_config(item, f"{key}.{index}."))
                else:
                    flat[f"{key}.{index}"] = _render(item)
        else:
            flat[key] = _render(value)
    return flat


def sheet_params(sheet: RunLock) -> dict[str, str]:
    """Return the sheet's config as MLflow params: unique valid keys, values within limits."""
    flat = flatten_config(sheet.config)
    keys = unique_keys(flat)
    return {keys[key]: truncate(value, MAX_PARAM_VALUE_LENGTH) for key, value in flat.items()}


def _primary_repo(sheet: RunLock) -> str | None:
    """Pick the repo MLflow's source tags describe: the one holding the script, else the first."""
    if not sheet.code:
        return None
    script = sheet.env.argv[0] if sheet.env and sheet.env.argv else None
    if script and sheet.env is not None:
        script_path = Path(sheet.env.cwd, script)
        for name, repo in sheet.code.items():
            if Path(repo.root) in script_path.parents:
                return name
    return next(iter(sheet.code))


def _repo_label(sheet: RunLock, name: str) -> str:
    """Name a repo in tag keys by its folder name, made unique with a hash when two share it."""
    label = Path(sheet.code[name].root).name or "repo"
    clashes = [
        other for other, repo in sheet.code.items() if (Path(repo.root).name or "repo") == label
    ]
    return label if len(clashes) == 1 else f"{label}-{_short_hash(name)}"


def sheet_tags(sheet: RunLock) -> tuple[dict[str, str], dict[str, str]]:
    """Return `(core, detail)` tags describing the sheet.

    `core` is small and goes into the run's creation (identity, MLflow source
    tags); `detail` has one entry per repo, data input and upstream run, and is
    logged in batches with the params.
    """
    core: dict[str, str] = {
        "flexlock.id": sheet.id,
        "flexlock.sheet_status": sheet.status,
        "flexlock.created": sheet.created,
    }
    if sheet.finished:
        core["flexlock.finished"] = sheet.finished
    if sheet.env is not None:
        core["mlflow.user"] = sheet.env.user
        if sheet.env.argv:
            core["mlflow.source.name"] = sheet.env.argv[0]
    primary = _primary_repo(sheet)
    if primary is not None:
        repo = sheet.code[primary]
        if repo.commit:
            core["mlflow.source.git.commit"] = repo.commit
        if repo.branch:
            core["mlflow.source.git.branch"] = repo.branch
        if repo.remote:
            core["mlflow.source.git.repoURL"] = repo.remote
        if repo.snapshot:
            # For a dirty run HEAD is not the code that ran; the snapshot commit is.
            core["flexlock.git.snapshot"] = repo.snapshot

    raw: dict[str, str] = {}
    for name, repo in sheet.code.items():
        label = _repo_label(sheet, name)
        if repo.commit:
            raw[f"flexlock.code.{label}.commit"] = repo.commit
        if repo.snapshot:
            raw[f"flexlock.code.{label}.snapshot"] = repo.snapshot
        raw[f"flexlock.code.{label}.dirty"] = str(repo.dirty).lower()
    for path, record in sheet.data.items():
        raw[f"flexlock.data.{path}"] = record.hash
    for path, prev in sheet.prevs.items():
        raw[f"flexlock.prev.{path}"] = prev.id
    keys = unique_keys(raw)
    detail = {keys[key]: truncate(value, MAX_TAG_VALUE_LENGTH) for key, value in raw.items()}
    core = {key: truncate(value, MAX_TAG_VALUE_LENGTH) for key, value in core.items()}
    return core, detail


def log_state(tags: Mapping[str, str]) -> str | None:
    """Return a run's supersession state from its tags, whichever name logged it.

    The legacy name counts only on flexlock's own runs (those with a logical run key):
    `status` is a common tag name of other tools.
    """
    if STATUS_TAG in tags:
        return tags[STATUS_TAG]
    return tags.get(LEGACY_STATUS_TAG) if LOGICAL_RUN_KEY_TAG in tags else None
