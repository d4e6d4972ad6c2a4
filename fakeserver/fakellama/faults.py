"""Faults: a small spec language ("status=429,retry_after=2") and the parsed plan."""

from __future__ import annotations

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
    return Faults(**values)  # type: ignore[arg-type]
