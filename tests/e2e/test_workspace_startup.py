"""Starting the workspace stays light: building the app must not import torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from fastapi.testclient import TestClient
import workspace_ui.server

app = workspace_ui.server.create_app()
with TestClient(app) as client:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/config").status_code == 401  # the workspace needs a sign-in
heavy = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
assert not heavy, f"starting the workspace imported {heavy}"
print("started light")
"""


def test_starting_the_workspace_does_not_import_torch(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CREATOR_HOME=str(tmp_path), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "started light" in done.stdout


def test_a_first_run_prints_how_to_sign_in_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CREATOR_HOME=str(tmp_path), HF_HUB_OFFLINE="1")
    probe = "import workspace_ui.server as s; s.create_app(); s.create_app()"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Sign in with e-mail owner@localhost.localdomain") == 1
    assert "and password" in done.stdout
