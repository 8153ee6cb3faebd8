"""The plain data that flows between the core, the providers and the UIs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Modality(StrEnum):
    """What a model makes."""

    IMAGE = "image"
    AUDIO = "audio"
    TEXT = "text"
    VIDEO = "video"


class Task(StrEnum):
    """What a model does; each task belongs to one modality."""

    TEXT_TO_IMAGE = "text-to-image"
    IMAGE_TO_IMAGE = "image-to-image"
    INPAINT = "inpaint"
    UPSCALE = "upscale"
    SOUND_EFFECT = "sound-effect"
    MUSIC = "music"
    SPEECH = "speech"
    TEXT = "text"
    VIDEO = "video"
    # Audio tools: they take an audio input (ProviderRequest.inputs["audio"]).
    STEMS = "stems"
    CLEANUP = "cleanup"
    MASTER = "master"
    TRANSCRIBE = "transcribe"
    MIDI = "midi"

    @property
    def modality(self) -> Modality:
        """The modality this task produces."""
        if self in (
            Task.SOUND_EFFECT,
            Task.MUSIC,
            Task.SPEECH,
            Task.STEMS,
            Task.CLEANUP,
            Task.MASTER,
            Task.MIDI,
        ):
            return Modality.AUDIO
        if self is Task.TRANSCRIBE:
            return Modality.TEXT
        if self is Task.TEXT:
            return Modality.TEXT
        if self is Task.VIDEO:
            return Modality.VIDEO
        return Modality.IMAGE


class Role(StrEnum):
    """A member's role in an organization, from most to least powerful."""

    OWNER = "owner"
    MANAGER = "manager"
    CREATOR = "creator"
    VIEWER = "viewer"


class GenerationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter a model accepts, with its range, so UIs build controls and the core validates."""

    name: str
    kind: str  # "int", "float", "str", "choice", "bool"
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    label: str = ""
    help: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A model a provider can run: what it does and what it accepts."""

    task: Task
    params: tuple[ParamSpec, ...]
    description: str = ""

    @property
    def modality(self) -> Modality:
        return self.task.modality

    def param(self, name: str) -> ParamSpec | None:
        """The spec of one parameter, or None."""
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class ModelRef:
    """A model as the core knows it: our name, the provider that runs it, and where it comes from."""

    name: str
    provider: str
    source: str  # a Hub id, a local folder or a vendor model id
    task: Task


@dataclass(frozen=True)
class Credentials:
    """A vendor key (and optionally another endpoint) handed to a hosted provider for one call.

    Providers never read keys from the environment; the core passes them here. The key never
    appears in a repr, so it cannot slip into a log line or an error message by accident.
    """

    api_key: str = field(repr=False)
    base_url: str | None = None

    @property
    def masked(self) -> str:
        """The key as people may see it: its last four characters."""
        return "…" + self.api_key[-4:] if len(self.api_key) > 8 else "…"


@dataclass(frozen=True)
class ProviderRequest:
    """What a provider is asked to make. Parameters are already validated against the ModelSpec.

    `inputs` holds the files an edit works on, by role: "image" (PNG bytes), "mask" (PNG, white
    where to repaint), "audio" (WAV bytes). `credentials` is set for hosted providers only.
    """

    model: ModelRef
    prompt: str
    params: dict[str, Any]
    seed: int | None
    negative_prompt: str = ""
    inputs: dict[str, bytes] = field(default_factory=dict)
    credentials: Credentials | None = None


@dataclass
class Usage:
    """What a call consumed; the cost is computed from it with the price catalog."""

    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    audio_seconds: float = 0.0
    video_seconds: float = 0.0
    characters: int = 0
    gpu_seconds: float = 0.0
    requests: int = 1


@dataclass(frozen=True)
class Output:
    """One file a provider made."""

    data: bytes
    mime: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    text: str | None = None


@dataclass
class ProviderResult:
    """What came back from a provider call."""

    outputs: list[Output]
    usage: Usage
    seed: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """How far a call has come; `fraction` is 0..1."""

    step: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.step / self.total)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """A flag a caller sets to ask a running call to stop at its next safe point."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def canceled(self) -> bool:
        return self._event.is_set()


def no_progress(_: Progress) -> None:
    """A progress callback that ignores progress."""
