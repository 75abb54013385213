"""A worker's walk: random waypoints inside a circle, at walking speed, with pauses.

The classic random-waypoint model: plausible on a map, cheap to step for a whole fleet.
"""

from __future__ import annotations

import math
import random

from device_sim import geo


class Walker:
    def __init__(
        self,
        rng: random.Random,
        centre: tuple[float, float],
        radius_m: float,
        *,
        speed_mps: float = 1.4,
        pause_chance: float = 0.3,
        pause_s: tuple[float, float] = (20.0, 240.0),
    ) -> None:
        if radius_m <= 0:
            raise ValueError("radius_m must be > 0")
        self._rng = rng
        self.centre = centre
        self.radius_m = radius_m
        # People differ: 1.2-1.6 m/s is the usual range of walking speeds.
        self.speed_mps = speed_mps * rng.uniform(0.85, 1.15)
        self.pause_chance = pause_chance
        self.pause_s = pause_s
        self.east, self.north = self._random_point()
        self._target = self._random_point()
        self._pause_left = 0.0
        self._held = False
        self.heading = geo.heading_deg(self._target[0] - self.east, self._target[1] - self.north)

    @property
    def position(self) -> tuple[float, float]:
        return geo.offset(self.centre, self.east, self.north)

    @property
    def moving(self) -> bool:
        return not self._held and self._pause_left <= 0

    @property
    def speed(self) -> float:
        return self.speed_mps if self.moving else 0.0

    def hold(self, held: bool) -> None:
        """Stay where we are (e.g. inside during a visit) until released."""
        self._held = held

    def step(self, dt: float) -> None:
        if self._held:
            return
        if self._pause_left > 0:
            self._pause_left -= dt
            return
        remaining = self.speed_mps * dt
        while remaining > 0:
            dx, dy = self._target[0] - self.east, self._target[1] - self.north
            gap = math.hypot(dx, dy)
            if gap > remaining:
                self.east += dx / gap * remaining
                self.north += dy / gap * remaining
                self.heading = geo.heading_deg(dx, dy)
                return
            self.east, self.north = self._target
            remaining -= gap
            self._target = self._random_point()
            if self._rng.random() < self.pause_chance:
                self._pause_left = self._rng.uniform(*self.pause_s)
                return

    def _random_point(self) -> tuple[float, float]:
        # sqrt makes the points uniform over the disc, not bunched at its centre.
        r = self.radius_m * math.sqrt(self._rng.random())
        a = self._rng.uniform(0.0, 2 * math.pi)
        return r * math.cos(a), r * math.sin(a)
