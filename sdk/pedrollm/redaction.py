"""Hiding secrets in what pedrollm shows: URLs with passwords, secret-looking keys.

Kept apart from the config so that the client, the backends and the config can all
use it without importing one another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: What a hidden secret is shown as.
REDACTED = "***"

# Keys whose values are secrets wherever they appear in a config file.
_SECRET_KEY = re.compile(r"(api_?key|password|passwd|secret|token)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Replace the password of a URL's user-info with ``***``; other URLs unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:{REDACTED}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def is_secret_key(key: object) -> bool:
    """True for a mapping key whose value is a secret (password, token, api key...)."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def redact_tree(value: Any) -> Any:
    """Copy JSON data with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_secret_key(k) and v is not None else redact_tree(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    return value


__all__ = ["REDACTED", "is_secret_key", "redact_tree", "redact_url"]
