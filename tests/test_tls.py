"""The generated TLS listener, against a throwaway CA: devices connect over TLS with their
password, and with client certificates required, only with one signed by the CA."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitor.broker import MosquittoProcess, free_port, wait_for_port
from tests.support import make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    return make_pki(tmp_path / "pki")


def connect(port: int, password: str, ca: Path | None, cert: Path | None = None) -> str:
    """'ok', or why the connection failed."""
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="badge-t1")
    c.username_pw_set("badge-t1", password)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert is not None:
        context.load_cert_chain(str(cert), str(cert.with_suffix(".key")))
    c.tls_set_context(context)
    done = threading.Event()
    result: list[str] = []

    def on_connect(
        client: mqtt.Client, userdata: object, flags: object, rc: object, props: object = None
    ) -> None:
        result.append("ok" if not getattr(rc, "is_failure", False) else f"refused: {rc}")
        done.set()

    c.on_connect = on_connect
    try:
        c.connect("127.0.0.1", port, keepalive=10)
    except (ssl.SSLError, OSError) as e:
        return f"tls: {e}"
    c.loop_start()
    done.wait(5)
    c.loop_stop()
    c.disconnect()
    return result[0] if result else "no answer"


@pytest.mark.parametrize("client_certs", [False, True])
def test_devices_connect_over_the_generated_tls_listener(  # type: ignore[no-untyped-def]
    vigil, pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client_certs: bool
) -> None:
    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "service-pw-123456")
    vigil("worker", "add", "Tia", "--cancel-pin", "2468", "--duress-pin", "1357")
    secret = vigil("device", "add", "badge-t1", "--worker", "1").output.splitlines()[1].strip()
    port, tls_port = free_port(), free_port()
    out = tmp_path / "mq"
    tls_args = ["--tls-port", str(tls_port), "--tls-cert", str(pki / "server.crt"),
                "--tls-key", str(pki / "server.key")]  # fmt: skip
    if client_certs:
        tls_args += ["--tls-client-ca", str(pki / "ca.crt")]
    vigil("mosquitto-config", "--out", str(out), "--port", str(port), "--bind", "127.0.0.1",
          "--service-port", str(free_port()), *tls_args)  # fmt: skip
    mosquitto = MosquittoProcess(out / "mosquitto.conf", port)
    mosquitto.start()
    try:
        assert wait_for_port("127.0.0.1", tls_port, 10)
        cert = pki / "client.crt" if client_certs else None
        assert connect(tls_port, secret, pki / "ca.crt", cert) == "ok"
        # The password still counts over TLS.
        assert connect(tls_port, "wrong", pki / "ca.crt", cert).startswith("refused")
        # A device that does not trust the CA will not talk to an impostor, nor to us.
        assert connect(tls_port, secret, None, cert).startswith("tls")
        if client_certs:
            assert connect(tls_port, secret, pki / "ca.crt") != "ok"
    finally:
        mosquitto.stop()


def test_a_tls_listener_needs_all_its_parts(  # type: ignore[no-untyped-def]
    vigil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_MQTT_PASSWORD", "service-pw-123456")
    result = vigil("mosquitto-config", "--out", str(tmp_path), "--tls-port", "8883", ok=False)
    assert (
        result.exit_code == 1 and "--tls-port, --tls-cert and --tls-key together" in result.output
    )
    assert not (tmp_path / "mosquitto.conf").exists()
