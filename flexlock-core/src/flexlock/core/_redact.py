"""Keep secrets out of everything flexlock writes or prints: one redaction policy.

A key is secret when one of its words (split at `_`, `-`, `.`, spaces and
camelCase) is a secret word (`password`, `secret`, `token`, `auth`, `cookie`, ...),
two adjacent words form one (`api_key`, `access_key`, `private_key`), or the
whole key is `key`. Whole words keep `max_tokens` and `tokenizer` readable while
`hf_token`, `dbPassword`, `ssh_pass`, `headers.Authorization` and
`AWS_SECRET_ACCESS_KEY` are hidden. In every string, `redact_text` hides secret
value shapes: URL userinfo (`https://user:pass@host`, passwords holding `/` or
`@`, token-like user names), `user:pass@host` without a scheme, query-string
credentials (`?access_token=`, `sig=`, `X-Amz-Signature=`), `Bearer`/`Basic`
header values and `Password=...;` connection strings. `Redactor.scrub` also
hides the secret values a config holds wherever they appear (error messages,
tracebacks). Users add key patterns with `runlock(redact=[...])` or the
`FLEXLOCK_REDACT` environment variable (regexes separated by `,`).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = ["DEFAULT_SECRET_WORDS", "REDACTED", "Redactor", "redact", "redact_text"]

#: What a redacted value is replaced with.
REDACTED = "<redacted>"

#: Words that make a key secret (compared in lower case, whole words only).
DEFAULT_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pass",
        "pwd",
        "secret",
        "secrets",
        "token",
        "credential",
        "credentials",
        "apikey",
        "api_key",
        "access_key",
        "private_key",
        "auth_token",
        "auth",
        "authorization",
        "cookie",
        "cookies",
        "bearer",
        "signature",
        "sig",
        "session_id",
        "sessionid",
    }
)

#: Environment variable holding extra key regexes, separated by `,`.
REDACT_ENV = "FLEXLOCK_REDACT"
#: Bare keys that are secret only on their own (`key`, not `key_frames`).
_BARE_SECRET_KEYS = frozenset({"key"})
#: Short command-line flags taken as secrets (`-p X`, `-t X`, `-k X`).
_SHORT_SECRET_FLAGS = frozenset({"p", "t", "k"})
#: Known prefixes of tokens used as URL user names (GitHub, GitLab, Hugging Face, Slack).
_TOKEN_PREFIXES = ("ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "glpat-", "hf_", "xox")

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
# scheme://userinfo@host: greedy within one non-blank run, so `/` and `@` in passwords go too
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^\s\"'<>]*)@")
# `name=value` in query strings (`?access_token=`, `&sig=`) and connection strings (`Pwd=x;`)
_ASSIGNMENT = re.compile(
    r"(?P<head>(?<![\w.-])(?P<name>[A-Za-z][A-Za-z0-9_.-]*)\s*=\s*)(?P<value>[^;\s,&\"']+)"
)
# user:pass@host with no scheme (not `git@host:path`, which has no `:` before the `@`)
_BARE_USERINFO = re.compile(
    r"(?<![\w/:.@%+-])(?P<user>[A-Za-z0-9._%+-]+):(?P<password>[^\s@/\"']+)@(?=[A-Za-z0-9])"
)
_HEADER = re.compile(
    r"(?P<head>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})"
    r"|(?P<bhead>\bBasic\s+)(?P<bvalue>(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{6,}={0,2})",
    re.IGNORECASE,
)
_SECRET_FLAG = re.compile(r"--?(?P<name>[A-Za-z][A-Za-z0-9_.-]*)")


def _words(key: str) -> list[str]:
    return [word.lower() for word in _WORDS.findall(key)]


def _key_is_secret(key: str, words: frozenset[str]) -> bool:
    parts = _words(key)
    pairs = {f"{first}_{second}" for first, second in itertools.pairwise(parts)}
    if words.intersection(parts) or words.intersection(pairs):
        return True
    return key.strip().lower() in _BARE_SECRET_KEYS


def _looks_like_token(user: str) -> bool:
    return len(user) >= 20 or user.lower().startswith(_TOKEN_PREFIXES)


def _url_userinfo(match: re.Match[str]) -> str:
    info = match["info"]
    user, colon, _ = info.partition(":")
    if colon and "/" not in user:
        return f"{match['scheme']}{user}:{REDACTED}@"
    if not colon and "/" not in info and _looks_like_token(info):
        return f"{match['scheme']}{REDACTED}@"
    return match[0]  # `git@host`, or an `@` in the path (`https://host/pkg@1.0`)


def _secret_assignment(match: re.Match[str]) -> str:
    if _key_is_secret(match["name"], DEFAULT_SECRET_WORDS):
        return match["head"] + REDACTED
    return match[0]


def redact_text(text: str) -> str:
    """Hide secret value shapes in `text`: URL userinfo, query credentials, headers, ..."""
    if "@" in text:
        text = _URL_USERINFO.sub(_url_userinfo, text)
        text = _BARE_USERINFO.sub(rf"\g<user>:{REDACTED}@", text)
    if "=" in text:
        text = _ASSIGNMENT.sub(_secret_assignment, text)
    if " " in text or "\t" in text:
        text = _HEADER.sub(
            lambda m: (m["head"] or m["bhead"]) + REDACTED,
            text,
        )
    return text


def _env_patterns() -> tuple[str, ...]:
    raw = os.environ.get(REDACT_ENV, "")
    return tuple(pattern.strip() for pattern in raw.split(",") if pattern.strip())


@attrs.frozen
class Redactor:
    """Decide which keys are secret and hide their values.

    Args:
        words: secret words matched against the words of a key.
        patterns: extra regular expressions searched (case-insensitively) in the whole key;
            those in `$FLEXLOCK_REDACT` (separated by `,`) are added.
        enabled: False turns every redaction off.
    """

    words: frozenset[str] = DEFAULT_SECRET_WORDS
    patterns: tuple[str, ...] = ()
    enabled: bool = True
    _compiled: tuple[re.Pattern[str], ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        every = (*self.patterns, *_env_patterns())
        compiled = tuple(re.compile(pattern, re.IGNORECASE) for pattern in every)
        object.__setattr__(self, "_compiled", compiled)

    @classmethod
    def from_option(cls, option: bool | Iterable[str] | Redactor | None) -> Redactor:
        """Build a redactor from `runlock(redact=...)`: True default, False off, or patterns."""
        if isinstance(option, Redactor):
            return option
        if option is None or option is True:
            return cls()
        if option is False:
            return cls(enabled=False)
        if isinstance(option, str):
            return cls(patterns=(option,))
        return cls(patterns=tuple(option))

    def is_secret(self, key: object) -> bool:
        """Return whether config key `key` (or dotted path `a.b.key`) names a secret."""
        if not self.enabled or not isinstance(key, str):
            return False
        if any(_key_is_secret(part, self.words) for part in key.split(".")):
            return True
        return any(pattern.search(key) for pattern in self._compiled)

    def __call__(self, value: Any) -> Any:
        """Return a copy of `value` (plain data) with secrets replaced by `REDACTED`."""
        if not self.enabled:
            return value
        if isinstance(value, Mapping):
            return {
                key: REDACTED if self.is_secret(key) and item not in (None, "") else self(item)
                for key, item in value.items()
            }
        if isinstance(value, str):
            return redact_text(value)
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        return value

    def secret_values(self, value: Any) -> set[str]:
        """Return the secret strings `value` holds: values of secret keys, URL passwords."""
        found: set[str] = set()
        if not self.enabled:
            return found
        if isinstance(value, Mapping):
            for key, item in value.items():
                if self.is_secret(key) and item not in (None, ""):
                    found.update(_leaves(item))
                else:
                    found.update(self.secret_values(item))
        elif isinstance(value, list | tuple):
            for item in value:
                found.update(self.secret_values(item))
        elif isinstance(value, str) and redact_text(value) != value:
            found.add(value)
            found.update(_hidden_parts(value))
        return {text for text in found if len(text) >= 3}

    def scrub(self, text: str, secrets: Iterable[str] = ()) -> str:
        """Hide value shapes and each of `secrets` (longest first) wherever they appear."""
        if not self.enabled:
            return text
        for secret in sorted(set(secrets), key=len, reverse=True):
            text = text.replace(secret, REDACTED)
            if repr(secret)[1:-1] != secret:  # as a traceback's repr shows it
                text = text.replace(repr(secret)[1:-1], REDACTED)
        return redact_text(text)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Redact a command line: value shapes and the values of secret flags and overrides."""
        if not self.enabled:
            return list(argv)
        redacted: list[str] = []
        hide_next = False
        for argument in argv:
            flag = _SECRET_FLAG.fullmatch(argument.split(None, 1)[0]) if argument.strip() else None
            if hide_next:
                hide_next = False
                if not flag:  # a flag after a flag is not its value: `--token --password S`
                    redacted.append(REDACTED)
                    continue
            if flag and self._secret_flag(flag["name"], argument):
                if " " in argument.strip():  # "--token X" as one argument
                    redacted.append(f"{argument.split(None, 1)[0]} {REDACTED}")
                else:
                    redacted.append(argument)
                    hide_next = True
                continue
            if argument.startswith("-") and "=" in argument:
                name, _, _ = argument.partition("=")
                if self._secret_flag(name.lstrip("-"), name):
                    redacted.append(f"{name}={REDACTED}")
                    continue
            # `-o api_key=...` and `-o api_key VALUE` overrides of @clicfg, `--sweep token=a,b`
            key, equals, _ = argument.partition("=")
            if equals and self.is_secret(key.strip()):
                redacted.append(f"{key}={REDACTED}")
            elif self.is_secret(argument) and redacted[-1:] in (["-o"], ["--override"]):
                redacted.append(argument)
                hide_next = True
            else:
                redacted.append(redact_text(argument))
        return redacted

    def _secret_flag(self, name: str, argument: str) -> bool:
        if argument.startswith("--"):
            return self.is_secret(name)
        return name.lower() in _SHORT_SECRET_FLAGS or (len(name) > 1 and self.is_secret(name))


def _leaves(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


def _hidden_parts(text: str) -> list[str]:
    """The substrings `redact_text` would hide, so they can be hidden elsewhere too."""
    parts: list[str] = []
    for match in _URL_USERINFO.finditer(text):
        user, colon, password = match["info"].partition(":")
        if colon and "/" not in user:
            parts.append(password)
        elif not colon and _looks_like_token(user):
            parts.append(user)
    parts += [m["password"] for m in _BARE_USERINFO.finditer(text)]
    parts += [
        m["value"]
        for m in _ASSIGNMENT.finditer(text)
        if _key_is_secret(m["name"], DEFAULT_SECRET_WORDS)
    ]
    parts += [m["value"] or m["bvalue"] for m in _HEADER.finditer(text)]
    return parts


def redact(value: Any, option: bool | Iterable[str] | Redactor | None = True) -> Any:
    """Return `value` with secret-looking keys and value shapes redacted (see `Redactor`)."""
    return Redactor.from_option(option)(value)
