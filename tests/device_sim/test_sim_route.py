"""The walk, battery and geometry models, without a broker."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from device_sim import geo
from device_sim.battery import Battery
from device_sim.route import Walker


@given(
    seed=st.integers(0, 2**32),
    lat=st.floats(-70, 70),
    lon=st.floats(-179, 179),
    radius=st.floats(10, 5000),
    steps=st.lists(st.floats(0.01, 30), min_size=1, max_size=60),
)
@settings(max_examples=60, deadline=None)
def test_walker_stays_inside_its_circle_at_walking_pace(
    seed: int, lat: float, lon: float, radius: float, steps: list[float]
) -> None:
    walker = Walker(random.Random(seed), (lat, lon), radius)
    assert 1.1 <= walker.speed_mps <= 1.7
    for dt in steps:
        before = (walker.east, walker.north)
        walker.step(dt)
        moved = math.hypot(walker.east - before[0], walker.north - before[1])
        assert moved <= walker.speed_mps * dt + 1e-6
        assert math.hypot(walker.east, walker.north) <= radius + 1e-6
        assert 0 <= walker.heading < 360
        assert geo.distance_m((lat, lon), walker.position) <= radius * 1.01 + 0.01


def test_walker_holds_still_during_a_visit() -> None:
    walker = Walker(random.Random(1), (51.5, -0.1), 500)
    walker.hold(True)
    where = walker.position
    walker.step(60)
    assert walker.position == where and walker.speed == 0 and not walker.moving
    walker.hold(False)
    walker.step(1)
    assert walker.position != where or walker.speed == 0  # may be pausing at a waypoint


def test_same_seed_same_route() -> None:
    a, b = (Walker(random.Random(42), (51.5, -0.1), 1500) for _ in range(2))
    for _ in range(100):
        a.step(5)
        b.step(5)
    assert a.position == b.position


def test_battery_drains_then_charges_when_low() -> None:
    battery = Battery(random.Random(0), drain_per_h=50.0, charge_per_h=100.0)
    battery.level = 20.0
    battery.step(3600 * 0.05)  # -2.5 %
    assert battery.percent == 18 and not battery.charging
    battery.step(3600 * 0.1)
    assert battery.charging and battery.level <= 15.0
    battery.step(3600)
    assert not battery.charging and battery.level >= 95.0
    assert 0 <= battery.percent <= 100


def test_geo_offset_round_trips() -> None:
    centre = (53.4808, -2.2426)
    point = geo.offset(centre, 300.0, -400.0)
    east, north = geo.metres_from(centre, point)
    assert math.isclose(east, 300.0, abs_tol=1e-6) and math.isclose(north, -400.0, abs_tol=1e-6)
    assert math.isclose(geo.distance_m(centre, point), 500.0, rel_tol=1e-9)
    assert geo.heading_deg(1, 0) == 90 and geo.heading_deg(0, -1) == 180
