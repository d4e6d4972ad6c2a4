"""Faults: a small spec language ("status=429,retry_after=2") and the parsed plan."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

FAULT_HEADER = "X-Fake-Fault"

_FLOATS = {
    "loading": "loading",
    "retry_after": "retry_after",
    "first_token_delay": "first_token_delay",
    "tokens_per_second": "tokens_per_second",
    "stall": "stall",
}
_INTS = {"status": "status", "disconnect_after": "disconnect_after", "stall_after": "stall_after"}
_FLAGS = {"malformed_json", "malformed_sse", "close", "empty_choices"}
# The longest wait one fault may ask for: a thread sleeps that long, and time.sleep refuses
# values past about 1e9 (OverflowError); an hour is more than any test waits.
MAX_SECONDS = 3600.0


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed; the message names the bad item."""


@dataclass(frozen=True)
class Faults:
    """What to break in a reply. Zero/None/False everywhere means a normal reply."""

    loading: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    first_token_delay: float = 0.0
    tokens_per_second: float = 0.0
    disconnect_after: int | None = None
    stall: float = 0.0
    stall_after: int = 1
    malformed_json: bool = False
    malformed_sse: bool = False
    close: bool = False
    empty_choices: bool = False

    def merged(self, other: Faults) -> Faults:
        """Return these faults overridden by every non-default setting of other."""
        default = NO_FAULTS
        if other == default:
            return self
        changes = {
            f.name: getattr(other, f.name)
            for f in fields(Faults)
            if getattr(other, f.name) != getattr(default, f.name)
        }
        return replace(self, **changes)

    @property
    def any(self) -> bool:
        """True when any fault is set."""
        return self != NO_FAULTS


NO_FAULTS = Faults()


def parse_faults(spec: str) -> Faults:
    """Parse "name[=value],..." (e.g. "status=429,retry_after=2" or "close") into Faults."""
    if not spec:
        return NO_FAULTS
    values: dict[str, object] = {}
    for item in (part.strip() for part in spec.replace(";", ",").split(",")):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        try:
            if name in _FLAGS and not sep:
                values[name] = True
            elif name in _FLOATS and sep:
                values[_FLOATS[name]] = float(raw)
            elif name in _INTS and sep:
                values[_INTS[name]] = int(raw)
            else:
                raise FaultSpecError(f"unknown fault {item!r}")
        except ValueError as exc:
            if isinstance(exc, FaultSpecError):
                raise
            raise FaultSpecError(f"fault {item!r}: {raw!r} is not a number") from exc
    if values.get("status") is not None and not 400 <= int(str(values["status"])) <= 599:
        raise FaultSpecError(f"fault status={values['status']}: must be 400..599")
    for name, value in values.items():
        _check_range(name, value)
    return Faults(**values)  # type: ignore[arg-type]


def _check_range(name: str, value: object) -> None:
    """Refuse a value the fake cannot act on (it used to end in a 500 and a traceback)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise FaultSpecError(f"fault {name}={value}: must be a finite number")
    if value < 0:
        raise FaultSpecError(f"fault {name}={value}: must not be negative")
    if name in _FLOATS and value > MAX_SECONDS and name != "tokens_per_second":
        raise FaultSpecError(f"fault {name}={value}: at most {MAX_SECONDS:g} seconds")
    if name == "tokens_per_second" and 0 < value < 1 / MAX_SECONDS:
        raise FaultSpecError(f"fault {name}={value}: at least one token per "
                             f"{MAX_SECONDS:g} seconds (or 0 for no pacing)")
