"""What `verify` found: one check per data input, repo, upstream run and output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import attrs

__all__ = ["CheckStatus", "CodeCheck", "DataCheck", "PrevCheck", "VerifyReport"]

CheckStatus = Literal["ok", "changed", "missing", "unreadable", "extra"]


@attrs.frozen
class DataCheck:
    """The result of checking one data input."""

    name: str  # the path as recorded in the sheet
    path: str  # where it was looked for
    status: CheckStatus
    expected: str  # recorded hash (or "size=… files=…" in fast mode)
    actual: str | None = None
    detail: str = ""
    missing: tuple[str, ...] = ()  # files of a directory, relative to it
    extra: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()


@attrs.frozen
class CodeCheck:
    """The result of checking one repository's working tree against the recorded tree."""

    name: str  # the repo path as recorded
    path: str  # the repository root checked
    status: CheckStatus
    expected: str  # recorded tree id
    actual: str | None = None
    detail: str = ""
    files: tuple[str, ...] = ()  # git name-status lines, recorded tree -> current tree


@attrs.frozen
class PrevCheck:
    """The result of checking that an upstream sheet still has its recorded id."""

    name: str  # the prev path as recorded
    path: str  # the upstream run.lock checked
    status: CheckStatus
    expected: str  # recorded upstream id
    actual: str | None = None
    detail: str = ""
    report: VerifyReport | None = None  # the upstream run's own report, when recursive


@attrs.frozen
class VerifyReport:
    """Everything `verify` checked for one run; `ok` when nothing differs."""

    path: str  # the run.lock
    id: str
    mode: Literal["full", "fast"]
    data: tuple[DataCheck, ...] = ()
    code: tuple[CodeCheck, ...] = ()
    prevs: tuple[PrevCheck, ...] = ()
    outputs: tuple[DataCheck, ...] = ()  # what the run produced, checked like data

    @property
    def ok(self) -> bool:
        """Tell whether every check (and every upstream report) passed."""
        return all(check.status == "ok" for check in self.checks()) and all(
            check.report.ok for check in self.prevs if check.report is not None
        )

    def checks(self) -> Iterator[DataCheck | CodeCheck | PrevCheck]:
        """Iterate over the data, code, upstream and output checks of this run (not upstream's)."""
        yield from self.data
        yield from self.code
        yield from self.prevs
        yield from self.outputs

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping, with `ok` and the `mode` spelled out."""
        raw = attrs.asdict(self, recurse=True)
        raw["ok"] = self.ok
        raw["mode_detail"] = _MODE_DETAIL[self.mode]
        return raw


_MODE_DETAIL = {
    "full": "contents re-hashed with the recorded algorithm",
    "fast": "size, file count and modification time only; contents not hashed",
}
