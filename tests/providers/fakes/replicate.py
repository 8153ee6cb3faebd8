"""A fake Replicate API speaking its real wire format (https://replicate.com/docs/reference/http).

Predictions are created at POST /v1/models/{owner}/{name}/predictions or POST /v1/predictions
({"version": ...}), answered 201 with a prediction object; `Prefer: wait` returns it finished when
the fake's model is "fast" (`polls_until_done == 0`), otherwise "starting" and then "processing"
(with tqdm-style logs) on each GET /v1/predictions/{id} until it succeeds or fails.
POST /v1/predictions/{id}/cancel cancels. Output files live on a second server (the delivery
host, like replicate.delivery), so tests can check the key is never sent there. Errors are
RFC 7807 problem documents ({"title", "detail", "status"}, application/problem+json).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image

from tests.providers.fakes.server import FakeVendor, Recorded, Reply

VALID_KEY = "r8_fake_replicate_0123456789abcdef"
PREDICT_TIME_S = 1.25
SIZES = {"1:1": (64, 64), "16:9": (64, 36), "9:16": (36, 64)}
VIDEO_SECONDS = 6.0


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Reply:
    """A Replicate error reply (RFC 7807 problem details)."""
    headers = {"Content-Type": "application/problem+json", **(headers or {})}
    return Reply(status, {"title": title, "detail": detail, "status": status}, headers)


def unauthenticated() -> Reply:
    return problem(401, "Unauthenticated", "You did not pass a valid authentication token")


def throttled(retry_after: str = "9") -> Reply:
    return problem(
        429,
        "Request was throttled.",
        "Request was throttled. Your rate limit for creating predictions resets in ~9s.",
        {"Retry-After": retry_after},
    )


def png(width: int, height: int, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format=image_format)
    return buffer.getvalue()


def wav(seconds: float, rate: int = 32000) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 220 * t), rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def mp4(seconds: float, timescale: int = 1000) -> bytes:
    """The boxes of an MP4 a player needs to know its length: ftyp, then moov holding mvhd (v0)."""
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"isom", 512, b"isom")
    mvhd_body = struct.pack(">B3xIIII", 0, 0, 0, timescale, round(seconds * timescale)) + bytes(80)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    moov = struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd
    return ftyp + moov + struct.pack(">I4s", 16, b"mdat") + bytes(8)


@dataclass
class ReplicateFake:
    """The fake's state: how its model behaves, and the predictions made so far."""

    api: FakeVendor
    files: FakeVendor
    polls_until_done: int = 0  # GETs answered "processing" before the prediction finishes
    failure: str | None = None  # finish as "failed" with this error instead of succeeding
    image_format: str = "PNG"
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def install(self) -> ReplicateFake:
        """Give both servers this fake's routes and forget earlier requests."""
        self.api.routes, self.files.routes = {}, {}
        self.api.requests.clear()
        self.files.requests.clear()
        self.api.route("POST", "/v1/models/*")(self._create_for_model)
        self.api.route("POST", "/v1/predictions")(self._create_for_version)
        self.api.route("GET", "/v1/predictions/*")(self._get)
        self.api.route("POST", "/v1/predictions/*")(self._cancel)
        self.api.route("GET", "/v1/account")(self._account)
        self.files.route("GET", "/files/*")(self._file)
        return self

    @property
    def creations(self) -> list[Recorded]:
        return [r for r in self.api.requests if r.method == "POST" and r.path.endswith("/predictions")]

    def _authorized(self, request: Recorded) -> Reply | None:
        ok = request.headers.get("authorization") == f"Bearer {VALID_KEY}"
        return None if ok else unauthenticated()

    def _create_for_model(self, request: Recorded) -> Reply:
        owner, name = request.path.split("/")[3:5]
        return self._create(request, f"{owner}/{name}", "dp-4d0bcc010b3049749a251855f12800be")

    def _create_for_version(self, request: Recorded) -> Reply:
        version = request.json().get("version")
        if not version:
            return problem(422, "Input validation failed", "- version: version is required")
        return self._create(request, "owner/some-model", version)

    def _create(self, request: Recorded, model: str, version: str) -> Reply:
        if (refused := self._authorized(request)) is not None:
            return refused
        body = request.json()
        if not isinstance(body.get("input"), dict):
            return problem(422, "Input validation failed", "- input: input is required")
        prediction_id = f"p{len(self.predictions) + 1:025d}"
        prediction = {
            "id": prediction_id,
            "model": model,
            "version": version,
            "input": body["input"],
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": "2026-01-01T00:00:00.000Z",
            "urls": {
                "get": f"{self.api.url}/v1/predictions/{prediction_id}",
                "cancel": f"{self.api.url}/v1/predictions/{prediction_id}/cancel",
                "web": f"https://replicate.com/p/{prediction_id}",
            },
        }
        self.predictions[prediction_id] = prediction
        if self.polls_until_done == 0 and request.headers.get("prefer", "").startswith("wait"):
            self._finish(prediction)
        return Reply(201, prediction)

    def _get(self, request: Recorded) -> Reply:
        if (refused := self._authorized(request)) is not None:
            return refused
        prediction = self.predictions.get(request.path.rsplit("/", 1)[-1])
        if prediction is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if prediction["status"] in ("starting", "processing"):
            polls = prediction.setdefault("_polls", 0) + 1
            prediction["_polls"] = polls
            if polls >= self.polls_until_done:
                self._finish(prediction)
            else:
                prediction["status"] = "processing"
                prediction["logs"] = (
                    f"Using seed: 5\n  0%|   | 0/4 [00:00<?]\n 50%|##  | {polls}/4 [00:01<00:01]\n"
                )
        return Reply(200, {k: v for k, v in prediction.items() if not k.startswith("_")})

    def _cancel(self, request: Recorded) -> Reply:
        if (refused := self._authorized(request)) is not None:
            return refused
        prediction = self.predictions.get(request.path.split("/")[3])
        if prediction is None or not request.path.endswith("/cancel"):
            return problem(404, "Not found", "The requested resource could not be found.")
        if prediction["status"] in ("starting", "processing"):
            prediction["status"] = "canceled"
        return Reply(200, {k: v for k, v in prediction.items() if not k.startswith("_")})

    def _account(self, request: Recorded) -> Reply:
        if (refused := self._authorized(request)) is not None:
            return refused
        return Reply(200, {"type": "user", "username": "studio", "name": "Studio", "github_url": None})

    def _finish(self, prediction: dict[str, Any]) -> None:
        prediction["metrics"] = {"predict_time": PREDICT_TIME_S, "total_time": PREDICT_TIME_S + 0.4}
        prediction["completed_at"] = "2026-01-01T00:00:02.000Z"
        if self.failure is not None:
            prediction.update(status="failed", error=self.failure, logs="Traceback ...\n")
            return
        name = f"{prediction['id']}/out-0"
        prediction.update(status="succeeded", logs="100%|####| 4/4 [00:01<00:00]\n")
        prediction["output"] = (
            [f"{self.files.url}/files/{name}"]
            if "flux" in prediction["model"]
            else (f"{self.files.url}/files/{name}")
        )

    def _file(self, request: Recorded) -> Reply:
        prediction = self.predictions.get(request.path.split("/")[2])
        if prediction is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        given = prediction["input"]
        if "video" in prediction["model"]:
            return Reply(200, mp4(VIDEO_SECONDS), {"Content-Type": "video/mp4"})
        if "music" in prediction["model"] or "audio" in prediction["model"]:
            return Reply(200, wav(float(given.get("duration", 2))), {"Content-Type": "audio/wav"})
        width, height = SIZES.get(given.get("aspect_ratio", "1:1"), (64, 64))
        kind = self.image_format.lower()
        return Reply(200, png(width, height, self.image_format), {"Content-Type": f"image/{kind}"})
