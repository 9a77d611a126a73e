"""Keep secrets out of run sheets: redact secret-looking config keys and URL passwords.

A key is secret when one of its words (split at `_`, `-`, `.`, spaces and
camelCase) is a secret word (`password`, `secret`, `token`, `credential`, ...)
or two adjacent words form one (`api_key`, `access_key`, `private_key`). Whole
words keep `max_tokens` and `tokenizer` readable while `hf_token`, `dbPassword`
and `AWS_SECRET_ACCESS_KEY` are hidden. Passwords in URLs
(`https://user:pass@host`) are hidden in every string value.
"""

from __future__ import annotations

import itertools
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
    }
)

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_URL_PASSWORD = re.compile(
    r"(?P<user>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):(?P<password>[^/\s@]+)@"
)
_SECRET_FLAG = re.compile(r"--?(?P<name>[A-Za-z0-9_.-]+)(?P<equals>=)?")


def _words(key: str) -> list[str]:
    return [word.lower() for word in _WORDS.findall(key)]


def redact_text(text: str) -> str:
    """Hide the password of every `scheme://user:password@` URL in `text`."""
    if "@" not in text:  # the common case costs one scan
        return text
    return _URL_PASSWORD.sub(rf"\g<user>:{REDACTED}@", text)


@attrs.frozen
class Redactor:
    """Decide which keys are secret and hide their values.

    Args:
        words: secret words matched against the words of a key.
        patterns: extra regular expressions searched (case-insensitively) in the whole key.
        enabled: False turns every redaction off.
    """

    words: frozenset[str] = DEFAULT_SECRET_WORDS
    patterns: tuple[str, ...] = ()
    enabled: bool = True
    _compiled: tuple[re.Pattern[str], ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        compiled = tuple(re.compile(pattern, re.IGNORECASE) for pattern in self.patterns)
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
        """Return whether config key `key` names a secret."""
        if not self.enabled or not isinstance(key, str):
            return False
        words = _words(key)
        pairs = {f"{first}_{second}" for first, second in itertools.pairwise(words)}
        if self.words.intersection(words) or self.words.intersection(pairs):
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

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Redact a command line: URL passwords and the values of secret flags and overrides."""
        if not self.enabled:
            return list(argv)
        redacted: list[str] = []
        hide_next = False
        for argument in argv:
            if hide_next:
                redacted.append(REDACTED)
                hide_next = False
                continue
            flag = _SECRET_FLAG.match(argument)
            if flag and self.is_secret(flag["name"]):
                if flag["equals"]:
                    redacted.append(argument[: flag.end()] + REDACTED)
                else:
                    redacted.append(argument)
                    hide_next = True
                continue
            # `-o api_key=...` and `-o api_key VALUE` overrides of @clicfg
            key, equals, _ = argument.partition("=")
            if equals and self.is_secret(key.rsplit(".", 1)[-1]):
                redacted.append(f"{key}={REDACTED}")
            elif self.is_secret(argument.rsplit(".", 1)[-1]) and redacted[-1:] in (
                ["-o"],
                ["--override"],
            ):
                redacted.append(argument)
                hide_next = True
            else:
                redacted.append(redact_text(argument))
        return redacted


def redact(value: Any, option: bool | Iterable[str] | Redactor | None = True) -> Any:
    """Return `value` with secret-looking keys and URL passwords redacted (see `Redactor`)."""
    return Redactor.from_option(option)(value)
