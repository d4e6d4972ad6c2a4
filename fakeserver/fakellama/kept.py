"""The requests a fake keeps for tests to inspect: a ring buffer bounded in count and bytes.

A fake that kept every request forever grew without end (twenty 16 MB posts held 344 MB,
whether or not they carried the key). This buffer keeps the newest ``max_requests``
requests, drops the oldest once their bodies add up to more than ``max_bytes``, and is
not thread-safe on its own (the app holds its lock around every call).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

DEFAULT_MAX_REQUESTS = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class _Kept(Protocol):
    @property
    def raw(self) -> bytes: ...


class KeptRequests:
    """The newest requests, at most max_requests of them and max_bytes of raw body."""

    def __init__(self, max_requests: int = DEFAULT_MAX_REQUESTS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Keep at most max_requests requests (0 keeps none) and max_bytes of their bodies."""
        for name, value in (("keep_requests", max_requests), ("keep_request_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number of at least 0, not {value!r}")
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._items: deque[Any] = deque()
        self._bytes = 0
        self.dropped = 0

    def append(self, item: _Kept) -> None:
        """Keep item, dropping the oldest ones beyond either bound."""
        if self.max_requests == 0:
            self.dropped += 1
            return
        self._items.append(item)
        self._bytes += len(item.raw)
        while self._items and (len(self._items) > self.max_requests
                               or self._bytes > self.max_bytes):
            self._bytes -= len(self._items.popleft().raw)
            self.dropped += 1

    def clear(self) -> None:
        """Forget every kept request."""
        self._items.clear()
        self._bytes = 0
        self.dropped = 0

    @property
    def size_bytes(self) -> int:
        """The bytes of raw body kept now."""
        return self._bytes

    def __len__(self) -> int:
        """How many requests are kept now."""
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        """The kept requests, oldest first."""
        return iter(self._items)
