"""`python -m device_sim`: run a simulated fleet against a broker."""

import sys

from device_sim.cli import run

sys.exit(run())
