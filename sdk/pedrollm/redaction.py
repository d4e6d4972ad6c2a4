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

# Keys whose values are secrets wherever they appear in a config file: api keys,
# passwords, tokens, credentials, private keys, auth and cookie headers, personal
# access tokens (GITHUB_PAT, hf_pat).
_SECRET_KEY = re.compile(
    r"(api_?key|password|passw|passwd|pwd|secret|token|credential|private_?key|"
    r"auth|cookie|session|(^|[_-])pat$)",
    re.IGNORECASE,
)
# A value that carries its own credential: "Bearer abc", "Basic dXNlcg==", "Token x".
_CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|token|digest|apikey)\s+\S", re.IGNORECASE)
# Header names whose values are never secrets; every other header value is hidden.
_PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "content-type",
                            "user-agent", "connection", "cache-control"})


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
    """Copy JSON data with every secret replaced by ``***`` (see :func:`redact_with_paths`)."""
    return redact_with_paths(value)[0]


def redact_with_paths(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """Copy JSON data with its secrets hidden; also return where each one was.

    A value is hidden when its key looks secret (``api_key``, ``password``,
    ``Authorization``, ``credentials``, ``GITHUB_PAT``...), when it is a header in a
    ``headers`` map (all but a few plain ones such as ``Content-Type``), or when the
    value itself carries a credential (``Bearer ...``); a URL keeps everything but the
    password of its user-info.
    """
    found: list[str] = []

    def walk(item: Any, where: str, in_headers: bool) -> Any:
        if isinstance(item, Mapping):
            out = {}
            for k, v in item.items():
                sub = f"{where}.{k}" if where else str(k)
                header_secret = in_headers and str(k).lower() not in _PLAIN_HEADERS
                if v is not None and (is_secret_key(k) or header_secret) and not isinstance(
                        v, Mapping | list):
                    out[k] = REDACTED
                    found.append(sub)
                else:
                    out[k] = walk(v, sub, isinstance(k, str) and k.lower() == "headers")
            return out
        if isinstance(item, list):
            return [walk(v, f"{where}[{i}]", False) for i, v in enumerate(item)]
        if isinstance(item, str):
            if _CREDENTIAL_VALUE.match(item):
                found.append(where)
                return f"{item.split()[0]} {REDACTED}"
            shown = redact_url(item) if "@" in item and "://" in item else item
            if shown != item:
                found.append(where)
            return shown
        return item

    return walk(value, path, False), found


__all__ = ["REDACTED", "is_secret_key", "redact_tree", "redact_url", "redact_with_paths"]
