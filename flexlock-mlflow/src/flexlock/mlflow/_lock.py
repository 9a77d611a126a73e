"""`mlflow_lock(save_dir)`: log a run sheet to MLflow under its logical run id.

Supersession is race-free without transactions (MLflow has no compare-and-set
on tags). A run is created `pending`; when the with-block succeeds it is
promoted to `active` by one tag write, exactly once, and its writer then
demotes every active run of the same logical run except the newest by
(start time, run id). Runs only ever move pending → active → deprecated, so
the globally newest active run is never demoted and every other one is
demoted by whichever of the two writers searched later: one active run
remains, the newest. A failed block leaves the previous active run alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from flexlock.core import ConfigError, LockFileError, RunLock, load
from flexlock.mlflow._query import experiment_id_for, fail_fast, newest_first, search_states
from flexlock.mlflow._sheet import (
    ACTIVE,
    DEPRECATED,
    FAILED,
    LEGACY_STATUS_TAG,
    LOGGED_MS_TAG,
    LOGICAL_RUN_ID_TAG,
    LOGICAL_RUN_KEY_TAG,
    MAX_TAG_VALUE_LENGTH,
    PENDING,
    SHEET_DIGEST_TAG,
    STATUS_TAG,
    SUPERSEDED_BY_TAG,
    default_run_name,
    epoch_ms,
    logical_run_key,
    normalise_save_dir,
    sheet_digest,
    sheet_params,
    sheet_tags,
    truncate,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run, RunInfo

__all__ = ["LoggedRun", "mlflow_lock", "reconcile"]

_logger = logging.getLogger(__name__)
_RESERVED_TAGS = frozenset(
    {
        LOGGED_MS_TAG,
        STATUS_TAG,
        LEGACY_STATUS_TAG,
        LOGICAL_RUN_KEY_TAG,
        LOGICAL_RUN_ID_TAG,
        SUPERSEDED_BY_TAG,
        SHEET_DIGEST_TAG,
    }
)


#: What `delete_superseded=None` means: set by `flexlock mlflow log --delete-superseded`
#: around the user's logging function, which calls mlflow_lock without the argument.
DELETE_SUPERSEDED_DEFAULT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flexlock_mlflow_delete_superseded", default=False
)


@attrs.frozen
class LoggedRun:
    """The MLflow run `mlflow_lock` opened for one save dir."""

    run_id: str
    experiment_id: str
    save_dir: Path  # normalised absolute path: the logical run id
    logical_run_key: str  # sha256 hex of save_dir, for filters
    sheet: RunLock | None  # None only when logged with require_success=False and no sheet
    info: RunInfo = attrs.field(repr=False)  # MLflow's RunInfo, as on mlflow.ActiveRun


def _read_sheet(directory: Path, require_success: bool) -> RunLock | None:
    if not directory.is_dir():
        raise LockFileError(f"{directory}: no such run directory")
    if not (directory / "run.lock").exists() and not require_success:
        _logger.warning("%s has no run.lock; logging only its logical run id", directory)
        return None
    sheet = load(directory)
    if require_success and sheet.status != "succeeded":
        raise LockFileError(
            f"{directory / 'run.lock'}: run status is {sheet.status!r}, not 'succeeded'; "
            "log it anyway with mlflow_lock(..., require_success=False) "
            "or `flexlock mlflow log --any-status`"
        )
    return sheet


def _check_user_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    tags = dict(tags or {})
    reserved = sorted(_RESERVED_TAGS.intersection(tags))
    if reserved:
        raise ConfigError(
            f"mlflow_lock(tags=...): {', '.join(reserved)} are set by flexlock "
            "(supersession state); rename your tags"
        )
    return {str(key): truncate(str(value), MAX_TAG_VALUE_LENGTH) for key, value in tags.items()}


@contextlib.contextmanager
def mlflow_lock(
    save_dir: str | os.PathLike[str],
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    require_success: bool = True,
    delete_superseded: bool | None = None,
) -> Iterator[LoggedRun]:
    """Log the run sheet of `save_dir` as a new MLflow run, active for the with-block.

    The run gets the sheet's flattened config as params, its identity, code
    commits and data hashes as tags, and `run.lock` as an artifact. Inside the
    block it is MLflow's active run, so `mlflow.log_metric(...)` and friends
    log into it; the caller's own active run (if any) is active again after.
    On success the run becomes the `active` run of its logical run id (the
    normalised save dir) and older runs of it become `deprecated`; if the
    block raises, the run ends FAILED and the previous active run stays.

    The tracking store is MLflow's own setting (MLFLOW_TRACKING_URI,
    `mlflow.set_tracking_uri`, or the local default `./mlflow.db`).

    Args:
        save_dir: the run's directory, holding its run.lock.
        experiment: experiment name (created if missing); None means MLflow's
            current experiment. One run is active per logical run and experiment.
        run_name: MLflow run name; default the save dir's last two folders
            (`parent/name`), so equal folder names of different scripts differ.
        tags: extra tags for the run.
        require_success: refuse sheets whose status is not `succeeded`
            (default); when False, log any sheet, or only the logical run id
            of a directory without one.
        delete_superseded: also soft-delete the runs this log deprecates, so
            MLflow's default view shows one run per logical run id
            (`mlflow runs restore --run-id ID` brings one back). None (default):
            False, or True under `flexlock mlflow log --delete-superseded`.

    Raises:
        LockFileError: no such directory, no or malformed run.lock, or a run
            that did not succeed (with require_success).
        ConfigError: `tags` uses a name flexlock reserves, or the experiment is deleted.
        TransferError: the tracking server is unreachable; raised within about 10 s
            per request unless MLFLOW_HTTP_REQUEST_TIMEOUT/_MAX_RETRIES say otherwise.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    if delete_superseded is None:
        delete_superseded = DELETE_SUPERSEDED_DEFAULT.get()
    directory = normalise_save_dir(save_dir)
    sheet = _read_sheet(directory, require_success)
    extra_tags = _check_user_tags(tags)
    key = logical_run_key(directory)
    core, detail = sheet_tags(sheet) if sheet is not None else ({}, {})
    if sheet is None:
        core["flexlock.sheet_status"] = "missing"
    else:
        digest = sheet_digest(directory)
        if digest is not None:
            core[SHEET_DIGEST_TAG] = digest
    # Every request of flexlock's own is bounded (fail_fast); the with-block's are the user's.
    with fail_fast():
        client = MlflowClient()
        experiment_id = experiment_id_for(client, experiment, create=True)
        creation_tags = {
            **core,
            **extra_tags,
            # The state tags go into the creation request so a run is never visible without them.
            STATUS_TAG: PENDING,
            LOGGED_MS_TAG: str(time.time_ns() // 1_000_000),
            LOGICAL_RUN_KEY_TAG: key,
            LOGICAL_RUN_ID_TAG: truncate(str(directory), MAX_TAG_VALUE_LENGTH),
        }
        # The sheet's own times, so the UI shows when the run ran and for how long,
        # not when (and how fast) it was logged.
        start_ms = epoch_ms(sheet.created) if sheet is not None else None
        end_ms = epoch_ms(sheet.finished) if sheet is not None else None
        run = client.create_run(
            experiment_id,
            start_time=start_ms,
            tags=creation_tags,
            run_name=run_name or default_run_name(directory),
        )
    run_id = run.info.run_id
    try:
        with fail_fast():
            params = sheet_params(sheet) if sheet is not None else {}
            # One log_batch; the client splits it into requests of <= 100 params + 100 tags.
            client.log_batch(
                run_id,
                params=[Param(name, value) for name, value in params.items()],
                tags=[RunTag(name, value) for name, value in detail.items()],
            )
            if sheet is not None:
                client.log_artifact(run_id, str(directory / "run.lock"))
        with _as_fluent_active_run(run):
            yield LoggedRun(
                run_id=run_id,
                experiment_id=experiment_id,
                save_dir=directory,
                logical_run_key=key,
                sheet=sheet,
                info=run.info,
            )
    except BaseException as error:
        with fail_fast():
            _end_failed(client, run_id, error)
        raise
    with fail_fast():
        client.set_terminated(run_id, "FINISHED", end_time=end_ms)
        # The only write of `active` anywhere: once, by the run's own writer, after success.
        client.set_tag(run_id, STATUS_TAG, ACTIVE)
        _reconcile(client, experiment_id, key, delete_superseded=delete_superseded)


def _end_failed(client: MlflowClient, run_id: str, error: BaseException) -> None:
    """Mark the run failed; never mask the user's exception with a logging error."""
    from mlflow.entities import RunTag

    message = truncate(f"{type(error).__name__}: {error}", MAX_TAG_VALUE_LENGTH)
    status = "FAILED" if isinstance(error, Exception) else "KILLED"
    try:
        client.log_batch(
            run_id, tags=[RunTag(STATUS_TAG, FAILED), RunTag("flexlock.error", message)]
        )
        client.set_terminated(run_id, status)
    except Exception:
        _logger.warning("could not mark MLflow run %s as %s", run_id, status, exc_info=True)


@contextlib.contextmanager
def _as_fluent_active_run(run: Run) -> Iterator[None]:
    """Make `run` MLflow's active run for the block, then restore the caller's stack."""
    from mlflow.tracking import fluent

    stack_variable = getattr(fluent, "_active_run_stack", None)
    if stack_variable is None:  # pragma: no cover - older/newer MLflow without the stack
        # Public fallback: resumes the run (3 extra requests) and nests it on the stack.
        fluent.start_run(run_id=run.info.run_id, nested=True)
        try:
            yield
        finally:
            active = fluent.active_run()
            if active is not None and active.info.run_id == run.info.run_id:
                fluent.end_run()
        return
    # Pushing onto MLflow's (thread-local) stack directly costs no request and works
    # whether or not the caller has a run of its own open.
    stack = stack_variable.get()
    entry = fluent.ActiveRun(run)  # type: ignore[no-untyped-call]  # MLflow leaves it untyped
    stack.append(entry)
    try:
        yield
    finally:
        # Remove only our entry: the block may have ended it (mlflow.end_run) already.
        for index in range(len(stack) - 1, -1, -1):
            if stack[index] is entry:
                del stack[index]
                break


def _reconcile(
    client: MlflowClient, experiment_id: str, key: str, *, delete_superseded: bool = False
) -> str | None:
    """Demote every active run of `key` except the newest; return the newest's id."""
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    found = f"tags.{STATUS_TAG} = '{ACTIVE}' and tags.{LOGICAL_RUN_KEY_TAG} = '{key}'"
    runs = newest_first(search_states(client, [experiment_id], found))
    if not runs:
        return None
    newest: str = runs[0].info.run_id
    for run in runs[1:]:
        try:
            client.log_batch(
                run.info.run_id,
                tags=[
                    RunTag(STATUS_TAG, DEPRECATED),
                    RunTag(SUPERSEDED_BY_TAG, newest),
                    # a run logged up to 0.11: older flexlock versions read this one
                    *(
                        [RunTag(LEGACY_STATUS_TAG, DEPRECATED)]
                        if STATUS_TAG not in run.data.tags
                        else []
                    ),
                ],
            )
            if delete_superseded:
                # Soft delete: hidden from the default view, restorable, tags kept.
                client.delete_run(run.info.run_id)
        except MlflowException:
            # A run deleted since the search cannot take tags and no longer counts.
            if client.get_run(run.info.run_id).info.lifecycle_stage != "deleted":
                raise
    return newest


def reconcile(save_dir: str | os.PathLike[str], experiment: str | None = None) -> str | None:
    """Repair the supersession state of `save_dir` (e.g. after a logger crashed).

    Demote every active run of its logical run except the newest, and return
    the newest's run id (None if it has no active run).
    """
    from mlflow import MlflowClient

    with fail_fast():
        client = MlflowClient()
        experiment_id = experiment_id_for(client, experiment, create=False)
        return _reconcile(client, experiment_id, logical_run_key(save_dir))
