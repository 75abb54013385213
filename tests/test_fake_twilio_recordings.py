"""The fake's Recordings resource and media, read with the real twilio library as Vigil reads
them (gateways/line_recordings.py)."""

from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.fake_twilio import FakeTwilio


def test_a_recording_is_fetched_by_sid_and_its_media_needs_the_accounts_credentials() -> None:
    with FakeTwilio() as fake:
        client = Client(fake.account_sid, fake.auth_token)
        client.api.base_url = fake.url
        audio = b"ID3" + bytes(range(256)) * 8
        call_sid = "CA" + "ab" * 16
        sid = fake.add_recording(call_sid, audio, duration_s=7)

        found = client.recordings(sid).fetch()
        assert (found.sid, found.call_sid, found.duration, found.status) == (
            sid,
            call_sid,
            "7",
            "completed",
        )
        assert (
            found.media_url == f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Recordings/{sid}"
        )

        auth = (fake.account_sid, fake.auth_token)
        mp3 = httpx.get(found.media_url + ".mp3", auth=auth)
        assert (mp3.status_code, mp3.headers["content-type"], mp3.content) == (
            200,
            "audio/mpeg",
            audio,
        )
        assert httpx.get(found.media_url, auth=auth).headers["content-type"] == "audio/x-wav"
        assert httpx.get(found.media_url + ".mp3").status_code == 401
        assert (
            httpx.get(found.media_url + ".mp3", auth=(fake.account_sid, "wrong")).status_code == 401
        )

        with pytest.raises(TwilioRestException) as unknown:
            client.recordings("RE" + "0" * 32).fetch()
        assert unknown.value.status == 404
        gone = httpx.get(found.media_url.replace(sid, "RE" + "0" * 32) + ".mp3", auth=auth)
        assert gone.status_code == 404
