"""Budget alerts also go to a webhook (a JSON POST) and by e-mail, when configured; a delivery that
fails is logged and never fails the generation."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from email import message_from_bytes

import pytest
from pydantic import SecretStr

from core.studio import Studio
from tests.providers.fakes.server import FakeVendor, Recorded, Reply, serve

FOX = {"project": "Trailer", "model": "flux", "prompt": "a fox"}


def _eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("nothing arrived in time")
        time.sleep(0.02)


def test_a_threshold_reached_is_posted_to_the_webhook(priced: Studio) -> None:
    receiver = FakeVendor()

    @receiver.route("POST", "/hooks/budget")
    def _accept(request: Recorded) -> Reply:
        return Reply(204)

    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 80_000)
    with serve(receiver):
        priced.settings.alert_webhook_url = f"{receiver.url}/hooks/budget"
        priced.generate(owner, FOX)  # $0.04 of $0.08: 50%
        _eventually(lambda: len(receiver.requests) == 1)
    body = receiver.last.json()
    assert body["type"] == "budget_alert"
    assert (body["organization"], body["threshold"], body["spent_micros"], body["limit_micros"]) == (
        "Acme",
        50,
        40_000,
        80_000,
    )
    assert (
        body["message"] == "The project 'Trailer' monthly budget reached 50%: $0.04 of its $0.08 limit spent."
    )


def test_a_webhook_that_fails_does_not_fail_the_generation(
    priced: Studio, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = FakeVendor()

    @receiver.route("POST", "/hooks/budget")
    def _refuse(request: Recorded) -> Reply:
        return Reply(500, {"error": "down"})

    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 40_000)
    with serve(receiver):
        priced.settings.alert_webhook_url = f"{receiver.url}/hooks/budget"
        result = priced.generate(owner, FOX)
        _eventually(lambda: "webhook failed" in caplog.text)
    assert result.actual_cost_micros == 40_000
    assert len(priced.alerts(owner)) == 3  # stored all the same


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_threshold_reached_is_sent_by_email(priced: Studio) -> None:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    received: list[bytes] = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope) -> str:
            received.append(envelope.content)
            return "250 OK"

    port = _free_port()
    controller = controller_module.Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        priced.settings.smtp_url = SecretStr(f"smtp://127.0.0.1:{port}")
        priced.settings.alert_email_to = "finance@example.com"
        owner = priced.principal("owner@example.com")
        priced.set_budget(owner, "org", None, 40_000, thresholds=[100])
        priced.generate(owner, FOX)
        _eventually(lambda: len(received) == 1)
    finally:
        controller.stop()
    mail = message_from_bytes(received[0])
    assert mail["To"] == "finance@example.com"
    assert mail["Subject"] == "[Acme] budget at 100%"
    assert "organization 'Acme' monthly budget reached 100%" in mail.get_payload()
