"""Browser fixtures: Debian's Chromium driven by Playwright, and the apps started as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("CREATOR_TEST_CHROMIUM", "/usr/bin/chromium")
CREATOR = str(Path(sys.executable).parent / "creator")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "correct horse battery"

pytestmark = pytest.mark.e2e


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_creator(env: dict[str, str], *args: str, input: str | None = None) -> str:
    """Run the `creator` CLI like a user would; fail the test with its output if it fails."""
    done = subprocess.run([CREATOR, *args], env=env, input=input, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"creator {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Wait until `url` answers 200, or fail with the server's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"{url} did not answer within {timeout} s")


def start_server(env: dict[str, str], args: list[str], url: str) -> subprocess.Popen:
    """Start `creator ARGS` in the background and wait for it to serve `url`."""
    proc = subprocess.Popen(
        [CREATOR, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for_http(url, proc)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def creator_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh data directory with a tiny model added and an owner account, set up by the CLI."""
    home = tmp_path_factory.mktemp("creator-home")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CREATOR_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    run_creator(env, "models", "build-tiny", str(home / "tiny-sd"))
    run_creator(env, "models", "add", str(home / "tiny-sd"), "--name", "tiny-sd")
    run_creator(
        env,
        "users",
        "add",
        OWNER_EMAIL,
        "--org",
        "Acme Studio",
        "--role",
        "owner",
        "--password-stdin",
        input=OWNER_PASSWORD + "\n",
    )
    return env


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium; tests open their own pages from it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (make test does).")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh browser page with a desktop-sized viewport."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
