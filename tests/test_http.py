"""The one HTTP layer: retries, timeouts, 429, redirects, error translation, redaction."""

from __future__ import annotations

import time

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from tests.http_helpers import fast_settings
from tradecycle.connectors.http import HttpClient, HttpSettings, ServiceDown, ServiceRefused
from tradecycle.infra.errors import BadResponse, RateLimited
from tradecycle.models import Deadline

BASE = "https://api.example.test/v1"
SECRET = "sk-live-SECRETVALUE-0123456789"


def client(**overrides) -> HttpClient:
    return HttpClient("svc", BASE, fast_settings(**overrides), {"X-Key": SECRET})


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Every sleep the retry loop asks for, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port (no byte was sent)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", reason))


def reset() -> requests.exceptions.ConnectionError:
    """What requests raises when the server drops the connection after the request went out."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


def test_success_returns_decoded_json_and_sends_session_headers(server):
    server.get(f"{BASE}/things", json={"a": 1})

    assert client().get("/things") == {"a": 1}
    sent = server.calls[0].request.headers
    assert sent["X-Key"] == SECRET
    assert sent["User-Agent"].startswith("tradecycle/")


def test_5xx_is_retried_then_succeeds(server, sleeps):
    server.get(f"{BASE}/things", status=503, json={"message": "busy"})
    server.get(f"{BASE}/things", status=502, body="bad gateway")
    server.get(f"{BASE}/things", json={"ok": True})
    http = client()

    assert http.get("/things") == {"ok": True}
    assert http.calls == 3
    assert len(sleeps) == 2


def test_5xx_after_all_retries_is_service_down_that_may_have_arrived(server, sleeps):
    server.get(f"{BASE}/things", status=503, json={"message": "busy"})
    http = client(max_retries=2)

    with pytest.raises(ServiceDown) as caught:
        http.get("/things")

    assert caught.value.may_have_arrived is True
    assert caught.value.status_code == 503
    assert str(caught.value) == "svc: HTTP 503: busy"
    assert http.calls == 3


def test_retry_false_sends_exactly_once(server):
    server.post(f"{BASE}/orders", status=500, json={"message": "internal"})
    http = client()

    with pytest.raises(ServiceDown):
        http.post("/orders", {"x": 1}, retry=False)

    assert http.calls == 1


@pytest.mark.parametrize(
    ("error", "may_have_arrived", "text"),
    [
        (requests.exceptions.ReadTimeout(), True, "no answer within"),
        (reset(), True, "connection failed (connection reset)"),
        (refused(), False, "cannot connect (connection refused)"),
        (requests.exceptions.ConnectTimeout(), False, "cannot connect"),
        (requests.exceptions.MissingSchema("bad url"), False, "cannot connect"),
    ],
    ids=["read-timeout", "reset", "refused", "connect-timeout", "bad-url"],
)
def test_transport_errors_say_whether_the_request_may_have_arrived(server, error, may_have_arrived, text):
    server.post(f"{BASE}/orders", body=error)

    with pytest.raises(ServiceDown) as caught:
        client().post("/orders", {}, retry=False)

    assert caught.value.may_have_arrived is may_have_arrived
    assert text in str(caught.value)


def test_429_with_short_retry_after_waits_it_then_succeeds(server, sleeps):
    server.get(f"{BASE}/things", status=429, headers={"Retry-After": "0.005"}, json={"error": "slow down"})
    server.get(f"{BASE}/things", json={"ok": True})

    assert client().get("/things") == {"ok": True}
    assert sleeps == [0.005]


def test_429_with_retry_after_beyond_the_budget_raises_without_sleeping(server, sleeps):
    server.get(f"{BASE}/things", status=429, headers={"Retry-After": "30"}, json={"error": "API limit reached"})
    http = client(retry_max_delay_seconds=60, deadline=Deadline(5))

    with pytest.raises(RateLimited) as caught:
        http.get("/things")

    assert caught.value.retry_after_seconds == 30
    assert str(caught.value) == "svc: API limit reached"
    assert sleeps == []
    assert http.calls == 1


def test_429_with_retry_after_beyond_max_delay_raises_without_sleeping_even_with_no_deadline(server, sleeps):
    server.get(f"{BASE}/things", status=429, headers={"Retry-After": "3600"}, json={"error": "API limit reached"})
    http = client(retry_max_delay_seconds=30, deadline=None)

    with pytest.raises(RateLimited):
        http.get("/things")

    assert sleeps == []
    assert http.calls == 1


@pytest.mark.parametrize("header", ["soon", "Wed, 99 Foo 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_429_with_unreadable_or_past_date_retry_after_falls_back_to_backoff(server, sleeps, header):
    server.get(f"{BASE}/things", status=429, headers={"Retry-After": header}, json={})
    server.get(f"{BASE}/things", json={"ok": True})

    assert client().get("/things") == {"ok": True}
    assert len(sleeps) == 1 and sleeps[0] <= 0.01


def test_an_expired_deadline_sends_nothing(server):
    http = client(deadline=Deadline(0))

    with pytest.raises(ServiceDown) as caught:
        http.get("/things")

    assert caught.value.may_have_arrived is False
    assert "budget" in str(caught.value)
    assert http.calls == 0


def test_404_is_none_when_missing_is_ok(server):
    server.get(f"{BASE}/orders/x", status=404, json={"message": "order not found"})

    assert client().get("/orders/x", missing_ok=True) is None


def test_4xx_is_refused_at_once_with_the_service_message(server):
    server.get(f"{BASE}/orders/x", status=404, json={"code": 40410000, "message": "order not found"})
    http = client()

    with pytest.raises(ServiceRefused) as caught:
        http.get("/orders/x")

    assert isinstance(caught.value, BadResponse)
    assert caught.value.status_code == 404
    assert caught.value.detail == "order not found"
    assert str(caught.value) == "svc: HTTP 404: order not found"
    assert http.calls == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"code": 40310000, "message": "insufficient buying power"}, "insufficient buying power"),
        ({"error": "You don't have access to this resource."}, "You don't have access to this resource."),
        ({"status": {"error_code": 401, "error_message": "invalid key"}}, "invalid key"),
        ({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}, "Incorrect API key"),
        ("plain   text\nerror", "plain text error"),
    ],
    ids=["alpaca", "finnhub", "coingecko", "openai", "text"],
)
def test_error_message_is_read_from_each_services_body_shape(server, body, expected):
    if isinstance(body, dict):
        server.get(f"{BASE}/x", status=403, json=body)
    else:
        server.get(f"{BASE}/x", status=403, body=body)

    with pytest.raises(ServiceRefused) as caught:
        client().get("/x")

    assert caught.value.detail == expected


@pytest.mark.parametrize("status", [401, 503])
def test_a_secret_echoed_in_an_error_body_is_redacted(server, sleeps, status):
    server.get(f"{BASE}/x", status=status, json={"message": f"key {SECRET} is not valid"})
    http = HttpClient("svc", BASE, fast_settings(secrets=(SECRET,)), {"X-Key": SECRET})

    with pytest.raises(Exception) as caught:
        http.get("/x")

    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)


def test_redirects_are_not_followed(server):
    server.get(f"{BASE}/x", status=302, headers={"Location": "https://elsewhere.test/x"})
    server.get("https://elsewhere.test/x", json={"stolen": True})
    http = client()

    with pytest.raises(BadResponse) as caught:
        http.get("/x")

    assert caught.value.status_code == 302
    assert "redirected to https://elsewhere.test/x" in str(caught.value)
    assert [call.request.url for call in server.calls] == [f"{BASE}/x"]
    server.remove(responses.GET, "https://elsewhere.test/x")


def test_a_200_that_is_not_json_is_a_bad_response(server):
    server.get(f"{BASE}/x", body="<html>maintenance</html>")

    with pytest.raises(BadResponse) as caught:
        client().get("/x")

    assert str(caught.value) == "svc: HTTP 200 but the body is not JSON"


def test_a_server_that_trickles_its_answer_cannot_hold_a_call_past_its_timeout():
    """Headers at once, then one byte every 0.2 s: each read is quick, the whole is not."""
    import socket
    import threading
    import time

    from tradecycle.connectors.http import HttpClient, ServiceDown

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        body = b'{"c": 1.0}' + b" " * 200
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:
            if stop.is_set():
                break
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    client = HttpClient("finnhub", f"http://127.0.0.1:{listener.getsockname()[1]}", HttpSettings(timeout_seconds=1.0, max_retries=0))
    started = time.monotonic()
    try:
        with pytest.raises(ServiceDown, match="no answer within") as caught:
            client.get("/quote")
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 2.5  # timeout + connect allowance, not 200 bytes x 0.2 s
    assert caught.value.may_have_arrived


def test_a_netrc_entry_for_the_host_never_replaces_the_key_we_send(server, tmp_path, monkeypatch):
    """requests' default: credentials in ~/.netrc for the host become a Basic Authorization header."""
    (tmp_path / ".netrc").write_text("machine api.example.test login someone password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    server.get(f"{BASE}/things", json={"a": 1})

    HttpClient("svc", BASE, fast_settings(), {"Authorization": f"Bearer {SECRET}"}).get("/things")

    assert server.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("no_proxy, used", [("", {"https": "http://proxy.example.test:3128"}), ("api.example.test", {})])
def test_proxy_variables_still_apply_and_so_does_no_proxy(server, monkeypatch, no_proxy, used):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    server.get(f"{BASE}/things", json={"a": 1})

    client().get("/things")

    assert {k: v for k, v in server.calls[0].request.req_kwargs["proxies"].items() if v} == used
