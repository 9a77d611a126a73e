"""run.lock reading and writing: round trips, strict parsing, atomic writes under kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexlock.core import (
    DataRecord,
    EnvRecord,
    ErrorRecord,
    LockFileError,
    PrevRecord,
    RepoRecord,
    RunLock,
    SkippedFile,
    _lockfile,
    dump,
    dumps,
    load,
    loads,
    write_atomic,
)
from flexlock.core._lockfile import sweep_temp_files

TRICKY = [
    "no",
    "yes",
    "on",
    "0755",
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    "1e3",
    "~",
    "null",
    "",
    " lead",
    "trail ",
    "a: b",
    "- x",
    "#x",
    "é✓漢",
    "\udcff\udc80",
    "1_000",
    "0x1F",
    ".inf",
    "+1",
    "12:30",
    "True",
    "\t",
    "multi\nline",
    "'quoted'",
    '"dq"',
    "%",
    "@x",
    "!tag",
]

text = st.one_of(st.sampled_from(TRICKY), st.text())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
config_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
    ),
    max_leaves=20,
)
hashes = st.builds(lambda h: f"sha256:{h}", st.text("0123456789abcdef", min_size=1, max_size=64))
repos = st.builds(
    RepoRecord,
    root=text,
    commit=st.none() | text,
    branch=st.none() | text,
    remote=st.none() | text,
    dirty=st.booleans(),
    tree=text,
    snapshot=st.none() | text,
    changes=st.lists(text, max_size=3).map(tuple),
    skipped=st.lists(
        st.builds(SkippedFile, path=text, size=st.integers(0), hash=hashes), max_size=2
    ).map(tuple),
)
data_records = st.builds(
    DataRecord,
    hash=hashes,
    size=st.integers(0),
    files=st.none() | st.integers(0),
    mtime_ns=st.none() | st.integers(0),
)
envs = st.builds(
    EnvRecord,
    python=text,
    implementation=text,
    platform=text,
    hostname=text,
    user=text,
    cwd=text,
    argv=st.lists(text, max_size=3).map(tuple),
    packages=st.dictionaries(text, text, max_size=3),
    scheduler=st.dictionaries(text, text, max_size=2),
)


def sheets(prevs: st.SearchStrategy[dict[str, PrevRecord]]) -> st.SearchStrategy[RunLock]:
    return st.builds(
        RunLock,
        id=hashes,
        status=st.sampled_from(["running", "succeeded", "failed"]),
        created=text,
        config=st.dictionaries(text, config_values, max_size=5),
        save_dir=st.none() | text,
        finished=st.none() | text,
        error=st.none() | st.builds(ErrorRecord, type=text, message=text, traceback=text),
        code=st.dictionaries(text, repos, max_size=2),
        data=st.dictionaries(text, data_records, max_size=3),
        prevs=prevs,
        env=st.none() | envs,
    )


upstream = sheets(st.just({}))
run_locks = sheets(
    st.dictionaries(text, st.builds(PrevRecord, id=hashes, path=text, lock=upstream), max_size=2)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_locks)
def test_loads_of_dumps_returns_an_equal_sheet(lock: RunLock) -> None:
    assert lock == loads(dumps(lock))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_locks)
def test_rendering_keys_apart_gives_the_whole_document(lock: RunLock) -> None:
    # dumps renders each top-level key on its own (and keeps the text of repeated
    # ones): with either emitter, that must be the text of the whole mapping.
    data = _lockfile.to_dict(lock)
    for dumper in _lockfile._dumpers():
        options = {**_lockfile._DUMP_OPTIONS, "Dumper": dumper}
        try:
            whole = yaml.dump(data, **options)
        except UnicodeEncodeError:  # libyaml and lone surrogates: dumps uses the other one
            continue
        assert whole == "".join(yaml.dump({key: value}, **options) for key, value in data.items())
    assert dumps(lock) == dumps(lock)  # the second time from kept texts


def test_kept_section_text_is_not_reused_for_an_equal_but_different_value() -> None:
    # 1 == 1.0 == True and -0.0 == 0.0 in Python; their YAML differs.
    texts = {
        dumps(RunLock(id="sha256:0", status="running", created="now", config={"k": value}))
        for value in (1, 1.0, True, 0.0, -0.0, [1], (1,), {1: "v"}, {True: "v"}, {1.0: "v"})
    }

    assert 9 == len(texts)  # a list and a tuple are both written as a YAML list


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_config_strings_round_trip_as_strings(value: str) -> None:
    lock = RunLock(id="sha256:0", status="running", created="now", config={"key": value})
    assert {"key": value} == loads(dumps(lock)).config


@pytest.mark.parametrize("value", ["no", "0755", "2024-01-01", "1e3", "~", "on", "0o17"])
def test_ambiguous_strings_are_strings_for_plain_safe_load_too(value: str) -> None:
    lock = RunLock(id="sha256:0", status="running", created="now", config={"key": value})
    assert value == yaml.safe_load(dumps(lock))["config"]["key"]


def test_non_utf8_file_name_round_trips_through_a_file(tmp_path: Path) -> None:
    name = os.fsdecode(b"data/\xff\xfe-raw.csv")
    lock = RunLock(
        id="sha256:0",
        status="running",
        created="now",
        data={name: DataRecord(hash="sha256:1", size=3)},
    )
    dump(lock, tmp_path / "run.lock")
    assert [name] == list(load(tmp_path / "run.lock").data)


def test_load_accepts_the_run_directory(tmp_path: Path) -> None:
    lock = RunLock(id="sha256:0", status="succeeded", created="now")
    dump(lock, tmp_path / "run.lock")
    assert lock == load(tmp_path)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.lock"
    path.write_text(text)
    return path


VALID = "flexlock: 1\nid: sha256:0\nstatus: succeeded\ncreated: '2026-01-01T00:00:00Z'\n"


def test_duplicate_key_is_rejected_with_key_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "status: failed\n")
    with pytest.raises(LockFileError, match=r"run\.lock:5: .*duplicate key 'status'"):
        load(path)


def test_python_tag_is_rejected_with_line(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "config: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(LockFileError, match=r"run\.lock:5: .*python/object"):
        load(path)


def test_alias_bomb_is_rejected_at_the_first_anchor(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    path = _write(
        tmp_path, VALID + "config:\n" + "".join("  " + line + "\n" for line in bomb.splitlines())
    )
    with pytest.raises(LockFileError, match=r"run\.lock:6: .*anchors and aliases"):
        load(path)


def test_newer_schema_is_refused_with_upgrade_command(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("flexlock: 1", "flexlock: 3"))
    with pytest.raises(LockFileError, match=r"newer flexlock.*pip install --upgrade flexlock-core"):
        load(path)


def test_oversize_file_is_refused_without_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEXLOCK_MAX_LOCK_BYTES", "100")
    path = _write(tmp_path, VALID + "config: {x: '" + "y" * 200 + "'}\n")
    with pytest.raises(LockFileError, match=r"over the run\.lock size cap"):
        load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("flexlock: 1\nid: sha256:0\nstatus: succ", "malformed|required field"),
        ("- a\n- b\n", "not a run.lock"),
        ("id: sha256:0\nstatus: running\ncreated: x\n", "schema version"),
        ("flexlock: one\nid: x\n", "schema version"),
        (VALID + "config: [1]\n", "malformed"),
        (VALID.replace("id: sha256:0", "id: 12"), r"expected a string.*run\.lock\.id"),
        ("flexlock: 1\nid: x\nstatus: [unclosed\n", r"run\.lock:\d+: invalid"),
    ],
)
def test_bad_sheet_is_a_lockfile_error_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(LockFileError, match=f"{tmp_path}.*({message})"):
        load(path)


def test_missing_sheet_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match=f"{tmp_path}/run.lock: no run.lock here"):
        load(tmp_path)


def test_unknown_keys_of_a_newer_minor_revision_are_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID + "pushed: {remote: origin}\n")
    assert "sha256:0" == load(path).id


def test_unquoted_timestamp_written_by_hand_stays_a_string() -> None:
    assert "2026-01-01T00:00:00Z" == loads(VALID.replace("'", "")).created


_WRITER = """
import sys
from pathlib import Path
from flexlock.core._lockfile import write_atomic
path = Path(sys.argv[1])
big = b"x" * 200_000
i = 0
print("ready", flush=True)
while True:
    i += 1
    write_atomic(path, f"version: {i}\\n".encode() + big + b"\\nend\\n")
"""


def test_kill_9_during_repeated_writes_leaves_a_complete_file(tmp_path: Path) -> None:
    target = tmp_path / "run.lock"
    write_atomic(target, b"version: 0\n" + b"x" * 200_000 + b"\nend\n")
    for attempt in range(25):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert "ready" == process.stdout.readline().strip()
        time.sleep(0.01 * (attempt % 5))  # kill at different points of the write cycle
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        content = target.read_bytes()
        assert content.startswith(b"version: ")
        assert content.endswith(b"\nend\n")
        assert 200_000 + len(b"\nend\n") < len(content)
    # The killed writers' temp files are strays for the next run to sweep.
    sweep_temp_files(tmp_path, older_than_s=0)
    assert ["run.lock"] == sorted(p.name for p in tmp_path.iterdir())


def test_sweep_keeps_young_temp_files_of_live_writers(tmp_path: Path) -> None:
    (tmp_path / ".flexlock-tmp-run.lock.abc").write_text("partial")
    assert [] == sweep_temp_files(tmp_path, older_than_s=600)
    assert (tmp_path / ".flexlock-tmp-run.lock.abc").exists()


def test_write_atomic_leaves_no_temp_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "run.lock"
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert [] == list(tmp_path.iterdir())


@pytest.mark.timeout(300)
def test_reader_racing_a_writer_never_sees_a_partial_sheet(tmp_path: Path) -> None:
    target = tmp_path / "run.lock"
    write_atomic(target, b"version: 0\n" + b"x" * 200_000 + b"\nend\n")
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    seen: set[bytes] = set()
    try:
        assert "ready" == process.stdout.readline().strip()
        # Read until the writer has replaced the file several times, however slow
        # this machine is; every read must be a complete file.
        while len(seen) < 5 and process.poll() is None:
            content = target.read_bytes()
            assert content.endswith(b"\nend\n")
            seen.add(content.split(b"\n", 1)[0])
            time.sleep(0.001)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    assert len(seen) == 5
