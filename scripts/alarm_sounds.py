"""Writes the console's duress alarm (console/static/duress.wav): a fast two-tone yelp, more
insistent than the chime of other alerts. Run once after changing it; the WAV is committed."""

from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path

RATE = 16000
# Three bursts of a tone sweeping 900 to 1700 Hz and back, 0.12 s each way, with short gaps:
# the pattern of an alarm rather than a notification, and unlike the chime.
SWEEP_S = 0.12
BURSTS = 3
GAP_S = 0.08
LOW, HIGH = 900.0, 1700.0
VOLUME = 0.6


def samples() -> list[float]:
    out: list[float] = []
    phase = 0.0
    n = int(SWEEP_S * RATE)
    for _ in range(BURSTS):
        for rising in (True, False):
            for i in range(n):
                t = i / n
                f = LOW + (HIGH - LOW) * (t if rising else 1 - t)
                phase += 2 * math.pi * f / RATE
                # A square-ish wave (a sine through a soft clip) carries further than a sine.
                out.append(math.tanh(3 * math.sin(phase)) * VOLUME)
        out.extend([0.0] * int(GAP_S * RATE))
    # 5 ms fades at the ends: no click.
    fade = int(0.005 * RATE)
    for i in range(fade):
        out[i] *= i / fade
        out[-1 - i] *= i / fade
    return out


def main(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", round(s * 32767)) for s in samples()))


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else here / "console/static/duress.wav")
