"""Jittered exponential backoff: the one wait rule behind every retry policy.

The graph's per-node ``RetryPolicy``, the tool plane's ``ToolRetry`` and the model plane's
``ModelRetry`` keep their own names and knobs (what they retry differs), but all three compute
their waits here, so identical settings give identical waits in every plane.

The rule, after failed attempt *n* (1-based)::

    base = min(max_interval, initial_interval * backoff_factor ** (n - 1))

``jitter=True`` (the same as ``"full"``, the default) waits a uniform time in ``[0, base]``
(*full jitter*: callers that failed together spread over the whole window, so they do not
retry in lock-step); ``"equal"`` waits in ``[base/2, base]`` (never less than half); ``False``
waits exactly ``base``. A server that says ``Retry-After: s`` is obeyed: the wait is exactly
``s`` (the server knows when it will take the call), unless ``s > max_retry_after``: then the
caller gives up at once, since waiting that long is worse than failing over.

When a policy gives up, its plane raises (or reports) the error it got, with a note
(``add_note``) saying why: ``gave up after N attempts`` or that the ``Retry-After`` was longer
than the policy's ``max_retry_after``; see :meth:`Backoff.note_give_up`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tether.core.errors import ConfigurationError

__all__ = ["Backoff", "Jitter", "Random"]

Jitter = bool | Literal["full", "equal"]
Random = Callable[[], float]
"""A source of uniform floats in ``[0, 1)``: ``random.random`` or a seeded ``Random().random``."""


DEFAULT_MAX_RETRY_AFTER = 60.0


class BackoffSettings(Protocol):
    """What a plane's retry policy shares with :class:`Backoff` (``max_retry_after`` may be
    absent: then the default applies)."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def initial_interval(self) -> float: ...
    @property
    def backoff_factor(self) -> float: ...
    @property
    def max_interval(self) -> float: ...
    @property
    def jitter(self) -> Jitter: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between attempts; ``delay`` says how long, or None to give up."""

    max_attempts: int = 3
    initial_interval: float = 0.1
    backoff_factor: float = 2.0
    max_interval: float = 10.0
    jitter: Jitter = True
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    """A ``Retry-After`` longer than this is not waited out: the caller gives up instead."""
    owner: str = field(default="Backoff", compare=False, repr=False)
    """Whose settings these are (``"ToolRetry"``...): named in error messages and notes."""

    @classmethod
    def of(cls, policy: BackoffSettings, owner: str) -> Backoff:
        """The schedule of a plane's retry policy (``RetryPolicy``, ``ToolRetry``,
        ``ModelRetry``...), which carries these field names; validated in ``owner``'s name."""
        return cls(
            max_attempts=policy.max_attempts,
            initial_interval=policy.initial_interval,
            backoff_factor=policy.backoff_factor,
            max_interval=policy.max_interval,
            jitter=policy.jitter,
            max_retry_after=getattr(policy, "max_retry_after", DEFAULT_MAX_RETRY_AFTER),
            owner=owner,
        )

    def __post_init__(self) -> None:
        o = self.owner
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError(
                f"{o}.max_attempts must be an int >= 1, got {self.max_attempts!r}"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"{o}.max_attempts must be >= 1 (1 means no retry), got {self.max_attempts}"
            )
        for name in ("initial_interval", "max_interval", "max_retry_after"):
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0:
                raise ConfigurationError(
                    f"{o}.{name}: intervals must be >= 0 seconds, got {value!r}"
                )
        for name in ("initial_interval", "max_interval"):
            if math.isinf(getattr(self, name)):
                raise ConfigurationError(f"{o}.{name} must be a finite number of seconds")
        if not _is_number(self.backoff_factor) or not 1 <= self.backoff_factor < math.inf:
            raise ConfigurationError(
                f"{o}.backoff_factor must be a finite number >= 1 (waits never shrink), "
                f"got {self.backoff_factor!r}"
            )
        if self.jitter not in (True, False, "full", "equal") or not isinstance(
            self.jitter, bool | str
        ):
            raise ConfigurationError(
                f"{o}.jitter must be True (full jitter), False, 'full' or 'equal', "
                f"got {self.jitter!r}"
            )

    def base(self, attempt: int) -> float:
        """The un-jittered wait after failed attempt ``attempt`` (1-based), capped at
        ``max_interval``; never overflows however large ``attempt`` grows."""
        if self.initial_interval == 0 or self.max_interval == 0:
            return 0.0
        steps = max(attempt - 1, 0)
        if self.backoff_factor > 1 and steps * math.log(self.backoff_factor) >= math.log(
            self.max_interval / self.initial_interval
        ):
            return self.max_interval
        return min(self.max_interval, self.initial_interval * self.backoff_factor**steps)

    def backoff(self, attempt: int, rand: Random = random.random) -> float:
        """The jittered wait after failed attempt ``attempt`` (1-based); see the module docs."""
        base = self.base(attempt)
        if self.jitter is False:
            return base
        if self.jitter == "equal":
            return base / 2 + base / 2 * rand()
        return base * rand()

    def retry_after_too_long(self, retry_after: float | None) -> bool:
        """True when the server asks for a longer wait than ``max_retry_after`` allows."""
        return retry_after is not None and retry_after > self.max_retry_after

    def delay(
        self, attempt: int, retry_after: float | None = None, rand: Random = random.random
    ) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` before the next one, or None to give
        up: no attempts left, or a ``retry_after`` beyond ``max_retry_after``. A ``retry_after``
        within the cap is waited exactly (a negative one as 0; NaN is ignored)."""
        if attempt >= self.max_attempts or self.retry_after_too_long(retry_after):
            return None
        if retry_after is not None and not math.isnan(retry_after):
            return max(retry_after, 0.0)
        return self.backoff(attempt, rand)

    def note_give_up(
        self, exc: BaseException, attempt: int, retry_after: float | None = None, *, who: str = ""
    ) -> None:
        """Say on ``exc`` why no further attempt is made (the same words in every plane):
        the ``Retry-After`` was too long, or the retries ran out after ``attempt`` attempts.
        A first attempt that was never retried gets no note."""
        prefix = f"{who}: " if who else ""
        if attempt < self.max_attempts and self.retry_after_too_long(retry_after):
            assert retry_after is not None
            exc.add_note(
                f"{prefix}not retried: Retry-After {retry_after:g}s is longer than "
                f"{self.owner}.max_retry_after={self.max_retry_after:g}s"
            )
        elif attempt > 1:
            exc.add_note(
                f"{prefix}gave up after {attempt} attempts ({self.owner}.max_attempts="
                f"{self.max_attempts})"
            )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
