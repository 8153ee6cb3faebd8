"""The Provider protocol and the registry that finds providers through entry points.

Built-in providers register under the `creator.providers` entry-point group exactly as a
third-party package would; the core never imports a provider module by name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.errors import NotFound
from core.types import CancelToken, Credentials, ModelRef, ModelSpec, ProgressCallback, ProviderRequest, Task
from core.types import ProviderResult as ProviderResult

ENTRY_POINT_GROUP = "creator.providers"


@runtime_checkable
class Provider(Protocol):
    """A family of models that can make media. One module per provider implements this."""

    name: str
    #: True when the provider runs on this machine (GPU time is the cost), False for hosted APIs,
    #: which are only called with `ProviderRequest.credentials` set.
    local: bool

    def describe(self, model: ModelRef) -> ModelSpec:
        """What the model does and which parameters it takes (without loading it)."""
        ...

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check that a Hub id, folder or vendor id can serve `task` (or its natural task)."""
        ...

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Make the outputs; raise a `core.errors.ProviderError` (or `Canceled`) on failure."""
        ...


@runtime_checkable
class TinyModelBuilder(Protocol):
    """Optional: a local provider that can write a tiny random-weight model for demos and tests."""

    def build_tiny(self, path: Path) -> str:
        """Write the model into `path` and return the source string to register it with."""
        ...


@runtime_checkable
class KeyChecker(Protocol):
    """Optional: a hosted provider that can test a key with its cheapest call."""

    def check_key(self, credentials: Credentials) -> None:
        """Return if the key works; raise ProviderAuthFailed (or another ProviderError) if not."""
        ...


ProviderFactory = Callable[[], Provider]


class ProviderRegistry:
    """Provider instances by name, discovered from entry points (or added directly)."""

    def __init__(self, factories: dict[str, ProviderFactory] | None = None) -> None:
        self._factories: dict[str, ProviderFactory] = dict(factories or {})
        self._instances: dict[str, Provider] = {}

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> ProviderRegistry:
        """Every provider installed in this environment."""
        factories: dict[str, ProviderFactory] = {}
        for ep in entry_points(group=group):
            factories[ep.name] = _lazy_factory(ep)
        return cls(factories)

    def add(self, name: str, factory: ProviderFactory) -> None:
        """Register a provider under a name (entry points do this for installed packages)."""
        self._factories[name] = factory
        self._instances.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Provider:
        """The provider called `name`, created on first use."""
        if name not in self._instances:
            factory = self._factories.get(name)
            if factory is None:
                known = ", ".join(self.names()) or "none"
                raise NotFound(f"No provider called '{name}' is installed (installed: {known}).")
            self._instances[name] = factory()
        return self._instances[name]


def _lazy_factory(ep: object) -> ProviderFactory:
    def factory() -> Provider:
        provider_cls = ep.load()  # type: ignore[attr-defined]
        return provider_cls()

    return factory
