"""Fixtures for provider tests: tiny real models built offline, once per session."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.types import ModelRef
from providers.diffusers_local import DiffusersProvider

# huggingface_hub reads this once, on first import (our providers import it lazily, later).
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_sd_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny random-weight Stable Diffusion pipeline saved with save_pretrained."""
    pytest.importorskip("diffusers", reason="the local extra (torch, diffusers) is not installed")
    import torch

    # Tiny models gain nothing from threads, and on small shared machines torch's thread pool
    # stalls whenever another process takes a core (calls went from 0.1 s to 2 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("models") / "tiny-sd"
    yield Path(DiffusersProvider().build_tiny(folder))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_folder: Path) -> ModelRef:
    """The tiny pipeline as the core would register it."""
    return DiffusersProvider().resolve(str(tiny_sd_folder))
