"""Run identity: the hash of what ran (config, code trees, data hashes, upstream ids).

The identity is `sha256:<hex>` over a canonical JSON document (sorted keys, no
whitespace, ASCII escapes), so it does not depend on key order, YAML layout,
timestamps, host, status or environment. Two runs with the same config, code
trees, data and upstream ids have the same id, which is what skip/resume rely on.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flexlock.core._errors import ConfigError

if TYPE_CHECKING:
    import cattrs

__all__ = ["canonical_json", "compute_id", "config_changes", "config_to_dict", "to_plain"]

#: Bump when the canonical document changes meaning (ids of old sheets would no longer match).
IDENTITY_VERSION = 1


def _unstructurer() -> cattrs.Converter:
    # The run sheet's converter: its hooks only concern flexlock's own records,
    # and building a second converter would double cattrs' set-up cost per run.
    from flexlock.core._lockfile import converter

    return converter()


def _is_plain_class(value: object) -> bool:
    return isinstance(value, type) and value.__module__ != "builtins"


def _class_attributes(cls: type) -> dict[str, Any]:
    """Collect public, non-callable class attributes along the MRO (base classes first)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):  # skip `object`
        for name, value in vars(klass).items():
            if name.startswith("_") or isinstance(value, staticmethod | classmethod | property):
                continue
            if callable(value) and not _is_plain_class(value):
                continue
            found[name] = value
    return found


# Tuples, not `bool | int | ...` unions: isinstance checks them faster, and to_plain runs
# for every value of every config (twice per task when resuming a task list).
_SCALARS = (bool, int, float, str)
_KEY_TYPES = (str, int, float, bool)


def to_plain(value: Any) -> Any:
    """Convert `value` to YAML/JSON-native data: dict, list, str, int, float, bool, None."""
    if value is None or isinstance(value, _SCALARS):
        return value
    if type(value) is dict:  # the usual case, ahead of the slower ABC check for Mapping
        return {_plain_key(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    import attrs

    if isinstance(value, Mapping):
        return {_plain_key(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((to_plain(item) for item in value), key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    # `__dataclass_fields__` is what dataclasses.is_dataclass checks, without importing it.
    if attrs.has(type(value)) or (
        hasattr(value, "__dataclass_fields__") and not isinstance(value, type)
    ):
        return to_plain(_unstructurer().unstructure(value))
    if _is_plain_class(value):
        return to_plain(_class_attributes(value))
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy
        return to_plain(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if hasattr(type(value), "__dict__") and type(value).__module__ != "builtins":
        # An instance of a plain config class: class defaults, then what the instance set.
        merged = _class_attributes(type(value))
        merged.update({k: v for k, v in vars(value).items() if not k.startswith("_")})
        return to_plain(merged)
    return str(value)


def _plain_key(key: Any) -> str | int | float | bool | None:
    if type(key) is str:
        return key
    plain = to_plain(key)
    return plain if isinstance(plain, _KEY_TYPES) or plain is None else str(plain)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Unstructure a config (attrs, dataclass, dict, plain class or instance) into a plain dict.

    Raises:
        ConfigError: the config does not unstructure into a mapping.
    """
    if config is None:
        return {}
    plain = to_plain(config)
    if not isinstance(plain, dict):
        raise ConfigError(
            f"config of type {type(config).__name__} is not a mapping; pass an attrs instance, "
            "a dataclass, a dict or a class with class attributes"
        )
    # Top-level keys are field names; the sheet's schema types them as strings.
    return {str(key): value for key, value in plain.items()}


def canonical_json(value: Any) -> str:
    """Render plain data as canonical JSON (sorted keys, compact, ASCII) for hashing."""
    return json.dumps(_string_keys(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _string_keys(value: Any) -> Any:
    # JSON keys are strings; converting first keeps sort_keys from failing on mixed key types.
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_string_keys(item) for item in value]
    return value


def compute_id(
    config: Any,
    code_trees: Mapping[str, str],
    data_hashes: Mapping[str, str],
    prev_ids: Mapping[str, str],
) -> str:
    """Return the run identity `sha256:<hex>` of a config and the states of its inputs.

    Args:
        config: the config as recorded (plain data, already redacted).
        code_trees: repo key → git tree id of its exact working tree.
        data_hashes: data input as given → its content hash.
        prev_ids: upstream run as given → its run id.
    """
    document = {
        "identity": IDENTITY_VERSION,
        "config": to_plain(config),
        "code": dict(code_trees),
        "data": dict(data_hashes),
        "prevs": dict(prev_ids),
    }
    digest = hashlib.sha256(canonical_json(document).encode("ascii")).hexdigest()
    return f"sha256:{digest}"


_MISSING = object()


def config_changes(old: Any, new: Any, *, prefix: str = "") -> list[str]:
    """List the differences between two plain configs as `key: old → new` lines, dotted keys."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in [*old, *(k for k in new if k not in old)]:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            changes.extend(
                config_changes(old.get(key, _MISSING), new.get(key, _MISSING), prefix=dotted)
            )
        return changes
    if _same(old, new):
        return []
    if old is _MISSING:
        return [f"{prefix}: added ({_short(new)})"]
    if new is _MISSING:
        return [f"{prefix}: removed (was {_short(old)})"]
    return [f"{prefix}: {_short(old)} → {_short(new)}"]


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python, but they are different configs.
    if old is _MISSING or new is _MISSING:
        return False
    return (type(old) is type(new) and old == new) or canonical_json(old) == canonical_json(new)


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
