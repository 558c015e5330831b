"""Secrets live in environment variables: the config names the variable, never the value.

What reads a secret, what recognises one pasted where a variable's name belongs, and how a
message names a variable without ever echoing a secret. Connectors, the config, the email code
and the checks all need these, so they live in the core.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import BeforeValidator, Field

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_HIDDEN = "(a value that looks like a secret, not shown)"
PASTED_TOKEN = (
    "this looks like the token itself; put the NAME of an environment variable here "
    "(e.g. JIRA_TOKEN) and put the token in that variable"
)


def looks_like_secret(text: str) -> bool:
    """Whether `text`, found where the name of an environment variable belongs, is more
    likely a pasted token: one long word that is not shaped like a variable name (Atlassian
    API tokens carry `=` and `-`), or is, but runs 20 letters and digits without an
    underscore (Azure DevOps PATs are 52 or 84 of them; names are words joined by `_`)."""
    value = text.strip()
    if len(value) < 20 or any(char.isspace() for char in value):
        return False
    if not ENV_NAME.fullmatch(value):
        return True
    longest_word = max(len(word) for word in value.split("_"))
    return longest_word >= 20 and any(char.isdigit() for char in value)


def shown_env(name: str) -> str:
    """How to name environment variable `name` in a message: as it is, unless it looks like
    a pasted secret, which is never echoed."""
    return SECRET_HIDDEN if looks_like_secret(name) else name


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
PASTED_EMAIL = (
    "this looks like an email address; put the NAME of an environment variable here "
    "(e.g. JIRA_USER) and put the address in that variable"
)


def not_a_pasted_secret(value: object) -> object:
    """A `*_env` value that is the secret (or the login) itself is refused with a message
    that says so; the value is never part of it."""
    if isinstance(value, str) and EMAIL.fullmatch(value.strip()):
        raise ValueError(PASTED_EMAIL)
    if isinstance(value, str) and looks_like_secret(value):
        raise ValueError(PASTED_TOKEN)
    return value


EnvName = Annotated[
    str, BeforeValidator(not_a_pasted_secret), Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
"""The name of the environment variable that holds a secret; a pasted secret is refused
without being repeated."""


def read_secret(env_name: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret held by environment variable `env_name` (in `environ`, default the process
    environment); the message never shows a value."""
    value = (os.environ if environ is None else environ).get(env_name)
    if not value:
        raise LookupError(f"environment variable {shown_env(env_name)} is not set (or empty)")
    return value
