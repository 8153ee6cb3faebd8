"""Studio.generate routes through fallbacks, records every attempt, and charges the model that served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.composition import build_studio
from core.errors import ContentRefused, InvalidInput, ProviderUnavailable
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
from core.types import Role, Task
from db.schema import attempts
from tests.support.instant_provider import InstantProvider


@pytest.fixture
def local() -> InstantProvider:
    return InstantProvider()


@pytest.fixture
def hosted() -> InstantProvider:
    return InstantProvider(name="replicate", local=False)


@pytest.fixture
def routed(
    database_url: str, tmp_path: Path, local: InstantProvider, hosted: InstantProvider
) -> Iterator[Studio]:
    settings = Settings(
        CREATOR_HOME=str(tmp_path / "home"),
        DATABASE_URL=database_url,
        CREATOR_RETRY_MAX_WAIT_S=0,
        CREATOR_PROVIDER_KEYS={"replicate": "r8-secret-key-1234"},
        CREATOR_PROVIDER_BASE_URLS={"replicate": "http://127.0.0.1:9/v1"},
    )
    registry = ProviderRegistry({"diffusers": lambda: local, "replicate": lambda: hosted})
    studio = build_studio(settings, registry=registry)
    studio.add_model("black-forest-labs/flux-schnell", provider="replicate", task=Task.TEXT_TO_IMAGE)
    studio.add_model("stabilityai/sd-turbo", name="turbo", fallbacks=["flux-schnell"])
    owner = studio.create_user("owner@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "Trailer")
    yield studio
    studio.engine.dispose()


def _attempts(studio: Studio) -> list[tuple[str, str, str]]:
    with studio.engine.connect() as conn:
        rows = conn.execute(select(attempts).order_by(attempts.c.number)).all()
    return [(r.model, r.outcome, r.error_code) for r in rows]


def test_a_failing_model_falls_back_and_the_stand_in_is_charged(
    routed: Studio, local: InstantProvider, hosted: InstantProvider
) -> None:
    owner = routed.principal("owner@example.com")
    local.fail_with = ProviderUnavailable("GPU fell over", retryable=True)
    result = routed.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox", "seed": 5})
    assert (result.provider, result.model) == ("replicate", "flux-schnell")
    assert result.actual_cost_micros == 3_000  # Replicate's published $0.003 per image
    assert _attempts(routed) == [
        ("turbo", "failed", "provider_unavailable"),
        ("turbo", "failed", "provider_unavailable"),
        ("flux-schnell", "succeeded", None),
    ]
    # The hosted provider got the operator's key and endpoint; the seed stayed the same.
    [request] = hosted.requests
    assert request.credentials.api_key == "r8-secret-key-1234"
    assert request.credentials.base_url == "http://127.0.0.1:9/v1"
    assert request.seed == 5
    assert "r8-secret" not in repr(request)


def test_a_content_refusal_does_not_fall_back(
    routed: Studio, local: InstantProvider, hosted: InstantProvider
) -> None:
    owner = routed.principal("owner@example.com")
    local.fail_with = ContentRefused("refused by the safety system")
    with pytest.raises(ContentRefused):
        routed.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    assert hosted.calls == 0
    assert routed.generations(owner)[0].error == "refused by the safety system"


def test_a_hosted_model_without_a_key_is_left_out_with_a_reason(
    database_url: str, tmp_path: Path, hosted: InstantProvider
) -> None:
    settings = Settings(CREATOR_HOME=str(tmp_path / "h"), DATABASE_URL=database_url)
    studio = build_studio(settings, registry=ProviderRegistry({"replicate": lambda: hosted}))
    studio.add_model("black-forest-labs/flux-schnell", provider="replicate", task=Task.TEXT_TO_IMAGE)
    owner = studio.create_user("o@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "P")
    with pytest.raises(InvalidInput, match="No replicate key is set"):
        studio.generate(owner, {"project": "P", "model": "flux-schnell", "prompt": "x"})
    assert hosted.calls == 0
    studio.engine.dispose()


def test_cheapest_policy_tries_the_cheaper_model_first(routed: Studio, local: InstantProvider) -> None:
    owner = routed.principal("owner@example.com")
    # Teach the estimator the local model's speed: 2 GPU-seconds for 4 steps ≈ $0.00033 < $0.003.
    routed.generate(owner, {"project": "Trailer", "model": "flux-schnell", "prompt": "warm up"})
    routed.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "warm up"})
    result = routed.generate(
        owner, {"project": "Trailer", "model": "flux-schnell", "prompt": "a fox", "route": "cheapest"}
    )
    assert result.model == "turbo"


def test_fallbacks_must_do_the_same_task(routed: Studio) -> None:
    routed.add_model("openai/whatever", name="a-sound", provider="replicate", task=Task.SOUND_EFFECT)
    with pytest.raises(InvalidInput, match="cannot stand in"):
        routed.set_fallbacks("turbo", ["a-sound"])
    assert routed.fallbacks("turbo") == ["flux-schnell"]
