"""Injected faults, for testing how clients and the pipeline cope with a misbehaving engine.

A fault is a ``;``-separated list of ``key=value`` pairs, from the ``X-Sim-Fault`` request
header or from ``TANDEM_ENGINE_SIM_FAULTS`` (every request):

- ``status=N``: answer with HTTP status N and TGI's error body for it (429 overloaded,
  503 unavailable, 424 generation error, 422 validation, 500 incomplete generation ...);
- ``stall=S``: wait S seconds before the first token (with ``after=N``: after N tokens);
- ``slow=S``: wait S seconds before every token (a slow stream);
- ``disconnect=N``: drop the connection after N tokens, without a final event;
- ``times=N`` with ``key=K``: apply the fault only to the first N requests that carry key K
  (so a client's retry of the same request then succeeds); ``rate=P``: apply it to a share P
  of requests.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from shared.errors import ValidationFailed

FAULT_HEADER = "x-sim-fault"

# TGI's error_type and message for each status it answers with.
ERROR_TYPES = {
    422: ("validation", "Input validation error"),
    424: ("generation", "Request failed during generation"),
    429: ("overloaded", "Model is overloaded"),
    500: ("incomplete_generation", "Incomplete generation"),
    503: ("unhealthy", "unhealthy"),
}


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    stall_s: float = 0.0
    stall_after: int = 0
    slow_s: float = 0.0
    disconnect_after: int | None = None
    times: int | None = None
    key: str = ""
    rate: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> Fault | None:
        if not spec.strip():
            return None
        values: dict[str, str] = {}
        for part in spec.replace(",", ";").split(";"):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise ValidationFailed(f"fault {part!r} is not key=value", field="X-Sim-Fault")
            values[name.strip().lower()] = value.strip()
        try:
            return cls(
                status=int(values["status"]) if "status" in values else None,
                stall_s=float(values.get("stall", 0)),
                stall_after=int(values.get("after", 0)),
                slow_s=float(values.get("slow", 0)),
                disconnect_after=int(values["disconnect"]) if "disconnect" in values else None,
                times=int(values["times"]) if "times" in values else None,
                key=values.get("key", ""),
                rate=float(values.get("rate", 1.0)),
            )
        except ValueError as error:
            raise ValidationFailed(f"bad fault {spec!r}: {error}", field="X-Sim-Fault") from error


class FaultInjector:
    """Decides, per request, whether its fault applies (``times`` and ``rate`` are stateful)."""

    def __init__(self, default: str = "", *, from_headers: bool, seed: int = 0) -> None:
        self.default = Fault.parse(default)
        self.from_headers = from_headers
        self._counts: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def for_request(self, headers: dict[str, str]) -> Fault | None:
        fault = self.default
        if self.from_headers and (spec := headers.get(FAULT_HEADER)):
            fault = Fault.parse(spec)
        if fault is None:
            return None
        with self._lock:
            if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                return None
            if fault.times is not None:
                seen = self._counts.get(fault.key, 0)
                self._counts[fault.key] = seen + 1
                if seen >= fault.times:
                    return None
        return fault
