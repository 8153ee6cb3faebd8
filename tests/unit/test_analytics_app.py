"""The analytics dashboard, driven by Streamlit's AppTest against a real SQLite database."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io
import pytest
import sqlalchemy as sa
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from analytics_ui.charts import EMPTY_SPEND_TITLE
from core.composition import build_studio
from core.errors import ProviderError
from core.money import format_usd
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
from core.types import (
    ModelRef,
    ModelSpec,
    Output,
    ProviderRequest,
    ProviderResult,
    Role,
    Task,
    Usage,
)

APP = str(Path(__file__).resolve().parents[2] / "analytics_ui" / "app.py")
PASSWORD = "correct horse battery"
OWNER = "owner@example.com"
MANAGER = "manager@example.com"
CREATOR = "maker@example.com"
VIEWER = "viewer@example.com"
NEWCOMER = "new@example.com"


class InstantProvider:
    """A provider that answers at once with an 8×8 PNG and the GPU time named in the prompt."""

    local = True

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self, model: ModelRef) -> ModelSpec:
        return ModelSpec(Task.TEXT_TO_IMAGE, params=())

    def resolve(self, source: str) -> ModelRef:
        return ModelRef(source, self.name, source, Task.TEXT_TO_IMAGE)

    def generate(self, request: ProviderRequest, *, progress: object, cancel: object) -> ProviderResult:
        if request.model.name == "broken":
            raise ProviderError("The broken model always fails.")
        png = io.BytesIO()
        Image.new("RGB", (8, 8), "red").save(png, format="PNG")
        gpu_seconds = float(request.prompt.rsplit(" ", 1)[-1])
        return ProviderResult(
            [Output(png.getvalue(), "image/png", 8, 8)], Usage(gpu_seconds=gpu_seconds, images=1)
        )


@dataclass
class Dashboard:
    home: Path
    database_url: str


def make_generations(studio: Studio) -> None:
    """Acme Studio: two priced runs, one unpriced, one failed; Other Co: one priced run."""
    owner = studio.create_user(OWNER, PASSWORD, "Acme Studio", Role.OWNER)
    studio.create_user(MANAGER, PASSWORD, "Acme Studio", Role.MANAGER)
    maker = studio.create_user(CREATOR, PASSWORD, "Acme Studio", Role.CREATOR)
    studio.create_user(VIEWER, PASSWORD, "Acme Studio", Role.VIEWER)
    other = studio.create_user("other@example.com", PASSWORD, "Other Co", Role.OWNER)
    studio.create_user(NEWCOMER, PASSWORD, "Empty Co", Role.OWNER)
    studio.create_project(owner, "Launch")
    studio.create_project(other, "Elsewhere")
    studio.add_model("tiny-priced", provider="diffusers")
    studio.add_model("broken", provider="diffusers")
    studio.add_model("sketch", provider="instant")

    def run(who: object, project: str, model: str, prompt: str) -> None:
        studio.generate(who, {"project": project, "model": model, "prompt": prompt, "seed": 7})

    run(maker, "Launch", "tiny-priced", "a red fox 30")  # 30 GPU-s at $0.60/h = $0.0050
    run(owner, "Launch", "tiny-priced", "a blue whale 12")  # $0.0020
    run(maker, "Launch", "sketch", "a quick sketch 1")  # unpriced provider
    with pytest.raises(ProviderError):
        run(owner, "Launch", "broken", "a failing run 1")
    run(other, "Elsewhere", "tiny-priced", "someone else's spend 3600")  # $0.60, not Acme's


@pytest.fixture(scope="module")
def acme_home(tmp_path_factory: pytest.TempPathFactory) -> Dashboard:
    """A data directory with generations made through the one door; the tests only read it."""
    home = tmp_path_factory.mktemp("analytics-home")
    settings = Settings(CREATOR_HOME=home, DATABASE_URL=None, CREATOR_ALLOW_UNPRICED_MODELS=True)
    registry = ProviderRegistry(
        {"diffusers": lambda: InstantProvider("diffusers"), "instant": lambda: InstantProvider("instant")}
    )
    studio = build_studio(settings, registry=registry)
    make_generations(studio)
    studio.engine.dispose()
    return Dashboard(home, settings.resolved_database_url)


@pytest.fixture
def dashboard(acme_home: Dashboard, monkeypatch: pytest.MonkeyPatch) -> Dashboard:
    """The app pointed at that data directory by the environment, with clean Streamlit caches."""
    monkeypatch.chdir(acme_home.home)  # no stray .env
    monkeypatch.setenv("CREATOR_HOME", str(acme_home.home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CREATOR_STORAGE_DIR", raising=False)
    # The app builds its own Studio once per process, from the environment.
    st.cache_resource.clear()
    st.cache_data.clear()
    return acme_home


def signed_in(email: str, password: str = PASSWORD) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="sign_in_email").input(email)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click()
    return at.run()


def chart(at: AppTest) -> go.Figure:
    """The plotly figure the page drew."""
    (element,) = at.get("plotly_chart")
    return plotly.io.from_json(element.proto.spec)


def numbers(values: Any) -> list[float]:
    """A plotly array, which plotly's JSON may pack as base64 ("bdata") bytes."""
    if isinstance(values, dict):
        return list(np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]))
    return list(values)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_dashboard_opens_on_a_sign_in_form(dashboard: Dashboard) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()

    assert not at.exception
    assert at.title[0].value == "Creator Workspace"
    assert [t.label for t in at.text_input] == ["E-mail", "Password"]
    assert not at.metric


def test_wrong_password_is_refused_with_a_plain_message(dashboard: Dashboard) -> None:
    at = signed_in(OWNER, "not the password")

    assert not at.exception
    assert [e.value for e in at.error] == ["Wrong e-mail or password."]
    assert not at.metric


@pytest.mark.parametrize("email", [CREATOR, VIEWER])
def test_creators_and_viewers_are_told_the_dashboard_is_for_managers(
    dashboard: Dashboard, email: str
) -> None:
    at = signed_in(email)

    assert not at.exception
    (error,) = at.error
    assert "for owners and managers" in error.value
    assert "Acme Studio" in error.value
    assert not at.metric
    assert "principal" not in at.session_state


def test_owner_sees_the_spend_the_database_holds(dashboard: Dashboard) -> None:
    at = signed_in(OWNER)

    assert not at.exception
    assert not at.error
    engine = sa.create_engine(dashboard.database_url)
    with engine.connect() as conn:
        spend, runs, failed, unpriced = conn.execute(
            sa.text(
                "SELECT COALESCE(SUM(CASE WHEN g.unpriced THEN 0 ELSE g.actual_cost_micros END), 0),"
                " COUNT(*), SUM(g.status = 'failed'), SUM(g.unpriced)"
                " FROM generations g JOIN organizations o ON o.id = g.org_id"
                " WHERE o.name = 'Acme Studio'"
            )
        ).one()
    engine.dispose()
    assert (spend, runs, failed, unpriced) == (7000, 4, 1, 1)
    shown = metrics(at)
    assert shown["Spend · last 30 days"] == format_usd(spend) == "$0.0070"
    assert shown["Generations"] == "4"
    assert shown["Failed"] == "1"
    assert shown["Unpriced runs"] == "1"
    assert "1 run(s) used a model with no price" in at.info[0].value
    (bars,) = chart(at).data
    assert sum(numbers(bars.y)) * 1_000_000 == pytest.approx(spend)


def test_owner_sees_the_latest_generations_with_costs_in_dollars(dashboard: Dashboard) -> None:
    at = signed_in(OWNER)

    table = at.dataframe[0].value
    assert list(table["Prompt"]) == [
        "a failing run 1",
        "a quick sketch 1",
        "a blue whale 12",
        "a red fox 30",
    ]
    assert list(table["Cost"]) == ["—", "unpriced", "$0.0020", "$0.0050"]
    assert list(table["Status"]) == ["failed", "succeeded", "succeeded", "succeeded"]
    assert set(table["Member"]) == {OWNER, CREATOR}
    assert "someone else's spend 3600" not in set(table["Prompt"])


def test_a_manager_sees_the_dashboard_too(dashboard: Dashboard) -> None:
    at = signed_in(MANAGER)

    assert not at.error
    assert metrics(at)["Spend · last 30 days"] == "$0.0070"
    assert at.sidebar.text[0].value == f"{MANAGER} · manager"


def test_an_organization_without_generations_sees_zero_and_a_helpful_chart(
    dashboard: Dashboard,
) -> None:
    at = signed_in(NEWCOMER)

    assert not at.exception
    assert metrics(at) == {
        "Spend · last 30 days": "$0.00", "Generations": "0", "Failed": "0", "Unpriced runs": "0",
    }  # fmt: skip
    assert not at.dataframe
    assert any("Nothing generated yet" in c.value for c in at.caption)
    assert chart(at).layout.title.text == EMPTY_SPEND_TITLE


def test_signing_out_returns_to_the_sign_in_form(dashboard: Dashboard) -> None:
    at = signed_in(OWNER)

    at.sidebar.button[0].click()
    at.run()

    assert not at.exception
    assert "principal" not in at.session_state
    assert at.title[0].value == "Creator Workspace"
    assert not at.metric


def test_changing_the_period_requeries_the_spend(dashboard: Dashboard) -> None:
    at = signed_in(OWNER)

    at.selectbox(key="overview_days").select(7)
    at.run()

    assert not at.exception
    assert metrics(at)["Spend · last 7 days"] == "$0.0070"


def test_the_signed_in_dashboard_does_not_import_torch(dashboard: Dashboard) -> None:
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=60).run()
at.text_input(key="sign_in_email").input({OWNER!r})
at.text_input(key="sign_in_password").input({PASSWORD!r})
at.button[0].click()
at.run()
assert not at.exception, at.exception
assert len(at.metric) == 4, "the overview did not draw"
assert "torch" not in sys.modules, "the dashboard imported torch"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_overview_page_cannot_be_opened_without_signing_in(dashboard: Dashboard) -> None:
    at = AppTest.from_file(APP, default_timeout=60)

    at.switch_page("views/overview.py").run()

    assert not at.exception
    assert not at.metric
    assert [t.label for t in at.text_input] == ["E-mail", "Password"]
