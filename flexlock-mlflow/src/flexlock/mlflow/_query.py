"""Find the current MLflow run of a logical run: filter strings, searches, reverse lookup.

Every search goes through `MlflowClient` (never the fluent API, whose
`search_runs` needs pandas and searches only the current experiment).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flexlock.core import ConfigError, TransferError
from flexlock.mlflow._sheet import (
    ACTIVE,
    DEPRECATED,
    FAILED,
    LEGACY_STATUS_TAG,
    LOGGED_MS_TAG,
    LOGICAL_RUN_KEY_TAG,
    PENDING,
    STATUS_TAG,
    log_state,
    logical_run_key,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = ["active_filter", "active_run_for", "active_runs", "migrate_status_tags", "runs_for"]

#: MLflow's default experiment, which every tracking store has.
_DEFAULT_EXPERIMENT_ID = "0"
_PAGE_SIZE = 1000

# A bare `status` in a filter is MLflow's run status (RUNNING, FINISHED, ...): comparing it
# with one of our tag values silently matches nothing, so such a filter is refused.
_BARE_STATUS = re.compile(
    r"(?<![\w.`])status\s*(=|!=|LIKE|ILIKE)\s*['\"](active|deprecated|pending|failed)['\"]",
    re.IGNORECASE,
)
# `tags.status` was the state tag's name up to 0.11: now it matches only older runs.
_LEGACY_STATUS = re.compile(
    r"(?<![\w`])tags\.`?status`?\s*(=|!=|LIKE|ILIKE)\s*['\"](active|deprecated|pending|failed)['\"]",
    re.IGNORECASE,
)


def active_filter(filter: str | None = None) -> str:
    """Return an MLflow filter string matching active runs only, AND-ed with `filter`.

    Raises:
        ConfigError: `filter` compares a bare `status` (MLflow's run status) or the
            old `tags.status` with a flexlock state; write `tags.logical_status`.
    """
    base = f"tags.{STATUS_TAG} = '{ACTIVE}'"
    if not filter or not filter.strip():
        return base
    match = _BARE_STATUS.search(filter)
    if match:
        raise ConfigError(
            f"filter {filter!r}: a bare `status` is MLflow's run status (RUNNING, FINISHED, "
            f"FAILED, KILLED) and never equals {match.group(2)!r}; "
            f"write `tags.{STATUS_TAG} {match.group(1)} '{match.group(2)}'`"
        )
    match = _LEGACY_STATUS.search(filter)
    if match:
        raise ConfigError(
            f"filter {filter!r}: the state tag is `{STATUS_TAG}` since flexlock-mlflow 0.12 "
            f"(`status` matches only older runs); write `tags.{STATUS_TAG} {match.group(1)} "
            f"'{match.group(2)}'` (`flexlock mlflow migrate` tags the older runs too)"
        )
    return f"{base} and {filter.strip()}"


def _legacy_filter(filter_string: str) -> str:
    """`filter_string` (from `active_filter`) for runs logged with the old tag name."""
    return filter_string.replace(f"tags.{STATUS_TAG} ", f"tags.{LEGACY_STATUS_TAG} ", 1)


def search_states(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    """Search with a filter on `tags.logical_status`, older runs' `tags.status` included.

    MLflow filters have no OR: the runs logged before the rename are a second search.
    """
    runs = search_all(client, experiment_ids, filter_string)
    legacy = search_all(client, experiment_ids, _legacy_filter(filter_string))
    return runs + [run for run in legacy if STATUS_TAG not in run.data.tags]


def _client() -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient()


def experiment_id_for(client: MlflowClient, experiment: str | None, *, create: bool) -> str:
    """Resolve an experiment name (None: MLflow's current experiment) to its id.

    Raises:
        ConfigError: the experiment does not exist (and `create` is false) or is deleted.
    """
    from mlflow.exceptions import MlflowException

    if experiment is None:
        # The fluent API's notion of "current": set_experiment(), then MLFLOW_EXPERIMENT_NAME
        # / _ID, then the default experiment. MLflow has no public getter for it.
        from mlflow.tracking import fluent

        getter = getattr(fluent, "_get_experiment_id", None)
        return (getter() if getter is not None else None) or _DEFAULT_EXPERIMENT_ID
    found = client.get_experiment_by_name(experiment)
    if found is None:
        if not create:
            raise ConfigError(
                f"no MLflow experiment named {experiment!r} at {_tracking_uri()}; "
                "check the name (or MLFLOW_TRACKING_URI)"
            )
        try:
            return str(client.create_experiment(experiment))
        except MlflowException as error:
            # Another process created it between our lookup and create.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(experiment)
            if found is None:  # pragma: no cover - deleted again in between
                raise
    if found.lifecycle_stage == "deleted":
        raise ConfigError(
            f"MLflow experiment {experiment!r} (id {found.experiment_id}) is deleted; restore it "
            f"with `mlflow experiments restore --experiment-id {found.experiment_id}` "
            "or use another name"
        )
    return str(found.experiment_id)


def _tracking_uri() -> str:
    from mlflow import get_tracking_uri

    return os.environ.get("MLFLOW_TRACKING_URI") or str(get_tracking_uri())


def search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    """Return every run matching `filter_string`, following MLflow's result pages."""
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=_PAGE_SIZE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _logged_ms(run: Run) -> int:
    # Runs carry the sheet's start time, so the logging time is a tag; runs
    # logged before that tag existed started when they were logged.
    logged = run.data.tags.get(LOGGED_MS_TAG, "")
    return int(logged) if logged.isdigit() else run.info.start_time or 0


def newest_first(runs: list[Run]) -> list[Run]:
    """Sort runs by the supersession order: logging time, then run id, newest first."""
    return sorted(runs, key=lambda run: (_logged_ms(run), run.info.run_id), reverse=True)


def active_runs(
    experiment: str | None = None,
    filter: str | None = None,
) -> list[Run]:
    """Return the active run of every logical run in `experiment`, newest first.

    Args:
        experiment: experiment name; None means MLflow's current experiment.
        filter: extra MLflow filter, e.g. ``"params.lr = '0.1'"``; combined with AND.

    Raises:
        ConfigError: unknown experiment, or a bare `status` in `filter`.
    """
    client = _client()
    experiment_id = experiment_id_for(client, experiment, create=False)
    return newest_first(search_states(client, [experiment_id], active_filter(filter)))


def runs_for(save_dir: str | os.PathLike[str], experiment: str | None = None) -> list[Run]:
    """Return every MLflow run logged for `save_dir` (any status), newest first."""
    client = _client()
    experiment_id = experiment_id_for(client, experiment, create=False)
    found = f"tags.{LOGICAL_RUN_KEY_TAG} = '{logical_run_key(save_dir)}'"
    return newest_first(search_all(client, [experiment_id], found))


def active_run_for(save_dir: str | os.PathLike[str], experiment: str | None = None) -> Run | None:
    """Return the current MLflow run of `save_dir`, or None if it was never logged.

    The current run is the newest active one. While a logger that crashed
    mid-way leaves two active runs, the newest still wins; if the user deleted
    the active run, the newest deprecated (once active) run stands in.
    """
    runs = runs_for(save_dir, experiment)
    for wanted in (ACTIVE, DEPRECATED):
        for run in runs:
            if log_state(run.data.tags) == wanted:
                return run
    return None


def migrate_status_tags(experiment: str | None = None) -> int:
    """Give runs logged up to 0.11 (state in `tags.status`) the `logical_status` tag.

    flexlock's own lookups read both names; this is for filters typed by hand.
    Returns how many runs were tagged.
    """
    client = _client()
    experiment_id = experiment_id_for(client, experiment, create=False)
    tagged = 0
    for state in (PENDING, ACTIVE, DEPRECATED, FAILED):
        found = f"tags.{LEGACY_STATUS_TAG} = '{state}'"
        for run in search_all(client, [experiment_id], found):
            tags = run.data.tags
            if LOGICAL_RUN_KEY_TAG in tags and STATUS_TAG not in tags:
                client.set_tag(run.info.run_id, STATUS_TAG, state)
                tagged += 1
    return tagged


#: MLflow's own defaults retry an unreachable server for about 4 minutes (7 retries,
#: backoff factor 2, 120 s per request). flexlock's calls use these instead, unless
#: the user set the variable: at most 2 attempts of 5 s each, about 10 s per request.
FAIL_FAST_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


class _EnvDefaults:
    """Set FAIL_FAST_ENV's unset variables while at least one flexlock call runs.

    Threads may log concurrently: the first to enter sets the defaults, the last to
    leave removes them, so no thread sees them vanish mid-request, and a variable the
    user set (before or meanwhile) is never changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._added: list[str] = []

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._added = [name for name in FAIL_FAST_ENV if name not in os.environ]
                for name in self._added:
                    os.environ[name] = FAIL_FAST_ENV[name]
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    for name in self._added:
                        if os.environ.get(name) == FAIL_FAST_ENV[name]:
                            del os.environ[name]
                    self._added = []


_env_defaults = _EnvDefaults()


def _is_unreachable(error: BaseException) -> bool:
    """Whether `error` (or what it wraps) is a refused, dropped or timed-out connection."""
    from requests.exceptions import ConnectionError, Timeout

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (ConnectionError, Timeout, TransferError)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _without_userinfo(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """Bound flexlock's MLflow requests (FAIL_FAST_ENV) and report an unreachable server.

    Raises:
        TransferError: the tracking server refused, dropped or did not answer a request;
            one line naming the URI and the variables that raise the bound.
    """
    started = time.monotonic()
    with _env_defaults.applied():
        try:
            yield
        except Exception as error:
            if isinstance(error, TransferError) or not _is_unreachable(error):
                raise
            from mlflow import get_tracking_uri

            knobs = ", ".join(
                f"{name}={os.environ.get(name, FAIL_FAST_ENV[name])}" for name in FAIL_FAST_ENV
            )
            raise TransferError(
                f"MLflow tracking server {_without_userinfo(get_tracking_uri())} is unreachable "
                f"(no answer after {time.monotonic() - started:.1f} s); start it or fix "
                f"MLFLOW_TRACKING_URI / --tracking-uri; to wait longer raise "
                f"MLFLOW_HTTP_REQUEST_TIMEOUT or MLFLOW_HTTP_REQUEST_MAX_RETRIES (now {knobs})"
            ) from error
