"""Tell when a job ran code that changed while it was queued.

A job imports the working tree as it is when the job starts, not as it was at
submission (see `_node`), and its run sheet records that. At submission the
executor keeps the tree id of the submitting script's repository; when a result
comes back, the sheet's recorded tree is compared with it, so the user hears
which files changed between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from flexlock.cli import Task
from flexlock.core import FlexLockError, capture_repo, diff_trees, load

__all__ = ["SubmittedCode"]

# The warning names this many files, then "and N more".
_NAMED_FILES = 5


@attrs.define
class SubmittedCode:
    """The code a task list was submitted with, and the save_dirs its tasks write to."""

    trees: dict[str, str] = attrs.field(factory=dict)  # {resolved repo root: tree id}
    save_dirs: tuple[Path, ...] = ()

    @classmethod
    def capture(cls, script: str | None) -> SubmittedCode:
        """Record the tree of the repository holding `script` (or the cwd); empty outside git."""
        try:
            record = capture_repo(Path(script).parent if script else Path.cwd())
        except (FlexLockError, OSError):
            return cls()
        return cls(trees={str(Path(record.root).resolve()): record.tree})

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Remember where `tasks` write: their results are never code changes."""
        self.save_dirs += tuple(Path(task.save_dir).resolve() for task in tasks if task.save_dir)

    def changes(self, task: Task) -> str:
        """Name the files that differ between the submitted code and the code `task` ran.

        Returns:
            `"a.py, b.py"` (at most five names, then "and N more"), or "" when nothing
            changed or there is nothing to compare (no repository, no sheet).
        """
        if not self.trees or task.save_dir is None:
            return ""
        try:
            sheet = load(Path(task.save_dir))
        except Exception:  # no sheet (task without runlock): nothing to compare
            return ""
        changed: list[str] = []
        for record in sheet.code.values():
            submitted = self.trees.get(str(Path(record.root).resolve()))
            if submitted is None or submitted == record.tree:
                continue
            try:
                lines = diff_trees(record.root, submitted, record.tree)
            except FlexLockError:
                continue
            for line in lines:
                name = line.partition("\t")[2]
                path = Path(record.root, name).resolve()
                # Results of this task list appearing in an unignored save_dir are not code.
                if not any(path.is_relative_to(save_dir) for save_dir in self.save_dirs):
                    changed.append(name)
        more = f" and {len(changed) - _NAMED_FILES} more" if len(changed) > _NAMED_FILES else ""
        return ", ".join(changed[:_NAMED_FILES]) + more
