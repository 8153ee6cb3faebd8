"""The one door. Every UI, the CLI and the REST API go through `Studio`.

It validates, authorizes, prices, routes to the provider, records and stores; nothing else in
the product writes a generation or an asset.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from core import accounts, analytics, generations, library, model_library, projects
from core.accounts import Principal
from core.errors import CreatorError, InvalidInput, ProviderError
from core.params import validate_params
from core.pricing import PriceEntry, cost_of, describe_price, prices_in_force
from core.providers import ProviderRegistry, TinyModelBuilder
from core.settings import Settings
from core.types import (
    CancelToken,
    GenerationStatus,
    ModelRef,
    ModelSpec,
    ProgressCallback,
    ProviderRequest,
    Role,
    Usage,
    no_progress,
)
from db.storage import BlobStorage

MAX_SEED = 2**32 - 1


class GenerateInput(BaseModel):
    """A generation request as it arrives from any door; checked before anything happens."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    project: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=4000)
    negative_prompt: str = Field(default="", max_length=4000)
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


@dataclass(frozen=True)
class ModelInfo:
    """A model as the UIs show it: what it does, what it takes and what it costs."""

    ref: ModelRef
    spec: ModelSpec
    prices: list[PriceEntry] = field(default_factory=list)

    @property
    def price_text(self) -> str:
        return describe_price(self.prices)


class Studio:
    """Creator Workspace's public API. Build one with `core.composition.build_studio`."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        storage: BlobStorage,
        registry: ProviderRegistry,
        catalog: list[PriceEntry],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.storage = storage
        self.registry = registry
        self.catalog = catalog

    # --- accounts -------------------------------------------------------------------------
    def create_user(
        self, email: str, password: str, org: str | None = None, role: Role = Role.OWNER
    ) -> Principal:
        """A new local account, member of `org` (created when new) with `role`."""
        with self.engine.begin() as conn:
            return accounts.create_user(conn, email, password, org, Role(role))

    def sign_in(self, email: str, password: str) -> Principal:
        """The principal for a correct e-mail and password."""
        with self.engine.begin() as conn:
            return accounts.authenticate(conn, email, password)

    def principal(self, email: str) -> Principal:
        """The principal of an already authenticated user (by e-mail)."""
        with self.engine.begin() as conn:
            return accounts.principal_for(conn, email)

    def sole_principal(self) -> Principal:
        """The only member, for scripts on a one-person install; InvalidInput when there are more."""
        with self.engine.begin() as conn:
            return accounts.sole_principal(conn)

    def ensure_first_owner(self) -> tuple[str, str] | None:
        """On a first run, create an owner account and return its e-mail and password."""
        with self.engine.begin() as conn:
            if accounts.user_count(conn):
                return None
            password = accounts.generate_password()
            accounts.create_user(conn, "owner@localhost.localdomain", password, "My studio", Role.OWNER)
            return "owner@localhost.localdomain", password

    # --- projects -------------------------------------------------------------------------
    def projects(self, principal: Principal) -> list[projects.ProjectInfo]:
        with self.engine.begin() as conn:
            return projects.list_projects(conn, principal)

    def create_project(self, principal: Principal, name: str) -> projects.ProjectInfo:
        with self.engine.begin() as conn:
            return projects.create_project(conn, principal, name)

    # --- models ---------------------------------------------------------------------------
    def add_model(self, source: str, name: str | None = None, provider: str = "diffusers") -> ModelInfo:
        """Make a Hub id, local folder or vendor model available under a name."""
        source = (source or "").strip()
        if not source:
            raise InvalidInput("Say which model to add: a Hub id or a local folder.")
        if Path(source).expanduser().exists():
            source = str(Path(source).expanduser().resolve())
        ref = self.registry.get(provider).resolve(source)
        if name:
            ref = ModelRef(model_library.check_model_name(name), ref.provider, ref.source, ref.task)
        with self.engine.begin() as conn:
            model_library.add_model(conn, ref)
        return self.model(ref.name)

    def models(self) -> list[ModelInfo]:
        """Every model available, with its parameters and the price in force today."""
        with self.engine.begin() as conn:
            refs = model_library.list_models(conn)
        return [self._model_info(ref) for ref in refs]

    def model(self, name: str) -> ModelInfo:
        with self.engine.begin() as conn:
            ref = model_library.get_model(conn, name)
        return self._model_info(ref)

    def _model_info(self, ref: ModelRef) -> ModelInfo:
        spec = self.registry.get(ref.provider).describe(ref)
        today = datetime.now(UTC).date()
        return ModelInfo(ref, spec, prices_in_force(self.catalog, ref.provider, ref.name, today))

    def build_tiny_model(self, path: Path, provider: str = "diffusers") -> str:
        """Write a tiny random-weight model for demos and tests; returns its source."""
        builder = self.registry.get(provider)
        if not isinstance(builder, TinyModelBuilder):
            raise InvalidInput(f"The {provider} provider cannot build tiny models.")
        return builder.build_tiny(Path(path).expanduser())

    # --- generation -----------------------------------------------------------------------
    def estimate(self, model: str, params: dict[str, Any]) -> int | None:
        """The expected cost in micro-USD of running `model` with `params`; None if unknown."""
        info = self.model(model)
        checked = validate_params(info.spec, params)
        return self._estimate(info, checked)

    def _estimate(self, info: ModelInfo, params: dict[str, Any]) -> int | None:
        if not info.prices:
            return None
        if any(p.unit == "gpu_hour" for p in info.prices):
            with self.engine.begin() as conn:
                per_step = generations.recent_gpu_seconds_per_step(conn, info.ref.name)
            if per_step is None:
                return None
            steps = float(params.get("steps", 1) or 1)
            return cost_of(info.prices, Usage(gpu_seconds=per_step * steps, images=1))
        return cost_of(info.prices, Usage(images=1))

    def generate(
        self,
        principal: Principal,
        request: GenerateInput | dict[str, Any],
        *,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> generations.GenerationInfo:
        """Validate, authorize, price, run, store and record one generation."""
        req = _checked(request)
        principal.require(Role.CREATOR, "generate")
        cancel = cancel or CancelToken()
        with self.engine.begin() as conn:
            project = projects.find_project(conn, principal, req.project)
        info = self.model(req.model)
        params = validate_params(info.spec, req.params)
        unpriced = not info.prices
        if unpriced and not self.settings.allow_unpriced_models:
            raise InvalidInput(
                f"No price is in force for {info.ref.name}; an operator must add one to the "
                "price catalog (or allow unpriced models) before it can be used."
            )
        estimate = self._estimate(info, params)
        seed = req.seed if req.seed is not None else secrets.randbelow(MAX_SEED + 1)
        with self.engine.begin() as conn:
            generation_id = generations.start_generation(
                conn,
                principal,
                project.id,
                info.ref,
                req.prompt,
                req.negative_prompt,
                params,
                seed,
                estimate,
                unpriced,
            )
        provider = self.registry.get(info.ref.provider)
        call = ProviderRequest(info.ref, req.prompt, params, seed, req.negative_prompt)
        try:
            result = provider.generate(call, progress=progress, cancel=cancel)
        except CreatorError as exc:
            self._record_failure(generation_id, exc)
            raise
        except Exception as exc:
            error = ProviderError(f"{info.ref.provider} failed unexpectedly ({type(exc).__name__}).")
            self._record_failure(generation_id, error)
            raise error from exc
        recipe = {
            "generation_id": generation_id,
            "provider": info.ref.provider,
            "model": info.ref.name,
            "task": str(info.ref.task),
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "params": params,
            "seed": result.seed or seed,
        }
        cost = cost_of(info.prices, result.usage)
        with self.engine.begin() as conn:
            for output in result.outputs:
                library.store_output(conn, self.storage, principal, project.id, generation_id, output, recipe)
            generations.finish_generation(
                conn, generation_id, seed=result.seed or seed, usage=result.usage, cost=cost
            )
            return generations.get_generation(conn, principal, generation_id)

    def _record_failure(self, generation_id: str, error: CreatorError) -> None:
        status = GenerationStatus.CANCELED if error.code == "canceled" else GenerationStatus.FAILED
        with self.engine.begin() as conn:
            generations.fail_generation(
                conn, generation_id, status=status, code=error.code, message=error.message
            )

    def generations(
        self, principal: Principal, project: str | None = None, limit: int = 50
    ) -> list[generations.GenerationInfo]:
        """The latest generations of the organization or one project, newest first."""
        with self.engine.begin() as conn:
            project_id = projects.find_project(conn, principal, project).id if project else None
            return generations.list_generations(conn, principal, project_id, limit)

    def asset_path(self, principal: Principal, asset_id: str) -> Path:
        """Where an asset of the principal's organization lies on this machine."""
        with self.engine.begin() as conn:
            asset = library.find_asset(conn, principal, asset_id)
        path = self.storage.local_path(asset.storage_key)
        if path is None:
            raise InvalidInput("This storage backend keeps no local files.")
        return path

    def asset_bytes(self, principal: Principal, asset_id: str) -> bytes:
        with self.engine.begin() as conn:
            asset = library.find_asset(conn, principal, asset_id)
        return self.storage.get(asset.storage_key)

    # --- analytics ------------------------------------------------------------------------
    def spend_by_day(self, principal: Principal, days: int = 30) -> pd.DataFrame:
        """Spend per day (micro-USD), generations and unpriced runs, aggregated in SQL."""
        principal.require(Role.MANAGER, "see the organization's spend")
        with self.engine.connect() as conn:
            return analytics.spend_by_day(conn, principal.org_id, days)

    def recent_generations_frame(self, principal: Principal, limit: int = 100) -> pd.DataFrame:
        """The organization's latest generations as a table."""
        principal.require(Role.MANAGER, "see the organization's generations")
        with self.engine.connect() as conn:
            return analytics.recent_generations(conn, principal.org_id, limit)


def _checked(request: GenerateInput | dict[str, Any]) -> GenerateInput:
    if isinstance(request, GenerateInput):
        return request
    try:
        return GenerateInput.model_validate(request)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise InvalidInput(f"{where}: {first['msg']}") from exc
