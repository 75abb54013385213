"""NetLoop's own parts: timers in order, cancelling, work handed over from other threads."""

from __future__ import annotations

import threading

from device_sim.netloop import NetLoop


def test_timers_run_in_order_on_the_loop_thread_and_cancelled_ones_never() -> None:
    loop = NetLoop("test-loop")
    loop.start()
    try:
        ran: list[tuple[str, bool]] = []
        done = threading.Event()

        def note(name: str) -> None:
            ran.append((name, loop.in_loop()))
            if name == "last":
                done.set()

        loop.call_later(0.15, lambda: note("last"))
        loop.call_later(0.05, lambda: note("second"))
        cancelled = loop.call_later(0.1, lambda: note("cancelled"))
        loop.call_soon(lambda: note("first"))
        cancelled.cancel()
        assert done.wait(5)
        assert ran == [("first", True), ("second", True), ("last", True)]
    finally:
        loop.close()


def test_work_handed_over_before_start_runs_once_started_and_errors_do_not_stop_it() -> None:
    loop = NetLoop("test-loop")
    ran = threading.Event()

    def boom() -> None:
        raise RuntimeError("a device's callback failed")

    loop.call_soon(boom)
    loop.call_soon(ran.set)
    assert not ran.is_set()
    loop.start()
    try:
        assert ran.wait(5)
        again = threading.Event()
        loop.call_soon(again.set)
        assert again.wait(5) and loop.running
    finally:
        loop.close()
    assert not loop.running
