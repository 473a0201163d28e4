"""Admission control: bounded requests and work units in flight, shared fairly between callers.

A request is admitted with a slot (at most `max_inflight` run at once) and its cost in work
units (gateway/cost.py; at most `max_units` in flight). Beyond either the gateway says
RESOURCE_EXHAUSTED at once with a "retry-after-ms" hint, or lets the request wait in a bounded
queue (`max_queued`, at most `queue_timeout_ms` and never past its own deadline), instead of
queueing without bound: under overload, latency stays bounded and callers back off.

Fairness: while other callers are active, one caller may hold at most `caller_share` of the
slots and of the units, so one caller's burst can never take every slot or every unit. A caller
is active while it has requests in flight or waiting, and for `caller_idle_s` after its last
one ended (a caller that sends one request at a time is between requests most of the time).
A caller that holds nothing may always take one request that fits the free capacity, so a
request larger than a share still runs. Alone, a caller may use everything. The caller is
the authenticated caller name, else the peer's IP address (gateway/server.py: all the
connections of one host are one caller; behind a proxy, turn on caller tokens to tell callers
apart).

The per-request maxima (`max_request_units` for all of a request's work, `max_request_text_units`
for its text, which one text service scores) are checked at admission and again when the
split charges what only it knows (Ticket.charge): over either, RESOURCE_EXHAUSTED naming it.
Units charged after admission are never waited for (the request already runs): they count
against the budget from then on, so new requests wait for them to be paid back.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

from gateway import metrics
from gateway.errors import Overloaded, RequestTooCostly

MAX_REQUEST_UNITS_ENV = "MODGATE_GATEWAY_MAX_REQUEST_UNITS"
MAX_REQUEST_TEXT_UNITS_ENV = "MODGATE_GATEWAY_MAX_REQUEST_TEXT_UNITS"


@dataclass
class Ticket:
    """One admitted request's hold on the gateway: a slot and its units."""

    caller: str
    units: float
    admission: Admission
    text_units: float = 0.0
    waited_s: float = 0.0
    released: bool = False

    def charge(self, units: float, text_units: float, what: str) -> None:
        """Add (or, negative, give back) units known only now, `text_units` of them text;
        RequestTooCostly over a per-request maximum (`what` describes the request's cost)."""
        self.admission.charge(self, units, text_units, what)


@dataclass
class _Caller:
    slots: int = 0
    units: float = 0.0
    waiting: int = 0
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Refusal:
    reason: str  # the modgate_gateway_rejected label
    message: str
    limit: str  # the setting that was reached
    value: float
    maximum: float


@dataclass
class _Waiter:
    caller: str
    units: float
    future: asyncio.Future[None]


class Admission:
    def __init__(
        self,
        *,
        max_inflight: int,
        max_queued: int = 0,
        queue_timeout_ms: int = 1000,
        retry_after_ms: int = 250,
        max_units: float = math.inf,
        max_request_units: float = math.inf,
        max_request_text_units: float = math.inf,
        caller_share: float = 1.0,
        caller_idle_s: float = 10.0,
    ) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be >= 1, got {max_inflight}")
        if max_request_units > max_units:
            raise ValueError(
                f"the per-request maximum ({max_request_units} units) must not exceed the budget in "
                f"flight ({max_units} units): such a request could never be admitted"
            )
        if not 0 < caller_share <= 1:
            raise ValueError(f"caller_share must be in (0, 1], got {caller_share}")
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_ms / 1000.0
        self.retry_after_ms = retry_after_ms
        self.max_units = max_units
        self.max_request_units = max_request_units
        self.max_request_text_units = max_request_text_units
        self.caller_share = caller_share
        self.caller_idle_s = caller_idle_s
        self._inflight = 0
        self._units = 0.0
        self._callers: dict[str, _Caller] = {}
        self._waiters: collections.deque[_Waiter] = collections.deque()

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def units_inflight(self) -> float:
        return self._units

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.future.done())

    # --- admission ------------------------------------------------------------------------------

    def check_request(self, units: float, text_units: float, what: str) -> None:
        """RequestTooCostly when one request's cost is over a per-request maximum."""
        if text_units > self.max_request_text_units:
            raise RequestTooCostly(
                f"the request's text costs {text_units:.1f} work units ({what}), over the gateway's "
                f"per-request maximum of {self.max_request_text_units:g} for text "
                f"({MAX_REQUEST_TEXT_UNITS_ENV}); send less text (fewer or shorter captions or "
                "subtitles, a shorter description)",
                limit="max_request_text_units",
                value=round(text_units, 1),
                maximum=self.max_request_text_units,
            )
        if units > self.max_request_units:
            raise RequestTooCostly(
                f"the request costs {units:.1f} work units ({what}), over the gateway's per-request "
                f"maximum of {self.max_request_units:g} ({MAX_REQUEST_UNITS_ENV}); send less text, "
                "fewer frames (ModerateOptions.max_frames) or a shorter video",
                limit="max_request_units",
                value=round(units, 1),
                maximum=self.max_request_units,
            )

    async def acquire(
        self, deadline: float | None = None, *, caller: str = "", units: float = 0.0, text_units: float = 0.0
    ) -> Ticket:
        """Admit one request of `caller` costing `units` (waiting in the bounded queue if allowed).

        Raises Overloaded (RESOURCE_EXHAUSTED + retry-after-ms) when it cannot be admitted.
        Every ticket must be released once (release(), or the slot() context manager)."""
        started = time.monotonic()
        state = self._callers.setdefault(caller, _Caller())
        state.last_seen = started
        ticket = Ticket(caller, units, self, text_units=text_units)
        # Every waiter is one that does not fit now (each release admits those that do), so a
        # newcomer that fits overtakes nobody who could run.
        refusal = self._refusal(caller, units)
        if refusal is None:
            self._grant(caller, units)
        else:
            if self.queued >= self.max_queued:
                raise self._reject(refusal)
            budget = self.queue_timeout_s
            if deadline is not None:
                budget = min(budget, deadline - started)
            await self._wait(caller, units, budget)
        ticket.waited_s = time.monotonic() - started
        return ticket

    def release(self, ticket: Ticket) -> None:
        if ticket.released:
            return
        ticket.released = True
        self._inflight -= 1
        self._units -= ticket.units
        state = self._callers[ticket.caller]
        state.slots -= 1
        state.units -= ticket.units
        state.last_seen = time.monotonic()
        if abs(self._units) < 1e-9:
            self._units = 0.0
        self._dispatch()
        self._forget_idle()
        self._publish()

    def charge(self, ticket: Ticket, units: float, text_units: float, what: str) -> None:
        total = ticket.units + units
        self.check_request(total, ticket.text_units + text_units, what)
        ticket.text_units += text_units
        delta = max(total, 0.0) - ticket.units
        ticket.units += delta
        self._units += delta
        self._callers[ticket.caller].units += delta
        if delta < 0:
            self._dispatch()
        self._publish()

    @asynccontextmanager
    async def slot(
        self, deadline: float | None = None, *, caller: str = "", units: float = 0.0
    ) -> AsyncIterator[Ticket]:
        """Hold one admission for the body."""
        ticket = await self.acquire(deadline, caller=caller, units=units)
        try:
            yield ticket
        finally:
            self.release(ticket)

    # --- the rules ------------------------------------------------------------------------------

    def _others_active(self, caller: str, now: float) -> bool:
        return any(
            name != caller and (c.slots or c.waiting or now - c.last_seen < self.caller_idle_s)
            for name, c in self._callers.items()
        )

    def _refusal(self, caller: str, units: float) -> _Refusal | None:
        """Why `caller` cannot have a slot and `units` now, or None."""
        if self._inflight >= self.max_inflight:
            message = f"the gateway is serving its maximum of {self.max_inflight} requests" + (
                f" with {self.max_queued} waiting" if self.max_queued else ""
            )
            return _Refusal("full", message, "max_inflight", self._inflight, self.max_inflight)
        if self._units > 0 and self._units + units > self.max_units:
            message = (
                f"{self._units:.0f} of the gateway's {self.max_units:g} work units are in flight and this "
                f"request needs {units:.1f} (MODGATE_GATEWAY_MAX_INFLIGHT_UNITS)"
            )
            return _Refusal("units", message, "max_inflight_units", round(self._units, 1), self.max_units)
        state = self._callers[caller]
        if state.slots and self._others_active(caller, time.monotonic()):
            slot_share = max(1, math.floor(self.caller_share * self.max_inflight))
            unit_share = self.caller_share * self.max_units
            if state.slots + 1 > slot_share or state.units + units > unit_share:
                message = (
                    f"this caller holds {state.slots} requests and {state.units:.0f} work units, its "
                    f"share ({self.caller_share:.0%}, MODGATE_GATEWAY_CALLER_SHARE) while other callers "
                    "are active"
                )
                return _Refusal("caller_share", message, "caller_share", state.slots, slot_share)
        return None

    def _grant(self, caller: str, units: float) -> None:
        self._inflight += 1
        self._units += units
        state = self._callers[caller]
        state.slots += 1
        state.units += units
        self._publish()

    def _retry_hint_ms(self) -> int:
        # More waiting work means a longer wait before a retry can expect a slot.
        return int(self.retry_after_ms * (1 + self.queued / self.max_inflight))

    def _reject(self, refusal: _Refusal) -> Overloaded:
        metrics.REJECTED.labels(refusal.reason).inc()
        hint = self._retry_hint_ms()
        return Overloaded(
            f"{refusal.message}; retry after the delay in the retry-after-ms trailer ({hint} ms)",
            limit=refusal.limit,
            value=refusal.value,
            maximum=refusal.maximum,
            retry_after_ms=hint,
        )

    # `budget_s` is a queue wait budget, not a call timeout.
    async def _wait(self, caller: str, units: float, budget_s: float) -> None:
        waiter = _Waiter(caller, units, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._callers[caller].waiting += 1
        self._publish()
        try:
            if budget_s <= 0:
                raise TimeoutError
            async with asyncio.timeout(budget_s):
                await asyncio.shield(waiter.future)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                # Admitted just as we gave up: hand the admission back.
                self.release(Ticket(caller, units, self))
            else:
                waiter.future.cancel()
            if isinstance(exc, asyncio.CancelledError):
                raise
            message = f"not admitted within {budget_s * 1000:.0f} ms (gateway overloaded)"
            raise self._reject(
                _Refusal("queue_timeout", message, "queue_timeout_ms", self._inflight, self.max_inflight)
            ) from None
        finally:
            self._callers[caller].waiting -= 1
            with suppress(ValueError):
                self._waiters.remove(waiter)
            self._publish()

    def _dispatch(self) -> None:
        """Admit waiters in arrival order, each as soon as it fits; one that does not fit yet (too
        many units, or its caller at its share) does not hold up those behind it."""
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            if self._inflight >= self.max_inflight:
                return
            if self._refusal(waiter.caller, waiter.units) is None:
                self._grant(waiter.caller, waiter.units)
                waiter.future.set_result(None)

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for name in [n for n, c in self._callers.items() if not (c.slots or c.waiting)]:
            if now - self._callers[name].last_seen >= self.caller_idle_s:
                del self._callers[name]

    def _publish(self) -> None:
        metrics.INFLIGHT.set(self._inflight)
        metrics.INFLIGHT_UNITS.set(self._units)
        metrics.QUEUED.set(self.queued)
