"""`python -m monitor` runs the `vigil` command."""

from monitor.cli import app

app(prog_name="vigil")
