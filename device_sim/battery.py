"""A battery that drains with use and is put on charge when low, as people do."""

from __future__ import annotations

import random


class Battery:
    def __init__(
        self,
        rng: random.Random,
        *,
        drain_per_h: float,
        charge_per_h: float = 40.0,
        low: float = 15.0,
        full: float = 95.0,
    ) -> None:
        self.level = rng.uniform(35.0, 100.0)
        self.charging = False
        self.drain_per_h = drain_per_h
        self.charge_per_h = charge_per_h
        self.low = low
        self.full = full

    @property
    def percent(self) -> int:
        return max(0, min(100, round(self.level)))

    def step(self, dt: float) -> None:
        if self.charging:
            self.level = min(100.0, self.level + self.charge_per_h * dt / 3600)
            if self.level >= self.full:
                self.charging = False
        else:
            self.level = max(0.0, self.level - self.drain_per_h * dt / 3600)
            if self.level <= self.low:
                self.charging = True
