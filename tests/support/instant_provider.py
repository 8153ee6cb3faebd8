"""A provider that answers at once, for testing the core's bookkeeping without a model.

It is a real implementation of the Provider protocol (a tiny solid-colour PNG maker), not a mock
of our code; tests that need real models use the tiny diffusers pipelines instead.
"""

from __future__ import annotations

import io
import threading

from PIL import Image

from core.errors import Canceled, ProviderError
from core.types import (
    CancelToken,
    ModelRef,
    ModelSpec,
    Output,
    ParamSpec,
    Progress,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Task,
    Usage,
)


class InstantProvider:
    """Makes an 8×8 PNG whose colour comes from the seed; can be told to fail."""

    name = "diffusers"
    local = True

    def __init__(
        self,
        gpu_seconds: float = 2.0,
        fail_with: Exception | None = None,
        name: str = "diffusers",
        local: bool = True,
    ) -> None:
        self.gpu_seconds = gpu_seconds
        self.fail_with = fail_with
        self.name = name
        self.local = local
        self.calls = 0
        self.requests: list[ProviderRequest] = []
        self._lock = threading.Lock()

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        return ModelRef(source.rsplit("/", 1)[-1], self.name, source, task or Task.TEXT_TO_IMAGE)

    def describe(self, model: ModelRef) -> ModelSpec:
        return ModelSpec(
            Task.TEXT_TO_IMAGE,
            (
                ParamSpec("steps", "int", 4, 1, 50, 1),
                ParamSpec("guidance_scale", "float", 5.0, 0.0, 30.0),
            ),
        )

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        with self._lock:
            self.calls += 1
            self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        steps = int(request.params["steps"])
        for step in range(1, steps + 1):
            if cancel.canceled:
                raise Canceled(f"Canceled after {step - 1} of {steps} steps.")
            progress(Progress(step, steps))
        seed = request.seed or 0
        colour = (seed % 256, (seed // 256) % 256, (seed // 65536) % 256)
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
        usage = Usage(gpu_seconds=self.gpu_seconds if self.local else 0.0, images=1)
        return ProviderResult([Output(buf.getvalue(), "image/png", 8, 8)], usage, seed=seed)


def failing(message: str = "vendor is down", retryable: bool = True) -> InstantProvider:
    """An instant provider whose every call fails with a ProviderError."""
    return InstantProvider(fail_with=ProviderError(message, retryable=retryable))
