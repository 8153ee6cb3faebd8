"""A creator signs in to the workspace in Chromium, makes a project, generates an image with the
tiny model and reads how it was made and what it cost."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from core.composition import build_studio
from core.generations import GenerationInfo
from core.settings import Settings
from tests.e2e.conftest import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    free_port,
    start_server,
    stop_server,
)
from workspace_ui.formatting import money_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GENERATION_TIMEOUT_MS = 180_000  # the first run loads the tiny pipeline on CPU
_project_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def workspace_url(creator_env: dict[str, str]) -> Iterator[str]:
    """`creator workspace` serving the test data directory, as a user would start it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(creator_env, ["workspace", "--port", str(port)], url + "/healthz")
    yield url
    stop_server(proc)


def generations_in(creator_env: dict[str, str], project: str) -> list[GenerationInfo]:
    """What the server recorded for a project, read through the same Studio door."""
    settings = Settings(creator_home=Path(creator_env["CREATOR_HOME"]), database_url=None)
    studio = build_studio(settings, migrate=False)
    return studio.generations(studio.principal(OWNER_EMAIL), project)


def sign_in(page: Any, url: str, password: str = OWNER_PASSWORD) -> None:
    page.goto(url)
    page.get_by_label("username").fill(OWNER_EMAIL)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def create_project(page: Any) -> str:
    name = f"Spring campaign {next(_project_numbers)}"
    page.get_by_label("New project").fill(name)
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("#project input")).to_have_value(name)
    return name


def test_creator_generates_an_image_and_sees_its_seed_and_cost(
    page: Any, workspace_url: str, creator_env: dict[str, str], screenshots_dir: Path
) -> None:
    sign_in(page, workspace_url)
    account = page.locator("#account")
    account.get_by_text(OWNER_EMAIL).wait_for()
    assert "Acme Studio" in account.inner_text()
    assert account.get_by_role("link", name="Sign out").get_attribute("href") == "/logout"

    project = create_project(page)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse on a cliff at dusk, oil painting")
    page.locator("#model input").click()
    page.get_by_role("option", name="tiny-sd", exact=False).click()
    page.locator("#param-number-0").get_by_text("Width").wait_for()  # the model's own controls
    assert "cost" in page.locator("#estimate").inner_text().lower()

    page.get_by_role("button", name="Generate").click()
    page.locator("#gallery img").first.wait_for(timeout=GENERATION_TIMEOUT_MS)
    page.locator("#generate-status").get_by_text("Done").wait_for()

    [generation] = generations_in(creator_env, project)
    assert generation.status == "succeeded" and generation.seed is not None
    page.locator("#gallery img").first.click()
    details = page.locator("#details")
    details.get_by_text(generation.model).wait_for()
    text = details.inner_text()
    assert "a lighthouse on a cliff at dusk" in text
    assert str(generation.seed) in text
    assert money_text(generation.actual_cost_micros) in text
    assert "Duration" in text and "steps 4" in text

    page.screenshot(path=str(screenshots_dir / "workspace.png"), full_page=True)

    account.get_by_role("link", name="Sign out").click()
    page.get_by_role("button", name="Login").wait_for()


def test_a_wrong_password_does_not_get_in(page: Any, workspace_url: str) -> None:
    sign_in(page, workspace_url, password="not the password")
    page.get_by_text("Incorrect Credentials").wait_for()
    assert page.locator("#account").count() == 0
    assert page.get_by_role("button", name="Login").is_visible()


def test_generating_without_a_prompt_says_why_and_creates_nothing(
    page: Any, workspace_url: str, creator_env: dict[str, str]
) -> None:
    sign_in(page, workspace_url)
    project = create_project(page)
    page.get_by_label("Prompt", exact=True).fill("   ")
    page.get_by_role("button", name="Generate").click()
    status = page.locator("#generate-status")
    status.get_by_text("Write a prompt first").wait_for()
    assert "Please check your input" in status.inner_text()
    assert page.get_by_test_id("toast-text").get_by_text("Write a prompt first").is_visible()
    assert page.locator("#gallery img").count() == 0
    assert generations_in(creator_env, project) == []
