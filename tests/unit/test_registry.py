"""Providers are found through the `creator.providers` entry-point group, like any plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from core.errors import NotFound
from core.providers import ProviderRegistry


def test_a_third_party_provider_declared_by_entry_point_is_discovered(tmp_path: Path) -> None:
    # A plugin package as pip would leave it: the module plus a dist-info with entry_points.txt.
    (tmp_path / "acme_provider.py").write_text(
        textwrap.dedent(
            """
            from core.types import ModelRef, ModelSpec, Task

            class AcmeProvider:
                name = "acme"
                local = False

                def resolve(self, source, task=None):
                    return ModelRef(source, self.name, source, task or Task.TEXT)

                def describe(self, model):
                    return ModelSpec(Task.TEXT, ())

                def generate(self, request, *, progress, cancel):
                    raise NotImplementedError
            """
        )
    )
    dist = tmp_path / "acme_provider-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-provider\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[creator.providers]\nacme = acme_provider:AcmeProvider\n")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from core.providers import ProviderRegistry
        registry = ProviderRegistry.from_entry_points()
        provider = registry.get("acme")
        print(type(provider).__name__, provider.resolve("acme-1").provider, "diffusers" in registry.names())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AcmeProvider", "acme", "True"]


def test_built_in_providers_register_through_the_same_mechanism() -> None:
    names = ProviderRegistry.from_entry_points().names()
    assert {"diffusers", "openai", "elevenlabs", "anthropic", "huggingface", "replicate"} <= set(names)


def test_an_unknown_provider_is_a_clear_not_found() -> None:
    registry = ProviderRegistry({})
    try:
        registry.get("nope")
    except NotFound as exc:
        assert "No provider called 'nope'" in exc.message
    else:
        raise AssertionError("expected NotFound")
