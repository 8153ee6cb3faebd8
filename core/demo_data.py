"""Made-up but realistic generation history for a demo organization, fast enough for 1M rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import insert, select

from core.studio import Studio
from core.types import Role
from db.schema import generations, memberships, organizations, projects, users

DEMO_ORG = "Demo Studio"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a demo account, printed to the operator on purpose
MEMBERS = [
    ("maya@demo.example", Role.OWNER),
    ("leo@demo.example", Role.MANAGER),
    ("ines@demo.example", Role.CREATOR),
    ("tom@demo.example", Role.CREATOR),
    ("sara@demo.example", Role.CREATOR),
]
PROJECTS = ["Trailer SFX", "Album art", "Podcast S2", "Game jam", "Brand campaign"]
# provider, model, modality, task, typical cost in micro-USD, typical duration in ms, failure rate
MODELS = [
    ("diffusers", "sdxl-turbo", "image", "text-to-image", 900, 2_500, 0.01),
    ("openai", "gpt-image-1", "image", "text-to-image", 42_000, 9_000, 0.02),
    ("replicate", "flux-schnell", "image", "text-to-image", 3_000, 4_000, 0.03),
    ("elevenlabs", "sound-effects", "audio", "sound-effect", 80_000, 6_000, 0.02),
    ("diffusers", "stable-audio-open", "audio", "sound-effect", 4_000, 20_000, 0.02),
    ("openai", "gpt-4o-mini-tts", "audio", "speech", 15_000, 3_000, 0.01),
    ("anthropic", "claude-haiku", "text", "text", 1_200, 1_500, 0.01),
    ("huggingface", "musicgen-small", "audio", "music", 6_000, 15_000, 0.05),
]
PROMPTS = [
    "whoosh transition, fast, airy",
    "rain on a tin roof, close",
    "neon city at night, cinematic",
    "retro synthwave album cover",
    "deep cinematic boom with tail",
    "friendly narrator voice, warm",
    "forest ambience at dawn",
    "product shot on marble, soft light",
]
BATCH = 10_000


def fill_demo_data(studio: Studio, rows: int, days: int = 90, seed: int = 42) -> str:
    """Create the demo organization (if new) and add `rows` generations spread over `days`."""
    rng = np.random.default_rng(seed)
    org_id, member_ids, project_ids = _ensure_demo_org(studio)
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    made = 0
    while made < rows:
        n = min(BATCH, rows - made)
        batch = _batch(rng, n, org_id, member_ids, project_ids, start, days)
        with studio.engine.begin() as conn:
            conn.execute(insert(generations), batch)
        made += n
    owner = MEMBERS[0][0]
    return (
        f"Added {rows:,} generations over {days} days to '{DEMO_ORG}'. "
        f"Sign in to the dashboard as {owner} with the password '{DEMO_PASSWORD}'."
    )


def _ensure_demo_org(studio: Studio) -> tuple[str, list[str], list[str]]:
    with studio.engine.begin() as conn:
        org_id = conn.execute(select(organizations.c.id).where(organizations.c.name == DEMO_ORG)).scalar()
    if org_id is None:
        for email, role in MEMBERS:
            principal = studio.create_user(email, DEMO_PASSWORD, DEMO_ORG, role)
            org_id = principal.org_id
        owner = studio.principal(MEMBERS[0][0])
        for name in PROJECTS:
            studio.create_project(owner, name)
    with studio.engine.begin() as conn:
        member_ids = list(
            conn.execute(
                select(users.c.id)
                .join(memberships, memberships.c.user_id == users.c.id)
                .where(memberships.c.org_id == org_id)
            ).scalars()
        )
        project_ids = list(conn.execute(select(projects.c.id).where(projects.c.org_id == org_id)).scalars())
    return org_id, member_ids, project_ids


def _batch(
    rng: np.random.Generator,
    n: int,
    org_id: str,
    member_ids: list[str],
    project_ids: list[str],
    start: datetime,
    days: int,
) -> list[dict]:
    # Busier towards the present (a growing studio), spread over the day.
    offsets = np.sqrt(rng.random(n)) * days * 86_400
    model_idx = rng.choice(len(MODELS), size=n, p=[0.25, 0.1, 0.15, 0.15, 0.1, 0.1, 0.1, 0.05])
    member_idx = rng.integers(0, len(member_ids), size=n)
    project_idx = rng.integers(0, len(project_ids), size=n)
    prompt_idx = rng.integers(0, len(PROMPTS), size=n)
    jitter = rng.lognormal(0.0, 0.35, size=n)
    failure_draw = rng.random(n)
    ids = rng.integers(0, 2**63, size=(n, 2), dtype=np.uint64)
    rows = []
    for i in range(n):
        provider, model, modality, task, cost, duration, failure_rate = MODELS[model_idx[i]]
        created = start + timedelta(seconds=float(offsets[i]))
        failed = failure_draw[i] < failure_rate
        actual = None if failed else int(cost * jitter[i])
        ms = int(duration * jitter[i])
        rows.append(
            {
                "id": f"{int(ids[i, 0]):016x}{int(ids[i, 1]):016x}",
                "org_id": org_id,
                "project_id": project_ids[project_idx[i]],
                "user_id": member_ids[member_idx[i]],
                "status": "failed" if failed else "succeeded",
                "provider": provider,
                "model": model,
                "modality": modality,
                "task": task,
                "prompt": PROMPTS[prompt_idx[i]],
                "negative_prompt": "",
                "parameters": {},
                "seed": int(offsets[i]) % 4_294_967_296,
                "estimated_cost_micros": cost,
                "actual_cost_micros": actual,
                "unpriced": False,
                "created_at": created,
                "started_at": created,
                "finished_at": created + timedelta(milliseconds=ms),
                "duration_ms": ms,
                "error_code": "provider_error" if failed else None,
                "error": "The provider timed out." if failed else None,
            }
        )
    return rows
