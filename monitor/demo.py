"""`vigil demo`: a whole Vigil on one machine with no configuration.

Mosquitto as a child process on a free loopback port, a SQLite store in ./vigil-data, the
service and console on http://127.0.0.1:8000, a demo operator, and 25 simulated devices.
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor import broker
from monitor.config import Settings
from monitor.devices import service as devices
from monitor.devices.models import Device
from monitor.orgs import service as orgs
from monitor.procedures import definitions as procedures
from monitor.security import hash_secret
from monitor.server import Service
from monitor.users.models import Role, User
from monitor.users.service import add_user

log = logging.getLogger(__name__)

ORG = "Demo Borough Council"
TEAMS = ("Housing", "Community Nursing", "School Attendance", "Environmental Health")
NAMES = (
    "Amira Khan",
    "Ben Okafor",
    "Chloe Martin",
    "Dev Patel",
    "Ellie Hughes",
    "Femi Adeyemi",
    "Grace Liu",
    "Harry Evans",
    "Isla Murphy",
    "Jonah Brooks",
    "Kiran Shah",
    "Lena Novak",
    "Marcus Reid",
    "Nadia Haddad",
    "Owen Price",
    "Priya Nair",
    "Quinn Doyle",
    "Rosa Alvarez",
    "Sam Whitaker",
    "Tara Byrne",
    "Umar Siddiqui",
    "Vera Kowalski",
    "Will Chen",
    "Yusuf Ali",
    "Zoe Turner",
)
NOTES = (
    "Asthma: inhaler in left pocket",
    "Drives a blue Ford Fiesta, reg AB12 CDE",
    "Type 1 diabetic",
    "",
    "Hearing aid: call, then text",
    "",
)
DEMO_OPERATOR = "operator"
# The service's administrator: the Admin tab's every section (organisations, users...).
DEMO_ADMIN = "admin"
PLACE = (51.5072, -0.1276)


def seed(db: Session, count: int) -> list[dict[str, str]]:
    """Create (or refresh) the demo workers and devices; returns the fleet's credentials."""
    org = orgs.get_or_create_org(db, ORG)
    creds = []
    for i in range(count):
        device_id = f"demo-{'phone' if i % 4 == 3 else 'badge'}-{i + 1:03d}"
        cancel_pin, duress_pin = f"{100000 + i}", f"{900000 + i}"
        device = db.get(Device, device_id)
        if device is None:
            worker = orgs.add_worker(
                db,
                name=NAMES[i % len(NAMES)],
                cancel_pin=cancel_pin,
                duress_pin=duress_pin,
                phone=f"+4477009{i:05d}",
                team=TEAMS[i % len(TEAMS)],
                responder_notes=NOTES[i % len(NOTES)],
                org_name=org.name,
            )
            device, secret = devices.add_device(
                db,
                device_id,
                worker_id=worker.id,
                kind="phone" if i % 4 == 3 else "badge",
                heartbeat_interval_s=60,
            )
        else:
            secret = devices.rotate_secret(db, device_id)
        creds.append(
            {
                "device_id": device_id,
                "secret": secret,
                "cancel_pin": cancel_pin,
                "duress_pin": duress_pin,
                "kind": device.kind,
            }
        )
    return creds


def reset_demo_user(db: Session, username: str, role: Role, full_name: str) -> str:
    """The demo's account, made or given a new password at each start (printed once)."""
    password = secrets.token_urlsafe(9)
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        add_user(db, username, password, role, full_name=full_name)
    else:
        user.password_hash = hash_secret(password)
    return password


def run(settings: Settings, *, devices_count: int = 25, alert_rate: float = 2.0) -> None:
    broker.find_mosquitto()  # fail early, with the install hint
    data = Path(settings.data_dir)
    mqtt_port = broker.free_port()  # the devices' listener
    service_port = broker.free_port()  # the service's own
    service_password = secrets.token_urlsafe(24)
    settings = settings.model_copy(
        update={
            "mqtt_host": "127.0.0.1",
            "mqtt_port": service_port,
            "mqtt_password": service_password,
            # The worker app's relay reaches the broker where devices do.
            "mqtt_device_host": "127.0.0.1",
            "mqtt_device_port": mqtt_port,
            # Escalation runs on the default policy, into the outbox: the demo's contacts are
            # drama numbers, and Twilio could not reach a loopback address to call back.
            "escalation_default_policy": True,
            "twilio_account_sid": "",
            "public_url": f"http://{settings.http_host}:{settings.http_port}",
            # A device added, enrolled or disabled while the demo runs is applied at its
            # broker at once (monitor/broker_sync.py).
            "broker_dir": data / "broker",
            "broker_pid_file": data / "broker" / "mosquitto.pid",
        }
    )
    service = Service(settings)
    with service.store.begin() as db:
        creds = seed(db, devices_count)
        password = reset_demo_user(db, DEMO_OPERATOR, Role.SUPERVISOR, "Demo Operator")
        admin_password = reset_demo_user(db, DEMO_ADMIN, Role.ADMIN, "Demo Administrator")
        # The operators' checklists, as the escalation extension loads its default policy.
        procedures.load_default(db)
        files = broker.write_config(
            db,
            data / "broker",
            mqtt_port,
            settings.mqtt_username,
            service_password,
            service_port=service_port,
        )
    fleet_file = data / "demo-fleet.json"
    fleet_file.write_text(json.dumps(creds, indent=1))
    fleet_file.chmod(0o600)

    mosquitto = broker.MosquittoProcess(files.conf, mqtt_port)
    mosquitto.start()
    assert mosquitto.proc is not None and settings.broker_pid_file is not None
    settings.broker_pid_file.write_text(f"{mosquitto.proc.pid}\n")
    sim: subprocess.Popen[bytes] | None = None
    try:
        service.start(wait_s=10)
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "device_sim",
                "--host",
                "127.0.0.1",
                "--port",
                str(mqtt_port),
                "--credentials",
                str(fleet_file),
                "--place",
                f"{PLACE[0]},{PLACE[1]}",
                "--alert-rate",
                str(alert_rate),
            ]
        )
        url = f"http://{settings.http_host}:{settings.http_port}"
        # Extensions add what they offer (the worker app: an enrolment link and its QR code).
        extras = "".join(
            ep.load()(service.store, settings) for ep in entry_points(group="vigil.demo")
        )
        print(
            f"\n  Vigil demo is running.\n"
            f"  Console:   {url}/\n"
            f"  API docs:  {url}/docs\n"
            f"  Sign in:   {DEMO_OPERATOR} / {password}  (role: supervisor)\n"
            f"             {DEMO_ADMIN} / {admin_password}  (role: admin: workers, devices, "
            "users, escalation, places on the Admin tab)\n"
            f"  Broker:    mqtt://127.0.0.1:{mqtt_port} ({devices_count} simulated devices)\n"
            f"  Data:      {data.resolve()}\n"
            # Another terminal's `vigil` finds this store only through its data directory.
            f"  Add a device while it runs (its broker takes it at once):\n"
            f"             vigil --data-dir {data.resolve()} device add ID --worker N\n"
            f"{extras}"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )
        service.serve()
    finally:
        if sim is not None and sim.poll() is None:
            sim.terminate()
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()
        service.stop()
        mosquitto.stop()
