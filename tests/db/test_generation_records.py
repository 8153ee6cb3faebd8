"""Studio.generate records every generation with its cost, or its failure, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.errors import Canceled, Forbidden, InvalidInput, NotFound, ProviderError
from core.library import read_recipe
from core.studio import Studio
from core.types import CancelToken, GenerationStatus, Role
from db.schema import assets, generations
from tests.support.instant_provider import InstantProvider


def _owner(studio: Studio, email: str = "owner@example.com", org: str = "Acme"):
    principal = studio.create_user(email, "correct horse battery", org, Role.OWNER)
    studio.create_project(principal, "Trailer")
    return principal


def _count(studio: Studio, table) -> int:
    with studio.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_generation_is_recorded_with_asset_seed_and_gpu_cost(studio: Studio) -> None:
    owner = _owner(studio)
    result = studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox", "seed": 1234})
    assert result.status is GenerationStatus.SUCCEEDED
    assert result.seed == 1234
    # 2 GPU-seconds at the catalog's $0.60/hour = $0.000333…, rounded up to whole micro-USD.
    assert result.actual_cost_micros == 334
    assert result.parameters == {"steps": 4, "guidance_scale": 5.0}
    [asset] = result.assets
    data = studio.asset_bytes(owner, asset.id)
    assert data.startswith(b"\x89PNG")
    assert read_recipe(data)["seed"] == 1234
    assert read_recipe(data)["prompt"] == "a fox"
    assert studio.asset_path(owner, asset.id).exists()


def test_second_run_gets_an_estimate_from_the_first(studio: Studio) -> None:
    owner = _owner(studio)
    assert studio.estimate("turbo", {"steps": 4}) is None
    studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    assert studio.estimate("turbo", {"steps": 4}) == 334
    assert studio.estimate("turbo", {"steps": 8}) == 667


def test_provider_failure_is_recorded_and_raised(studio: Studio, provider: InstantProvider) -> None:
    owner = _owner(studio)
    provider.fail_with = ProviderError("The vendor is down.", retryable=True)
    with pytest.raises(ProviderError, match="vendor is down"):
        studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    [failed] = studio.generations(owner)
    assert failed.status is GenerationStatus.FAILED
    assert failed.error == "The vendor is down."
    assert failed.actual_cost_micros is None
    assert _count(studio, assets) == 0


def test_unexpected_provider_crash_becomes_a_provider_error(
    studio: Studio, provider: InstantProvider
) -> None:
    owner = _owner(studio)
    provider.fail_with = RuntimeError("secret internals sk-live-123")
    with pytest.raises(ProviderError) as info:
        studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    assert "sk-live" not in info.value.message
    assert studio.generations(owner)[0].status is GenerationStatus.FAILED


def test_cancel_is_recorded_as_canceled(studio: Studio) -> None:
    owner = _owner(studio)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Canceled):
        studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "x"}, cancel=token)
    assert studio.generations(owner)[0].status is GenerationStatus.CANCELED


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({"params": {"steps": 0}}, "at least 1"),
        ({"params": {"steps": 2.5}}, "whole number"),
        ({"params": {"guidance_scale": float("nan")}}, "finite"),
        ({"params": {"sampler": "euler"}}, "Unknown parameter"),
        ({"seed": -1}, "seed"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_refused_and_records_nothing(
    studio: Studio, provider: InstantProvider, request_body: dict, message: str
) -> None:
    owner = _owner(studio)
    body = {"project": "Trailer", "model": "turbo", "prompt": "a fox", **request_body}
    with pytest.raises(InvalidInput, match=message):
        studio.generate(owner, body)
    assert _count(studio, generations) == 0
    assert provider.calls == 0


def test_viewer_cannot_generate(studio: Studio, provider: InstantProvider) -> None:
    _owner(studio)
    viewer = studio.create_user("viewer@example.com", "correct horse battery", "Acme", Role.VIEWER)
    with pytest.raises(Forbidden):
        studio.generate(viewer, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    assert provider.calls == 0


def test_another_organization_sees_nothing(studio: Studio) -> None:
    owner = _owner(studio)
    result = studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    stranger = _owner(studio, "stranger@example.com", "Rival")
    assert studio.generations(stranger) == []
    with pytest.raises(NotFound):
        studio.asset_bytes(stranger, result.assets[0].id)
    with pytest.raises(NotFound):
        studio.generate(stranger, {"project": result.project_id, "model": "turbo", "prompt": "x"})


def test_unpriced_model_is_refused_unless_allowed(studio: Studio, provider: InstantProvider) -> None:
    owner = _owner(studio)
    studio.catalog = []
    with pytest.raises(InvalidInput, match="No price is in force"):
        studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    assert provider.calls == 0
    studio.settings.allow_unpriced_models = True
    result = studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "a fox"})
    assert result.unpriced and result.actual_cost_micros is None


def test_spend_by_day_sums_priced_runs_in_sql(studio: Studio) -> None:
    owner = _owner(studio)
    for seed in (1, 2, 3):
        studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "x", "seed": seed})
    frame = studio.spend_by_day(owner, days=7)
    assert frame["spend_micros"].sum() == 3 * 334
    assert frame["generations"].sum() == 3
    recent = studio.recent_generations_frame(owner)
    assert list(recent["project"]) == ["Trailer"] * 3
