"""Replicate: any model it hosts (images, video, music, sound) over its HTTP API, with httpx.

Wire format (https://replicate.com/docs/reference/http): POST /v1/models/{owner}/{name}/predictions
(or POST /v1/predictions with {"version": id} for "owner/name:version") with `Prefer: wait=N`, which
holds the request until the prediction finishes or N seconds pass; then GET /v1/predictions/{id}
until the status is terminal; POST /v1/predictions/{id}/cancel to stop it. Output files are URLs
on Replicate's delivery host, fetched without our key (it is only ever sent to the API host).
Errors are RFC 7807 problem documents: {"title": ..., "detail": ..., "status": ...}.

Usage: outputs counted (images) or measured (audio with libsndfile, MP4 video from its `mvhd` box),
plus `gpu_seconds` from `metrics.predict_time`, the hardware time Replicate bills many models by.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.errors import (
    Canceled,
    ContentRefused,
    InvalidInput,
    ProviderAuthFailed,
    ProviderError,
    ProviderUnavailable,
)
from core.types import (
    CancelToken,
    Credentials,
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
from providers.http_errors import error_from_response, error_from_transport

VENDOR = "Replicate"
API_URL = "https://api.replicate.com"
MODEL_ID = re.compile(r"(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)(?::(?P<version>[0-9a-f]{6,64}))?")
RUNNING = ("starting", "processing")  # then "succeeded", "failed" or "canceled"
REFUSAL_MARKERS = ("nsfw", "flagged as sensitive", "safety filter", "content policy")
STEP_IN_LOGS = re.compile(r"(\d+)/(\d+)")  # tqdm progress lines: " 50%|█████     | 2/4 [00:01<00:01]"
TASKS = (Task.TEXT_TO_IMAGE, Task.VIDEO, Task.MUSIC, Task.SOUND_EFFECT)

ASPECT_RATIO = ParamSpec(
    "aspect_ratio",
    "choice",
    "1:1",
    choices=("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"),
    label="Aspect ratio",
)
IMAGE_FORMAT = ParamSpec(
    "output_format",
    "choice",
    "png",
    choices=("png", "webp", "jpg"),
    label="Format",
    help="What Replicate encodes; the workspace stores every image as PNG.",
)


def _steps(default: int, maximum: int) -> ParamSpec:
    return ParamSpec("steps", "int", default, 1, maximum, 1, label="Steps", help="Denoising steps.")


# Our parameter → the model's input field, for the models whose inputs we know. Any other model
# runs with its own defaults (only prompt and seed are sent); its task must be named on resolve.
KNOWN_MODELS: dict[str, tuple[Task, tuple[tuple[ParamSpec, str], ...]]] = {
    "black-forest-labs/flux-schnell": (
        Task.TEXT_TO_IMAGE,
        (
            (ASPECT_RATIO, "aspect_ratio"),
            (_steps(4, 4), "num_inference_steps"),
            (IMAGE_FORMAT, "output_format"),
        ),
    ),
    "black-forest-labs/flux-dev": (
        Task.TEXT_TO_IMAGE,
        (
            (ASPECT_RATIO, "aspect_ratio"),
            (_steps(28, 50), "num_inference_steps"),
            (ParamSpec("guidance_scale", "float", 3.0, 0.0, 10.0, 0.5, label="Guidance"), "guidance"),
            (IMAGE_FORMAT, "output_format"),
        ),
    ),
    "black-forest-labs/flux-1.1-pro": (
        Task.TEXT_TO_IMAGE,
        ((ASPECT_RATIO, "aspect_ratio"), (IMAGE_FORMAT, "output_format")),
    ),
    "minimax/video-01": (
        Task.VIDEO,
        ((ParamSpec("prompt_optimizer", "bool", True, label="Improve prompt"), "prompt_optimizer"),),
    ),
    "meta/musicgen": (
        Task.MUSIC,
        (
            (ParamSpec("duration_s", "int", 8, 1, 30, 1, label="Duration (s)"), "duration"),
            (
                ParamSpec("output_format", "choice", "wav", choices=("wav", "mp3"), label="Format"),
                "output_format",
            ),
        ),
    ),
}


class ReplicateProvider:
    """Runs Replicate predictions: waits on the request, then polls; cancels on request."""

    name = "replicate"
    local = False

    def __init__(
        self,
        timeout_s: float = 30.0,
        wait_s: int = 60,
        poll_interval_s: float = 1.0,
        max_run_s: float = 1800.0,
    ) -> None:
        if not 1 <= wait_s <= 60:
            raise ValueError("wait_s must be between 1 and 60 (what Prefer: wait accepts)")
        self._timeout_s = timeout_s  # per HTTP call, on top of the wait the API is asked to hold
        self._wait_s = wait_s
        self._poll_interval_s = poll_interval_s
        self._max_run_s = max_run_s

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """'owner/name' or 'owner/name:version'; models we do not know need their task named."""
        source = source.strip()
        match = MODEL_ID.fullmatch(source)
        if match is None:
            raise InvalidInput(
                f"'{source}' is not a Replicate model id like 'owner/name' or 'owner/name:version'."
            )
        known = KNOWN_MODELS.get(f"{match['owner']}/{match['name']}")
        if known is not None and task is not None and task is not known[0]:
            raise InvalidInput(f"The Replicate model '{source}' makes {known[0].value}, not {task.value}.")
        task = task or (known[0] if known else None)
        if task is None:
            raise InvalidInput(
                f"Replicate hosts every kind of model: say which task '{source}' does "
                f"({', '.join(t.value for t in TASKS)})."
            )
        if task not in TASKS:
            raise InvalidInput(f"The Replicate provider does not run {task.value} models.")
        return ModelRef(match["name"], self.name, source, task)

    def describe(self, model: ModelRef) -> ModelSpec:
        """The known model's parameters; none for others (Replicate applies the model's defaults)."""
        fields = _fields(model)
        if fields is None:
            note = "Replicate model with its own default inputs (prompt and seed are sent)."
            return ModelSpec(model.task, (), f"{model.source}: {note}")
        return ModelSpec(model.task, tuple(spec for spec, _ in fields), f"{model.source} on Replicate.")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Create the prediction, follow it to the end, fetch its files."""
        if cancel.canceled:
            raise Canceled("Canceled before the prediction was created on Replicate.")
        credentials = _credentials(request.credentials)
        api = (credentials.base_url or API_URL).rstrip("/")
        headers = {"authorization": f"Bearer {credentials.api_key}"}
        with httpx.Client(headers=headers, timeout=self._timeout_s) as client:
            prediction = self._create(client, api, request)
            progress(_progress(prediction, 0))
            prediction = self._follow(client, api, prediction, progress, cancel)
            urls = _file_urls(prediction.get("output"))
            if not urls:
                raise ProviderUnavailable("Replicate reported success but the prediction has no output file.")
            outputs = [_output(request.model.task, self._fetch(client, api, url)) for url in urls]
        metrics = prediction.get("metrics") if isinstance(prediction.get("metrics"), dict) else {}
        predict_time = metrics.get("predict_time")  # the hardware seconds Replicate bills
        gpu_seconds = float(predict_time) if isinstance(predict_time, int | float) else 0.0
        usage = Usage(gpu_seconds=max(0.0, gpu_seconds), requests=1)
        if request.model.task is Task.TEXT_TO_IMAGE:
            usage.images = len(outputs)
        elif request.model.task is Task.VIDEO:
            usage.video_seconds = sum(o.duration_s or 0.0 for o in outputs)
        else:
            usage.audio_seconds = sum(o.duration_s or 0.0 for o in outputs)
        info = {"prediction_id": prediction["id"], "model": prediction.get("model") or request.model.source}
        return ProviderResult(outputs, usage, seed=request.seed, info=info)

    def check_key(self, credentials: Credentials) -> None:
        """GET /v1/account: the cheapest call that needs a valid token."""
        credentials = _credentials(credentials)
        url = (credentials.base_url or API_URL).rstrip("/") + "/v1/account"
        headers = {"authorization": f"Bearer {credentials.api_key}"}
        try:
            response = httpx.get(url, headers=headers, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            raise error_from_transport(VENDOR, exc) from None
        if response.status_code != 200:
            raise error_from_response(VENDOR, response)

    def _create(self, client: httpx.Client, api: str, request: ProviderRequest) -> dict[str, Any]:
        match = MODEL_ID.fullmatch(request.model.source)
        assert match is not None  # resolve() accepted it
        body: dict[str, Any] = {"input": _input(request)}
        if match["version"]:
            url, body["version"] = f"{api}/v1/predictions", match["version"]
        else:
            url = f"{api}/v1/models/{match['owner']}/{match['name']}/predictions"
        headers = {"prefer": f"wait={self._wait_s}"}
        return self._json(
            client, "POST", url, json=body, headers=headers, timeout=self._timeout_s + self._wait_s
        )

    def _follow(
        self,
        client: httpx.Client,
        api: str,
        prediction: dict[str, Any],
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> dict[str, Any]:
        """Poll until the prediction ends; cancel it on Replicate when asked to or when it overruns."""
        started, polls = time.monotonic(), 0
        while prediction["status"] in RUNNING:
            if cancel.canceled:
                self._cancel(client, api, prediction["id"])
                raise Canceled("Canceled; the prediction was stopped on Replicate.")
            if time.monotonic() - started > self._max_run_s:
                self._cancel(client, api, prediction["id"])
                raise ProviderError(
                    f"Replicate did not finish within {self._max_run_s:.0f} s; it was canceled."
                )
            time.sleep(self._poll_interval_s)
            if cancel.canceled:
                continue  # cancel without one more poll
            prediction = self._json(client, "GET", f"{api}/v1/predictions/{prediction['id']}")
            polls += 1
            progress(_progress(prediction, polls))
        status, error = prediction["status"], str(prediction.get("error") or "no reason given")
        if status == "succeeded":
            return prediction
        if status == "canceled":
            raise Canceled("The prediction was canceled on Replicate.")
        if status == "failed":
            if any(marker in error.lower() for marker in REFUSAL_MARKERS):
                raise ContentRefused(f"Replicate's safety filter refused this: {error[:300]}")
            # The model itself failed (bad input, out of memory, a bug): another provider may cope.
            raise ProviderError(f"The Replicate prediction failed: {error[:300]}", fallback=True)
        raise ProviderUnavailable(f"Replicate returned an unknown prediction status '{status[:40]}'.")

    def _cancel(self, client: httpx.Client, api: str, prediction_id: str) -> None:
        """Ask Replicate to stop (and stop billing) a prediction; best effort, we are leaving anyway."""
        with contextlib.suppress(httpx.HTTPError):
            client.post(f"{api}/v1/predictions/{prediction_id}/cancel")

    def _json(self, client: httpx.Client, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One API call answered with a prediction object, or a typed error."""
        try:
            response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise error_from_transport(VENDOR, exc) from None
        if response.status_code not in (200, 201, 202):
            raise error_from_response(VENDOR, response)
        try:
            prediction = response.json()
            if not isinstance(prediction["id"], str) or not isinstance(prediction["status"], str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ProviderUnavailable("Replicate answered with something that is not a prediction.") from None
        return prediction

    def _fetch(self, client: httpx.Client, api: str, url: str) -> bytes:
        """An output file's bytes; the key goes only to the API host, never to a file host."""
        if url.startswith("data:"):
            try:
                return base64.b64decode(url.split(",", 1)[1], validate=True)
            except (IndexError, ValueError):
                raise ProviderUnavailable("Replicate returned an unreadable data URL.") from None
        same_host = urlsplit(url).netloc == urlsplit(api).netloc
        try:
            if same_host:
                response = client.get(url, follow_redirects=True)
            else:
                response = httpx.get(url, timeout=self._timeout_s, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise error_from_transport(VENDOR, exc) from None
        if response.status_code != 200:
            raise error_from_response(VENDOR, response)
        return response.content


def _credentials(credentials: Credentials | None) -> Credentials:
    if credentials is None or not credentials.api_key:
        raise ProviderAuthFailed("No Replicate key is set for this organization.")
    return credentials


def _fields(model: ModelRef) -> tuple[tuple[ParamSpec, str], ...] | None:
    match = MODEL_ID.fullmatch(model.source)
    known = KNOWN_MODELS.get(f"{match['owner']}/{match['name']}") if match else None
    return known[1] if known and known[0] is model.task else None


def _input(request: ProviderRequest) -> dict[str, Any]:
    """The model's input: prompt, seed, and our parameters under the model's own field names."""
    values: dict[str, Any] = {"prompt": request.prompt}
    if request.seed is not None:
        values["seed"] = request.seed
    for spec, field in _fields(request.model) or ():
        values[field] = request.params.get(spec.name, spec.default)
    return values


def _progress(prediction: dict[str, Any], polls: int) -> Progress:
    """The last "step/total" in the logs when the model prints one; otherwise the poll count."""
    logs = prediction.get("logs") if isinstance(prediction.get("logs"), str) else ""
    steps = STEP_IN_LOGS.findall(logs[-2000:])
    status = prediction["status"]
    if steps:
        done, total = (int(n) for n in steps[-1])
        return Progress(min(done, total), total, f"Replicate: {status}")
    return Progress(1 if status == "succeeded" else 0, 1, f"Replicate: {status} (check {polls})")


def _file_urls(output: Any) -> list[str]:
    """Every URL in the output, which is a URL, a list of them, or an object holding them."""
    if isinstance(output, str):
        return [output] if output.startswith(("http://", "https://", "data:")) else []
    if isinstance(output, list):
        return [url for item in output for url in _file_urls(item)]
    if isinstance(output, dict):
        return [url for item in output.values() for url in _file_urls(item)]
    return []


def _output(task: Task, data: bytes) -> Output:
    """Images as PNG, audio as delivered (WAV/MP3) or converted to WAV, video as MP4, all measured."""
    try:
        if task is Task.TEXT_TO_IMAGE:
            return _image_output(data)
        if task is Task.VIDEO:
            return Output(data, "video/mp4", duration_s=_mp4_seconds(data))
        return _audio_output(data)
    except (OSError, ValueError, RuntimeError, struct.error):
        raise ProviderUnavailable(
            f"Replicate returned a file that is not readable {task.modality.value}."
        ) from None


def _image_output(data: bytes) -> Output:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.format == "PNG":
            return Output(data, "image/png", width=image.width, height=image.height)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return Output(buffer.getvalue(), "image/png", width=image.width, height=image.height)


def _audio_output(data: bytes) -> Output:
    import soundfile as sf

    info = sf.info(io.BytesIO(data))
    if info.frames <= 0:
        raise ValueError("no audio frames")
    seconds = info.frames / info.samplerate
    if info.format in ("WAV", "MP3"):
        mime = "audio/wav" if info.format == "WAV" else "audio/mpeg"
        return Output(data, mime, duration_s=seconds, sample_rate=info.samplerate)
    audio, rate = sf.read(io.BytesIO(data))  # FLAC, OGG, …: convert so the library holds WAV
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, subtype="PCM_16", format="WAV")
    return Output(buffer.getvalue(), "audio/wav", duration_s=seconds, sample_rate=rate)


def _mp4_seconds(data: bytes) -> float:
    """The duration in an MP4's movie header (moov/mvhd): timescale and duration, version 0 or 1."""
    start = data.find(b"mvhd")
    if start < 4:
        raise ValueError("no movie header")
    version = data[start + 4]
    if version == 1:
        timescale, duration = struct.unpack(">IQ", data[start + 24 : start + 36])
    else:
        timescale, duration = struct.unpack(">II", data[start + 16 : start + 24])
    if timescale == 0:
        raise ValueError("zero timescale")
    return duration / timescale
