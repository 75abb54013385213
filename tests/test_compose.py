"""docker-compose.yml cannot run here (no Docker engine): check its structure and that every
file it names exists."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_structure_and_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "mosquitto", "setup", "vigil", "sim"} <= set(services)
    assert "mosquitto-config" in " ".join(services["setup"]["command"])
    assert services["mosquitto"]["command"][-1] == "/shared/mosquitto/mosquitto.conf"
    assert services["vigil"]["command"][:2] == ["vigil", "serve"]
    assert services["sim"]["command"][:2] == ["vigil", "sim"]
    env = services["vigil"]["environment"]
    assert env["VIGIL_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["VIGIL_MQTT_HOST"] == "mosquitto"
    # The service uses the generated config's listener of its own; devices use 1883, the
    # only port published.
    setup = " ".join(services["setup"]["command"])
    assert "--port 1883" in setup and f"--service-port {env['VIGIL_MQTT_PORT']}" in setup
    assert services["mosquitto"]["ports"] == ["1883:1883"]
    assert services["sim"]["command"][2:4] == ["--port", "1883"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), source
            else:
                assert source in compose["volumes"], source
        if "build" in svc:
            context = ROOT / (
                svc["build"] if isinstance(svc["build"], str) else svc["build"]["context"]
            )
            assert (context / "Dockerfile").exists()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
