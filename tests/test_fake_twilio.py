"""The fake Twilio API, driven by the real twilio client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.fake_twilio import FakeTwilio

FROM = "+15005550006"
TWIML = "<Response><Say>Vigil alert</Say></Response>"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as f:
        yield f


def client_for(
    fake: FakeTwilio, timeout: float = 2.0, sid: str | None = None, token: str | None = None
) -> Client:
    client = Client(
        sid or fake.account_sid,
        token or fake.auth_token,
        http_client=TwilioHttpClient(timeout=timeout),
    )
    client.api.base_url = fake.url
    return client


def test_message_created_recorded_and_fetchable(fake: FakeTwilio) -> None:
    client = client_for(fake)
    msg = client.messages.create(
        to="+447700900001",
        from_=FROM,
        body="Panic alert: Ana",
        status_callback="https://vigil.example/twilio/status",
    )
    assert msg.sid is not None and msg.sid.startswith("SM") and len(msg.sid) == 34
    assert msg.status == "queued"
    assert msg.to == "+447700900001" and msg.from_ == FROM and msg.body == "Panic alert: Ana"
    assert isinstance(msg.date_created, datetime)

    [rec] = fake.messages
    assert rec.kind == "sms" and rec.status_code == 201 and rec.sid == msg.sid
    assert rec.params["To"] == ["+447700900001"]
    assert rec.param("Body") == "Panic alert: Ana"
    assert rec.param("StatusCallback") == "https://vigil.example/twilio/status"

    fake.set_status(msg.sid, "delivered")
    assert client.messages(msg.sid).fetch().status == "delivered"


def test_call_params_include_repeated_status_events(fake: FakeTwilio) -> None:
    call = client_for(fake).calls.create(
        to="+447700900002",
        from_=FROM,
        twiml=TWIML,
        status_callback="https://vigil.example/twilio/call",
        status_callback_event=["initiated", "answered", "completed"],
        timeout=20,
    )
    assert call.sid is not None and call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"

    [rec] = fake.wait_for_count("call", 1, timeout=1, answered=True)
    assert rec.params["StatusCallbackEvent"] == ["initiated", "answered", "completed"]
    assert rec.param("Twiml") == TWIML
    assert rec.param("Timeout") == "20"
    assert fake.calls == [rec] and fake.messages == []


def test_scripted_failures(fake: FakeTwilio) -> None:
    client = client_for(fake)
    fake.fail("+15005550001", status=400, code=21211)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+15005550001", from_=FROM, body="x")
    assert (err.value.status, err.value.code) == (400, 21211)

    fake.fail("+447700900003", status=503, code=20503, times=1)
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to="+447700900003", from_=FROM, twiml=TWIML)
    assert (err.value.status, err.value.code) == (503, 20503)
    assert client.calls.create(to="+447700900003", from_=FROM, twiml=TWIML).status == "queued"

    statuses = [r.status_code for r in fake.wait_for_count("call", 2, timeout=1)]
    assert statuses == [503, 201]
    assert len(fake.calls) == 1


def test_missing_parameter_and_unknown_sid(fake: FakeTwilio) -> None:
    client = client_for(fake)
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to="+447700900004", from_=FROM)
    assert (err.value.status, err.value.code) == (400, 21205)
    with pytest.raises(TwilioRestException) as err:
        client.messages("SM" + "0" * 32).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


def test_wrong_credentials(fake: FakeTwilio) -> None:
    for client in (
        client_for(fake, token="wrong"),
        client_for(fake, sid="AC" + "f" * 32),  # right token, someone else's account
    ):
        with pytest.raises(TwilioRestException) as err:
            client.messages.create(to="+447700900005", from_=FROM, body="x")
        assert (err.value.status, err.value.code) == (401, 20003)
    assert fake.messages == [] and [r.status_code for r in fake.requests] == [401, 401]


def test_hang_times_out_while_others_are_served_and_stop_is_prompt() -> None:
    fake = FakeTwilio().start()
    try:
        fake.hang("+447700900006", 10)
        errors: list[BaseException] = []

        def slow() -> None:
            try:
                client_for(fake, timeout=0.5).messages.create(
                    to="+447700900006", from_=FROM, body="slow"
                )
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=slow)
        t.start()
        fake.wait_for_count("sms", 1, timeout=1, to="+447700900006")

        began = time.monotonic()
        msg = client_for(fake).messages.create(to="+447700900007", from_=FROM, body="fast")
        assert msg.status == "queued"
        assert time.monotonic() - began < 0.3

        t.join(timeout=2)
        assert len(errors) == 1 and isinstance(errors[0], requests.exceptions.Timeout)
    finally:
        # The hanging handler still has ~9 s to go; stop() must not wait for it.
        began = time.monotonic()
        fake.stop()
        assert time.monotonic() - began < 1
