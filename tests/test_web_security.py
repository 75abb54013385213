"""What every HTTP answer carries for the browser's protection, and sign-in throttling."""

from __future__ import annotations

from tests.support import PASSWORD, Running


def test_every_answer_carries_security_headers(svc: Running) -> None:
    for path in ("/", "/api/v1/alerts", "/healthz", "/no-such-page"):
        r = svc.http.get(path)
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"
        policy = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "default-src 'self'" in policy and "object-src 'none'" in policy
    # The map's tiles may come from the configured tile server, and nowhere else.
    tiles = svc.settings.map_tiles_url
    if tiles.startswith("https://"):
        origin = "https://" + tiles.split("/")[2]
        assert origin in svc.http.get("/").headers["Content-Security-Policy"]


def test_wrong_passwords_make_that_name_wait(svc: Running) -> None:
    svc.user("victim")
    svc.user("bystander")
    form = {"username": "victim", "password": "not the password"}
    limit = svc.settings.signin_max_failures
    for _ in range(limit):
        assert svc.http.post("/api/v1/auth/token", data=form).status_code == 401
    refused = svc.http.post("/api/v1/auth/token", data=form)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= svc.settings.signin_window_s
    # While it waits, even the right password is refused: guessing has to stop.
    right = {"username": "VICTIM", "password": PASSWORD}
    assert svc.http.post("/api/v1/auth/token", data=right).status_code == 429
    # Other people signing in from the same address are not held up by it.
    other = {"username": "bystander", "password": PASSWORD}
    assert svc.http.post("/api/v1/auth/token", data=other).status_code == 200


def test_a_good_sign_in_clears_the_count(svc: Running) -> None:
    svc.user("forgetful")
    limit = svc.settings.signin_max_failures
    wrong = {"username": "forgetful", "password": "nope nope nope"}
    for _ in range(limit - 1):
        assert svc.http.post("/api/v1/auth/token", data=wrong).status_code == 401
    svc.login("forgetful")
    for _ in range(limit - 1):
        assert svc.http.post("/api/v1/auth/token", data=wrong).status_code == 401
    svc.login("forgetful")  # never blocked: the count started again after the good one


def test_text_the_database_cannot_store_is_refused_with_the_field_named(svc: Running) -> None:
    ops = svc.user("nul-op")
    badge, _ = svc.badge("badge-nul")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    pk = svc.http.get("/api/v1/alerts", headers=ops).json()[0]["id"]
    r = svc.http.post(f"/api/v1/alerts/{pk}/notes", json={"text": "a\x00b"}, headers=ops)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
    # A name with a NUL at sign-in is refused, not a server error.
    r = svc.http.post("/api/v1/auth/token", data={"username": "x\x00y", "password": "whatever1"})
    assert r.status_code in (401, 422)
    # An id too large for the database's integer columns is a bad id, not a server error.
    assert svc.http.get(f"/api/v1/alerts/{2**31}", headers=ops).status_code == 422
