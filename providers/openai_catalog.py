"""Which OpenAI model ids we know, what task each serves and which parameters it takes.

Pure data and lookups: no SDK, no network. `providers.openai` uses it to resolve and describe models.
Ids are matched by family (prefix), so dated snapshots such as `gpt-4o-2024-08-06` work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidInput
from core.types import ParamSpec, Task

IMAGE_TASKS = (Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.INPAINT)
VOICES = ("alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer")
SPEECH_FORMATS = ("wav", "mp3")
MAX_SPEECH_CHARACTERS = 4096  # the speech endpoint's input limit


@dataclass(frozen=True)
class ImageModel:
    """An image family: the tasks it serves, its sizes and qualities (pricing depends on both)."""

    tasks: tuple[Task, ...]
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]  # empty: the model has one quality and takes no parameter
    default_quality: str
    max_prompt: int
    # DALL·E answers with a URL unless asked for base64; GPT image models always send base64,
    # reject `response_format` and take `output_format` instead.
    legacy: bool


@dataclass(frozen=True)
class ChatModel:
    """A chat family: how many tokens it may write and whether it takes a temperature."""

    max_output: int
    default_max_tokens: int
    temperature: bool  # reasoning models (o-series, GPT-5) accept only the default temperature


@dataclass(frozen=True)
class SpeechModel:
    """A text-to-speech family."""

    speed: bool  # gpt-4o-mini-tts ignores speed


GPT_IMAGE = ImageModel(
    tasks=IMAGE_TASKS,
    sizes=("1024x1024", "1536x1024", "1024x1536"),
    qualities=("low", "medium", "high"),
    default_quality="medium",
    max_prompt=32_000,
    legacy=False,
)
DALL_E_3 = ImageModel(
    tasks=(Task.TEXT_TO_IMAGE,),
    sizes=("1024x1024", "1792x1024", "1024x1792"),
    qualities=("standard", "hd"),
    default_quality="standard",
    max_prompt=4_000,
    legacy=True,
)
# DALL·E 2 edits only through a mask (or transparent areas), so it inpaints but has no img2img.
DALL_E_2 = ImageModel(
    tasks=(Task.TEXT_TO_IMAGE, Task.INPAINT),
    sizes=("1024x1024", "512x512", "256x256"),
    qualities=(),
    default_quality="standard",
    max_prompt=1_000,
    legacy=True,
)
TTS_1 = SpeechModel(speed=True)
GPT_TTS = SpeechModel(speed=False)
GENERIC_CHAT = ChatModel(max_output=16_384, default_max_tokens=512, temperature=True)

# Checked in order; the first pattern that matches the whole id names the family.
FAMILIES: tuple[tuple[re.Pattern[str], ImageModel | ChatModel | SpeechModel], ...] = (
    (re.compile(r"(chatgpt-image|gpt-image)(-.+)?"), GPT_IMAGE),
    (re.compile(r"dall-e-3(-.+)?"), DALL_E_3),
    (re.compile(r"dall-e-2(-.+)?"), DALL_E_2),
    (re.compile(r"tts-1(-hd)?(-.+)?"), TTS_1),
    (re.compile(r"gpt-[\w.-]*-tts(-.+)?"), GPT_TTS),
    # Other gpt-4o variants (audio, realtime, transcribe) are not chat-completions text models.
    (
        re.compile(r"(gpt-4o|gpt-4o-mini|gpt-4o-.*search.*|chatgpt-4o)(-\d{4}-\d{2}-\d{2}|-latest)?"),
        ChatModel(16_384, 512, temperature=True),
    ),
    (re.compile(r"gpt-4\.1(-mini|-nano)?(-.+)?"), ChatModel(32_768, 512, temperature=True)),
    (re.compile(r"gpt-5[\w.-]*"), ChatModel(128_000, 4_096, temperature=False)),
    (re.compile(r"o\d+(-mini|-pro)?(-.+)?"), ChatModel(100_000, 4_096, temperature=False)),
    (re.compile(r"gpt-4(-turbo)?(-.+)?|gpt-3\.5-turbo(-.+)?"), ChatModel(4_096, 512, temperature=True)),
)
NOT_TEXT = re.compile(r"audio|realtime|transcribe|tts|image|embedding|moderation|search-api")


def family_of(source: str) -> ImageModel | ChatModel | SpeechModel | None:
    """The family of a known OpenAI model id, or None."""
    for pattern, family in FAMILIES:
        if pattern.fullmatch(source):
            if isinstance(family, ChatModel) and NOT_TEXT.search(source):
                return None
            return family
    return None


def natural_task(family: ImageModel | ChatModel | SpeechModel) -> Task:
    if isinstance(family, ImageModel):
        return Task.TEXT_TO_IMAGE
    return Task.TEXT if isinstance(family, ChatModel) else Task.SPEECH


def tasks_of(family: ImageModel | ChatModel | SpeechModel) -> tuple[Task, ...]:
    return family.tasks if isinstance(family, ImageModel) else (natural_task(family),)


def family_for(source: str, task: Task) -> ImageModel | ChatModel | SpeechModel:
    """The family that serves `task` for `source`; a model we do not know yet is taken at its word."""
    family = family_of(source)
    if family is not None:
        if task not in tasks_of(family):
            can = ", ".join(tasks_of(family))
            raise InvalidInput(f"OpenAI's '{source}' cannot do {task}; it does {can}.")
        return family
    # A new vendor model, registered with an explicit task: assume the current generation's API.
    if task in IMAGE_TASKS:
        return GPT_IMAGE
    if task is Task.TEXT:
        return GENERIC_CHAT
    if task is Task.SPEECH:
        return GPT_TTS
    raise InvalidInput(f"OpenAI models cannot do {task} here; they make images, text and speech.")


def params_for(family: ImageModel | ChatModel | SpeechModel) -> tuple[ParamSpec, ...]:
    """The parameters a model of `family` accepts, with their ranges."""
    if isinstance(family, ImageModel):
        specs = [
            ParamSpec(
                "size",
                "choice",
                family.sizes[0],
                choices=family.sizes,
                label="Size",
                help="Width x height in pixels; the price depends on it.",
            )
        ]
        if family.qualities:
            specs.append(
                ParamSpec(
                    "quality",
                    "choice",
                    family.default_quality,
                    choices=family.qualities,
                    label="Quality",
                    help="Higher quality costs more per image.",
                )
            )
        return tuple(specs)
    if isinstance(family, ChatModel):
        specs = [
            ParamSpec(
                "max_tokens",
                "int",
                family.default_max_tokens,
                minimum=1,
                maximum=family.max_output,
                step=1,
                label="Max tokens",
                help="The longest answer, in tokens"
                + ("" if family.temperature else ", reasoning included")
                + ".",
            )
        ]
        if family.temperature:
            specs.append(
                ParamSpec(
                    "temperature",
                    "float",
                    1.0,
                    minimum=0.0,
                    maximum=2.0,
                    step=0.05,
                    label="Temperature",
                    help="Higher is more varied, lower more focused.",
                )
            )
        specs.append(
            ParamSpec("system", "str", "", label="System prompt", help="Instructions the model follows.")
        )
        return tuple(specs)
    specs = [
        ParamSpec("voice", "choice", VOICES[0], choices=VOICES, label="Voice"),
        ParamSpec(
            "format",
            "choice",
            SPEECH_FORMATS[0],
            choices=SPEECH_FORMATS,
            label="Format",
            help="WAV (24 kHz, 16-bit) or MP3.",
        ),
    ]
    if family.speed:
        specs.append(ParamSpec("speed", "float", 1.0, minimum=0.25, maximum=4.0, step=0.05, label="Speed"))
    return tuple(specs)
