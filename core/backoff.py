"""How failed work is tried again, everywhere: webhook deliveries (core.inbox), the work owed to
GitHub and Slack (core.outbox: checks, sign-off messages, alerts) and scheduled digests (the clock).

A first delay that grows by a factor after each failure, up to a number of attempts in all;
then the work is marked failed (or, for owed work, left to the next change).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    first_delay: timedelta = timedelta(seconds=10)
    factor: float = 3.0
    max_attempts: int = 5
    # Each delay is drawn within this share either side of it, so that work that failed at
    # once (an outage of GitHub or Slack) is not all tried again in the same instant.
    jitter: float = 0.1

    def delay(self, failures: int) -> timedelta:
        """How long to wait after the `failures`-th failure in a row (1 after the first)."""
        delay = self.first_delay * self.factor ** (failures - 1)
        if self.jitter:
            delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return delay

    def exhausted(self, attempts: int) -> bool:
        """Whether `attempts` tries are all this policy allows."""
        return attempts >= self.max_attempts


# 10 s, 30 s, 90 s, 270 s between five attempts: about seven minutes to ride out a short outage.
BACKOFF = Backoff()
