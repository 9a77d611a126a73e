"""Secrets never reach a run sheet: key words, URL passwords, command lines."""

from __future__ import annotations

import pytest

from flexlock.core._redact import REDACTED, Redactor, redact, redact_text


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "dbPassword",
        "PASSWD",
        "api_key",
        "apiKey",
        "APIKEY",
        "hf_token",
        "auth-token",
        "client_secret",
        "AWS_SECRET_ACCESS_KEY",
        "aws.access_key",
        "credentials",
        "private_key",
        "passphrase",
    ],
)
def test_secret_keys_are_redacted(key: str) -> None:
    assert {key: REDACTED} == redact({key: "s3cr3t"})


@pytest.mark.parametrize(
    "key",
    ["max_tokens", "tokenizer", "num_tokens", "sort_key", "monkey", "secretary_name", "lr"],
)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert {key: "value"} == redact({key: "value"})


def test_secret_keys_are_redacted_at_any_depth_and_in_lists() -> None:
    config = {"db": {"url": "x", "password": "p"}, "hosts": [{"token": "t"}]}
    assert {"db": {"url": "x", "password": REDACTED}, "hosts": [{"token": REDACTED}]} == redact(
        config
    )


def test_a_secret_section_is_redacted_whole() -> None:
    assert {"credentials": REDACTED} == redact({"credentials": {"user": "u", "key": "k"}})


def test_empty_and_null_secrets_stay_visible_since_they_hide_nothing() -> None:
    assert {"password": None, "token": ""} == redact({"password": None, "token": ""})


def test_url_password_is_redacted_in_any_string_value() -> None:
    config = {"remote": "https://user:tok3n@git.example.com/repo.git", "list": ["s3://a:b@h/x"]}
    assert {
        "remote": f"https://user:{REDACTED}@git.example.com/repo.git",
        "list": [f"s3://a:{REDACTED}@h/x"],
    } == redact(config)


def test_url_without_password_is_unchanged() -> None:
    assert "ssh://git@github.com/x.git" == redact_text("ssh://git@github.com/x.git")


def test_extra_patterns_add_to_the_defaults() -> None:
    assert {"wandb_entity": REDACTED, "password": REDACTED} == redact(
        {"wandb_entity": "me", "password": "p"}, ["^wandb_"]
    )


def test_redaction_can_be_turned_off() -> None:
    assert {"password": "p"} == redact({"password": "p"}, False)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["run.py", "--password", "p", "--lr", "1"],
            ["run.py", "--password", REDACTED, "--lr", "1"],
        ),
        (["run.py", "--api-key=abc"], ["run.py", f"--api-key={REDACTED}"]),
        (["run.py", "-o", "db.password=x"], ["run.py", "-o", f"db.password={REDACTED}"]),
        (["run.py", "-o", "token", "x"], ["run.py", "-o", "token", REDACTED]),
        (["run.py", "https://u:p@h/x"], ["run.py", f"https://u:{REDACTED}@h/x"]),
        (["run.py", "--max_tokens", "5"], ["run.py", "--max_tokens", "5"]),
    ],
)
def test_command_line_secrets_are_redacted(argv: list[str], expected: list[str]) -> None:
    assert expected == Redactor().argv(argv)
