"""Lineage without repetition: a sheet holds each distinct upstream run once (schema 2).

Schema 1 sheets (written by flexlock before schema 2, kept as a real fixture under
data/schema1_pipeline) are still read, and written back as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import pytest
import yaml

from flexlock.core import (
    SCHEMA_VERSION,
    EnvRecord,
    LockFileError,
    PrevRecord,
    RunLock,
    compute_id,
    dump,
    dumps,
    lineage,
    load,
    loads,
    runlock,
)

FIXTURE = Path(__file__).parent / "data" / "schema1_pipeline"
PACKAGES = {f"package-{index}": f"1.{index}.0" for index in range(40)}


def sheet(
    name: str,
    upstream: tuple[RunLock, ...] = (),
    *,
    packages: dict[str, str] | None = None,
    created: str = "2026-12-01T10:00:00Z",
) -> RunLock:
    """Return a succeeded sheet of run `name` that consumed `upstream`."""
    prevs = {
        f"results/{prev.save_dir}": PrevRecord(prev.id, f"results/{prev.save_dir}/run.lock", prev)
        for prev in upstream
    }
    config = {"save_dir": f"results/{name}", "name": name}
    return RunLock(
        id=compute_id(config, {}, {}, {key: prev.id for key, prev in prevs.items()}),
        status="succeeded",
        created=created,
        config=config,
        save_dir=name,
        prevs=prevs,
        env=EnvRecord("3.11.7", "cpython", "Linux", "node", "me", "/p", packages=dict(PACKAGES))
        if packages is None
        else EnvRecord("3.11.7", "cpython", "Linux", "node", "me", "/p", packages=packages),
    )


def fan_in(width: int) -> tuple[RunLock, RunLock]:
    """Return (evaluate, prepare): `width` train runs that share one prepare run."""
    prepare = sheet("prepare")
    trains = tuple(sheet(f"train_{index}", (prepare,)) for index in range(width))
    return sheet("evaluate", trains), prepare


def lattice(depth: int) -> RunLock:
    """Return the last run of `depth` levels of two runs, each reading both of the level below."""
    level = (sheet("base"),)
    for number in range(depth):
        level = tuple(sheet(f"level{number}_{side}", level) for side in "ab")
    return sheet("top", level)


def test_a_run_reached_by_many_paths_is_written_once() -> None:
    evaluate, _ = fan_in(50)
    raw = yaml.safe_load(dumps(evaluate))
    assert (len(raw["upstreams"]), dumps(evaluate).count("name: prepare")) == (51, 1)


def test_sheet_size_grows_with_distinct_runs_not_with_paths() -> None:
    # 2**16 paths lead from the top to the base run of a 16-level lattice, 2**8 of an
    # 8-level one: the 8 levels more add 16 runs, as many as the 4 levels more of 8 do twice.
    four, eight, sixteen = (len(dumps(lattice(depth))) for depth in (4, 8, 16))
    assert sixteen - eight == pytest.approx(2 * (eight - four), rel=0.05)


def test_package_lists_equal_to_the_runs_own_are_written_once() -> None:
    evaluate, _ = fan_in(20)
    raw = yaml.safe_load(dumps(evaluate))
    assert {entry["env"]["packages"] for entry in raw["upstreams"].values()} == {evaluate.id}


def test_an_ancestors_different_package_list_is_written_once_and_named_by_the_others() -> None:
    prepare = sheet("prepare", packages={"old": "0.1"})
    other = sheet("other", packages={"old": "0.1"})
    evaluate = sheet("evaluate", (sheet("train", (prepare,)), other))
    raw = yaml.safe_load(dumps(evaluate))
    listed = {key: entry["env"]["packages"] for key, entry in raw["upstreams"].items()}
    assert listed == {
        evaluate.prevs["results/train"].id: evaluate.id,
        other.id: {"old": "0.1"},
        prepare.id: other.id,
    }


def test_load_returns_the_sheet_with_each_shared_upstream_as_one_object() -> None:
    evaluate, _ = fan_in(3)
    loaded = loads(dumps(evaluate))
    shared = {id(prev.lock.prevs["results/prepare"].lock) for prev in loaded.prevs.values()}
    assert (loaded, len(shared)) == (evaluate, 1)


def test_two_sheets_of_one_id_are_both_kept() -> None:
    # A run re-run with the same inputs has the same id and a new sheet; train_0 read
    # the first sheet, train_1 the second: each keeps the sheet it read.
    first, second = sheet("prepare"), sheet("prepare", created="2026-12-02T10:00:00Z")
    evaluate = sheet("evaluate", (sheet("train_0", (first,)), sheet("train_1", (second,))))
    text = dumps(evaluate)
    keys = [key for key in yaml.safe_load(text)["upstreams"] if key.startswith(first.id)]
    assert (loads(text), keys) == (evaluate, [first.id, f"{first.id}#2"])


def test_a_lineage_deeper_than_the_recursion_limit_is_written_read_and_drawn() -> None:
    chain = sheet("run_0")
    for number in range(1, 1500):
        chain = sheet(f"run_{number}", (chain,))
    node = lineage(loads(dumps(chain)))
    names = []
    while node.children:
        node = node.children[0]
        names.append(node.lock.save_dir)
    assert names == [f"run_{number}" for number in range(1498, -1, -1)]


def test_new_sheets_are_written_with_the_new_schema_version() -> None:
    evaluate, _ = fan_in(1)
    assert (SCHEMA_VERSION, yaml.safe_load(dumps(evaluate))["flexlock"]) == (2, 2)


def _mutated(edit: str) -> str:
    """Return a small schema-2 sheet edited as `edit` says."""
    evaluate, prepare = fan_in(1)
    raw = yaml.safe_load(dumps(evaluate))
    train = next(iter(raw["prevs"].values()))["id"]
    table = raw["upstreams"]
    if edit == "missing":
        del table[prepare.id]
    elif edit == "cycle":
        table[prepare.id]["prevs"] = {"back": {"id": train, "path": "x"}}
    elif edit == "wrong key":
        table[prepare.id]["id"] = train
    elif edit == "packages":
        table[train]["env"]["packages"] = "sha256:nowhere"
    elif edit == "reference":
        raw["prevs"][next(iter(raw["prevs"]))]["id"] = 5
    elif edit == "field":
        table[prepare.id]["status"] = 5
    return yaml.safe_dump(raw)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            "missing",
            r"upstreams\['sha256:\w+'\]\.prevs\['results/prepare'\]: run sha256:\w+ is "
            "not in upstreams",
        ),
        ("cycle", r"prevs\['back'\]: upstream cycle"),
        ("wrong key", r"upstreams\['sha256:\w+'\]: holds the sheet of run sha256:"),
        ("packages", r"env\.packages: 'sha256:nowhere' names no run of this sheet"),
        ("reference", r"run\.lock\.prevs\['results/train_0'\]\.id: expected a string, got 5"),
        ("field", r"upstreams\['sha256:\w+'\]\.status"),
    ],
)
def test_a_malformed_upstream_table_is_refused_naming_the_entry(edit: str, message: str) -> None:
    with pytest.raises(LockFileError, match=rf"<t>: malformed run\.lock: .*{message}"):
        loads(_mutated(edit), source="<t>")


# --- schema 1 ---------------------------------------------------------------------


@pytest.fixture
def old_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of a prepare -> (train_a, train_b) -> evaluate pipeline written by schema 1."""
    shutil.copytree(FIXTURE, tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    return tmp_path / "project"


def test_a_schema1_sheet_is_read_with_its_whole_lineage(old_pipeline: Path) -> None:
    evaluate = load(old_pipeline / "results/evaluate")
    prepares = [prev.lock.prevs["results/prepare"].lock for prev in evaluate.prevs.values()]
    assert (evaluate.flexlock, prepares[0], len(prepares)) == (
        1,
        load(old_pipeline / "results/prepare"),
        2,
    )


def test_a_schema1_sheet_is_written_back_as_it_was(old_pipeline: Path) -> None:
    path = old_pipeline / "results/evaluate/run.lock"
    assert dumps(load(path)) == path.read_text(encoding="utf-8")


def test_a_run_reading_a_schema1_upstream_writes_each_run_once(old_pipeline: Path) -> None:
    with runlock({"save_dir": "results/report"}, repos=[], prevs=["results/evaluate"]):
        pass
    text = (old_pipeline / "results/report/run.lock").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)["upstreams"]
    saved = sorted(entry["save_dir"] for entry in entries.values())
    assert (saved, load(old_pipeline / "results/report").prevs["results/evaluate"].lock) == (
        ["results/evaluate", "results/prepare", "results/train_a", "results/train_b"],
        load(old_pipeline / "results/evaluate"),
    )


def test_schema1_and_schema2_sheets_of_one_run_read_equal(
    old_pipeline: Path, tmp_path: Path
) -> None:
    old = load(old_pipeline / "results/evaluate")
    dump(attrs.evolve(old, flexlock=2), tmp_path / "run.lock")
    assert attrs.evolve(load(tmp_path / "run.lock"), flexlock=1) == old
