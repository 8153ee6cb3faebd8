"""The one door. Every UI, the CLI and the REST API go through `Studio`.

It validates, authorizes, prices, routes to the provider, records and stores; nothing else in
the product writes a generation or an asset.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine

from core import accounts, alerts, analytics, generations, library, model_library, projects
from core.accounts import Principal
from core.errors import CreatorError, InvalidInput, ProviderError
from core.params import validate_params
from core.pricing import PriceEntry, cost_of, describe_price, prices_in_force
from core.providers import ProviderRegistry, TinyModelBuilder
from core.route_planning import estimate_cost, plan_routes
from core.router import AttemptRecord, CircuitBreaker, Route, Router
from core.settings import Settings
from core.studio_money import StudioMoney
from core.types import (
    CancelToken,
    ModelRef,
    ModelSpec,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Role,
    Task,
    no_progress,
)
from db.schema import new_id
from db.storage import BlobStorage

MAX_SEED = 2**32 - 1
MAX_INPUT_BYTES = 25_000_000


class GenerateInput(BaseModel):
    """A generation request as it arrives from any door; checked before anything happens."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    project: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1, max_length=4000)
    negative_prompt: str = Field(default="", max_length=4000)
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    # "model": the chosen model, then its fallbacks; "cheapest"/"fastest": every model of its task.
    route: Literal["model", "cheapest", "fastest"] = "model"
    # Files an edit works on, by role ("image", "mask", "audio"); each at most 25 MB.
    inputs: dict[Literal["image", "mask", "audio"], bytes] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _inputs_fit(cls, value: dict[str, bytes]) -> dict[str, bytes]:
        for role, data in value.items():
            if len(data) > MAX_INPUT_BYTES:
                raise ValueError(f"the {role} file is larger than {MAX_INPUT_BYTES // 1_000_000} MB")
        return value


@dataclass(frozen=True)
class ModelInfo:
    """A model as the UIs show it: what it does, what it takes and what it costs."""

    ref: ModelRef
    spec: ModelSpec
    prices: list[PriceEntry] = field(default_factory=list)

    @property
    def price_text(self) -> str:
        return describe_price(self.prices)


class Studio(StudioMoney):
    """Creator Workspace's public API. Build one with `core.composition.build_studio`.

    Budgets, alerts, credits and reservations are in core.studio_money (inherited).
    """

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
        self.router = Router(
            CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s),
            attempts_per_route=settings.retry_attempts,
            max_wait_s=settings.retry_max_wait_s,
        )

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

    def principal(self, email: str, org: str | None = None) -> Principal:
        """The principal of an already authenticated user (by e-mail), in their first or `org`."""
        with self.engine.begin() as conn:
            return accounts.principal_for(conn, email, org)

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
    def add_model(
        self,
        source: str,
        name: str | None = None,
        provider: str = "diffusers",
        task: Task | str | None = None,
        fallbacks: list[str] | None = None,
    ) -> ModelInfo:
        """Make a Hub id, local folder or vendor model available under a name."""
        source = (source or "").strip()
        if not source:
            raise InvalidInput("Say which model to add: a Hub id, a local folder or a vendor model id.")
        if Path(source).expanduser().exists():
            source = str(Path(source).expanduser().resolve())
        try:
            wanted = Task(task) if task else None
        except ValueError as exc:
            raise InvalidInput(
                f"'{task}' is not a task; use one of {', '.join(t.value for t in Task)}."
            ) from exc
        plugin = self.registry.get(provider)
        ref = plugin.resolve(source, wanted) if wanted else plugin.resolve(source)
        if name:
            ref = ModelRef(model_library.check_model_name(name), ref.provider, ref.source, ref.task)
        with self.engine.begin() as conn:
            model_library.add_model(conn, ref, fallbacks=fallbacks)
        return self.model(ref.name)

    def set_fallbacks(self, name: str, fallbacks: list[str]) -> list[str]:
        """The models to try, in order, when `name` fails with a retryable error."""
        with self.engine.begin() as conn:
            return model_library.set_fallbacks(conn, name, fallbacks)

    def fallbacks(self, name: str) -> list[str]:
        with self.engine.begin() as conn:
            model_library.get_model(conn, name)
            return model_library.get_fallbacks(conn, name)

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
        defaults = {p.name: p.default for p in spec.params}
        return ModelInfo(ref, spec, prices_in_force(self.catalog, ref.provider, ref.name, today, defaults))

    def build_tiny_model(self, path: Path, provider: str = "diffusers") -> str:
        """Write a tiny random-weight model for demos and tests; returns its source."""
        builder = self.registry.get(provider)
        if not isinstance(builder, TinyModelBuilder):
            raise InvalidInput(f"The {provider} provider cannot build tiny models.")
        return builder.build_tiny(Path(path).expanduser())

    # --- generation -----------------------------------------------------------------------
    def estimate(self, model: str, params: dict[str, Any], prompt: str = "") -> int | None:
        """The expected cost in micro-USD of running `model` with `params`; None if unknown."""
        info = self.model(model)
        checked = validate_params(info.spec, params)
        today = datetime.now(UTC).date()
        prices = prices_in_force(self.catalog, info.ref.provider, info.ref.name, today, checked)
        with self.engine.begin() as conn:
            return estimate_cost(conn, info.ref, prices, checked, prompt)

    def generate(
        self,
        principal: Principal,
        request: GenerateInput | dict[str, Any],
        *,
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
    ) -> generations.GenerationInfo:
        """Validate, authorize, price, reserve, route (with retries and fallback), store, record
        and settle.

        Before any provider is called, the first route's worst-case estimate is held against every
        budget that applies (and the credits, when the platform pays); a refusal raises
        BudgetExceeded or InsufficientCredits and records nothing. Fallback routes that could cost
        more than what is held are left out, so spending never passes what was reserved.
        """
        req = _checked(request)
        principal.require(Role.CREATOR, "generate")
        cancel = cancel or CancelToken()
        with self.engine.begin() as conn:
            project = projects.find_project(conn, principal, req.project)
        chosen = self.model(req.model)
        params = validate_params(chosen.spec, req.params)
        with self.engine.begin() as conn:
            routes = plan_routes(
                conn, self.registry, self.catalog, self.settings, chosen.ref, params, req.prompt, req.route
            )
            payer = self._payer(conn, principal, project)
        first = routes[0]
        held = self._held_amount(first)
        if payer.needs_hold:  # a fallback may not cost more than what is held
            routes = [first, *(r for r in routes[1:] if self._held_amount(r) <= held)]
        seed = req.seed if req.seed is not None else secrets.randbelow(MAX_SEED + 1)
        if payer.needs_hold:
            self._sweep_expired_holds()
        generation_id, hold_id = new_id(), (new_id() if payer.needs_hold else None)
        # One transaction: the generation row, then the hold; a refused hold rolls back both.
        with self.engine.begin() as conn:
            generations.start_generation(
                conn,
                principal,
                project.id,
                first.model,
                req.prompt,
                req.negative_prompt,
                first.params,
                seed,
                first.estimate,
                not first.prices,
                requested_model=chosen.ref.name,
                generation_id=generation_id,
                hold_id=hold_id,
            )
            if hold_id is not None:
                self._place_hold(conn, payer, hold_id, generation_id, held)

        def call(route: Route) -> ProviderResult:
            provider = self.registry.get(route.model.provider)
            ask = ProviderRequest(
                route.model,
                req.prompt,
                route.params,
                seed,
                req.negative_prompt,
                dict(req.inputs),
                route.credentials,
            )
            try:
                return provider.generate(ask, progress=progress, cancel=cancel)
            except CreatorError:
                raise
            except Exception as exc:  # a provider bug must not escape as a traceback
                raise ProviderError(
                    f"{route.model.provider} failed unexpectedly ({type(exc).__name__})."
                ) from exc

        def on_attempt(record: AttemptRecord) -> None:
            with self.engine.begin() as conn:
                generations.record_attempt(conn, principal, generation_id, record)

        try:
            route, result = self.router.run(routes, call, on_attempt, cancel)
        except CreatorError as exc:
            self._record_failure(principal, generation_id, hold_id, exc)
            raise
        used_seed = result.seed if result.seed is not None else seed
        recipe = {
            "generation_id": generation_id,
            "provider": route.model.provider,
            "model": route.model.name,
            "task": str(route.model.task),
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "params": route.params,
            "seed": used_seed,
        }
        unpriced = not route.prices
        cost = cost_of(route.prices, result.usage)
        fired: list[alerts.AlertInfo] = []
        try:
            with self.engine.begin() as conn:
                for output in result.outputs:
                    library.store_output(
                        conn, self.storage, principal, project.id, generation_id, output, recipe
                    )
                generations.finish_generation(
                    conn,
                    generation_id,
                    seed=used_seed,
                    usage=result.usage,
                    cost=cost,
                    served_by=route.model,
                    params=route.params,
                    unpriced=unpriced,
                )
                fired = self._settle(conn, hold_id, cost)  # last: budget rows stay locked until commit
        except Exception:
            # The vendor did the work (and charged for it) even though we could not store it.
            error = ProviderError("The result could not be stored.")
            self._record_failure(principal, generation_id, hold_id, error, served=True, cost=cost)
            raise
        alerts.deliver_in_background(self.settings, fired, principal.org_name)
        with self.engine.connect() as conn:
            return generations.get_generation(conn, principal, generation_id)

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
