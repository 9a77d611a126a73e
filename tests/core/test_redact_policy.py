"""Issue 20's secret findings: key names, value shapes, argv, errors; and a property test."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexlock.core import load, runlock
from flexlock.core._redact import REDACTED, Redactor, redact, redact_text

SECRET = "S3cr3tValue42"


@pytest.mark.parametrize(
    "config",
    [
        {"headers": {"Authorization": f"Bearer {SECRET}"}},
        {"auth": SECRET},
        {"cookie": SECRET},
        {"ssh_pass": SECRET},
        {"key": SECRET},
        {"refresh-token": SECRET},
        {"X-Amz-Signature": SECRET},
    ],
)
def test_secret_key_names_found_in_the_probe_are_redacted(config: dict[str, object]) -> None:
    assert SECRET not in json.dumps(redact(config))


@pytest.mark.parametrize("key", ["max_tokens", "tokenizer", "author", "key_frames", "monkey"])
def test_ordinary_keys_stay_readable(key: str) -> None:
    assert {key: "v"} == redact({key: "v"})


@pytest.mark.parametrize(
    "text",
    [
        f"https://u:a/{SECRET}@h/x",  # `/` in the password
        f"https://u:p@{SECRET}@h/x",  # `@` in the password
        f"https://ghp_{SECRET}@github.com/o/r.git",  # token as user name
        f"https://{SECRET}{SECRET}@github.com/o/r.git",
        f"https://h/x?access_token={SECRET}&sig=1",
        f"https://h/x?a=1&sig={SECRET}",
        f"https://b.s3.amazonaws.com/k?X-Amz-Signature={SECRET}&X-Amz-Date=1",
        f"me:{SECRET}@db.example.org:5432/runs",  # no scheme
        f"Server=db;User Id=me;Password={SECRET};",
        f"Authorization: Bearer {SECRET}",
        "Authorization: Basic dXNlcjpTM2NyM3RWYWx1ZTQy",
    ],
)
def test_secret_value_shapes_are_redacted(text: str) -> None:
    hidden = redact_text(text)
    assert SECRET not in hidden
    assert "dXNlcjpTM2NyM3RWYWx1ZTQy" not in hidden
    assert REDACTED in hidden


@pytest.mark.parametrize(
    "text",
    ["ssh://git@github.com/x.git", "git@github.com:o/r.git", "lr=0.1", "https://h/pkg@1.0"],
)
def test_values_without_secrets_are_unchanged(text: str) -> None:
    assert text == redact_text(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["x.py", "--refresh-token", "--password", SECRET],
        ["x.py", "-t", SECRET],
        ["x.py", "-p", SECRET],
        ["x.py", "--pass", SECRET],
        ["x.py", "--auth", SECRET],
        ["x.py", "--key", SECRET],
        ["x.py", f"--token {SECRET}"],
        ["x.py", f"--token={SECRET}"],
        ["x.py", "--sweep", f"token={SECRET},other"],
        ["x.py", "-o", f"headers.Authorization=Bearer {SECRET}"],
    ],
)
def test_secret_command_line_values_are_redacted(argv: list[str]) -> None:
    assert SECRET not in " ".join(Redactor().argv(argv))


def test_a_failed_runs_error_and_traceback_hide_the_configs_secret_values(tmp_path: Path) -> None:
    config = {"save_dir": str(tmp_path / "run"), "api_token": SECRET, "n": 1}
    with pytest.raises(RuntimeError), runlock(config, repos=None):
        raise RuntimeError(f"login refused for {SECRET!r} and {config}")
    sheet = load(tmp_path / "run" / "run.lock")
    assert sheet.error is not None
    assert SECRET not in sheet.error.message
    assert SECRET not in sheet.error.traceback
    assert SECRET not in (tmp_path / "run" / "run.lock").read_text()


def test_extra_key_patterns_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLOCK_REDACT", "^wandb_, ^hub$")
    assert {"wandb_entity": REDACTED, "hub": REDACTED, "n": 1} == redact(
        {"wandb_entity": "e", "hub": "h", "n": 1}
    )


# -- property test -------------------------------------------------------------------------

_secret = st.text(string.ascii_letters + string.digits, min_size=12, max_size=24).map(
    lambda text: f"Zq{text}"  # a prefix no key word or flag contains
)
_secret_key = st.sampled_from(
    ["password", "api_key", "hf_token", "Authorization", "cookie", "ssh_pass", "key", "secret"]
)
_plain_key = st.sampled_from(["lr", "name", "layers", "epochs"])


@st.composite
def _url(draw: st.DrawFn, secret: str) -> str:
    scheme = draw(st.sampled_from(["https", "postgres", "redis", "s3"]))
    shape = draw(st.integers(0, 5))
    return [
        f"{scheme}://user:{secret}@host/db",
        f"{scheme}://user:a/{secret}@host",
        f"{scheme}://user:{secret}@x@host",
        f"{scheme}://host/p?access_token={secret}&n=1",
        f"user:{secret}@host:5432",
        f"Password={secret};Host=h",
    ][shape]


@st.composite
def _config(draw: st.DrawFn, secret: str) -> dict[str, object]:
    inner: dict[str, object] = {draw(_plain_key): 1}
    if draw(st.booleans()):
        inner[draw(_secret_key)] = secret
    else:
        inner["url"] = draw(_url(secret))
    depth = draw(st.integers(0, 3))
    for _ in range(depth):
        inner = {draw(st.sampled_from(["db", "headers", "svc"])): inner, "n": depth}
    return inner


@st.composite
def _argv(draw: st.DrawFn, secret: str) -> list[str]:
    flag = draw(
        st.sampled_from(["--password", "--refresh-token", "-p", "-t", "--auth", "--key", "--pass"])
    )
    shape = draw(st.integers(0, 4))
    return [
        ["x.py", flag, secret],
        ["x.py", f"{flag}={secret}"] if flag.startswith("--") else ["x.py", flag, secret],
        ["x.py", f"{flag} {secret}"],
        ["x.py", "-o", f"db.password={secret}"],
        ["x.py", draw(_url(secret))],
    ][shape]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_generated_secret_reaches_a_sheet_history_or_argv(
    tmp_path: Path, data: st.DataObject
) -> None:
    secret = data.draw(_secret)
    config = data.draw(_config(secret))
    argv = data.draw(_argv(secret))
    assert secret not in json.dumps(redact(config)), config
    assert secret not in " ".join(Redactor().argv(argv)), argv
    save_dir = tmp_path / f"run-{abs(hash((secret, json.dumps(config))))}"
    with pytest.raises(ValueError), runlock({**config, "save_dir": str(save_dir)}, repos=None):
        raise ValueError(f"bad {config!r}")  # argv secrets are not config values
    for path in save_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
