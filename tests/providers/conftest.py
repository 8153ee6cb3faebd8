"""Fixtures for provider tests: tiny real models built offline, once per session."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.types import ModelRef, Task
from providers.diffusers_local import DiffusersProvider

# huggingface_hub reads this once, on first import (our providers import it lazily, later).
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def one_torch_thread() -> Iterator[None]:
    """torch limited to one thread for the session (skips when torch/diffusers are missing)."""
    pytest.importorskip("diffusers", reason="the local extra (torch, diffusers) is not installed")
    import torch

    # Tiny models gain nothing from threads, and on small shared machines torch's thread pool
    # stalls whenever another process takes a core (calls went from 0.1 s to 2 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_sd_folder(one_torch_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Stable Diffusion pipeline saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("models") / "tiny-sd"
    return Path(DiffusersProvider().build_tiny(folder))


@pytest.fixture(scope="session")
def tiny_sd(tiny_sd_folder: Path) -> ModelRef:
    """The tiny pipeline as the core would register it."""
    return DiffusersProvider().resolve(str(tiny_sd_folder))


@pytest.fixture(scope="session")
def tiny_upscaler_folder(one_torch_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight x4 upscaler (StableDiffusionUpscalePipeline) saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("models") / "tiny-upscaler"
    return Path(DiffusersProvider().build_tiny(folder, Task.UPSCALE))


@pytest.fixture(scope="session")
def tiny_inpaint_folder(one_torch_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight 9-channel inpainting pipeline saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("models") / "tiny-inpaint"
    return Path(DiffusersProvider().build_tiny(folder, Task.INPAINT))
