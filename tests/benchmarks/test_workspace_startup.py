"""How long the workspace takes to answer its first request, against an empty Gradio app.

Target (workspace issue): first HTTP 200 within 1.5x the time of an empty Gradio app mounted
on FastAPI, measured in the same run on the same machine. Reported, not asserted tightly: run
with `make benchmarks`.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

EMPTY_APP = textwrap.dedent(
    """
    import sys
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    with gr.Blocks() as blocks:
        gr.Markdown("empty")
    app = gr.mount_gradio_app(FastAPI(), blocks, path="/")
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seconds_to_first_200(command: list[str], url_path: str, env: dict[str, str], port: int) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{url_path}", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"{command} exited with {proc.returncode}")
            time.sleep(0.05)
        raise AssertionError(f"{command} did not answer in 120 s")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.benchmark(group="startup")
def test_workspace_starts_within_one_and_a_half_times_an_empty_gradio_app(
    benchmark: object, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CREATOR_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    creator = str(Path(sys.executable).parent / "creator")
    # Migrate once first: a real restart finds the database at head.
    subprocess.run([creator, "db", "upgrade"], env=env, check=True, capture_output=True)
    empty_script = tmp_path / "empty_app.py"
    empty_script.write_text(EMPTY_APP)
    empty, ours = [], []

    def one_round() -> None:
        port = _free_port()
        empty.append(_seconds_to_first_200([sys.executable, str(empty_script), str(port)], "/", env, port))
        port = _free_port()
        ours.append(_seconds_to_first_200([creator, "workspace", "--port", str(port)], "/healthz", env, port))

    benchmark.pedantic(one_round, rounds=3, iterations=1)  # type: ignore[attr-defined]
    ratio = statistics.median(ours) / statistics.median(empty)
    benchmark.extra_info.update(  # type: ignore[attr-defined]
        empty_gradio_s=statistics.median(empty), workspace_s=statistics.median(ours), ratio=ratio
    )
    print(
        f"\nfirst 200: empty Gradio {statistics.median(empty):.2f} s, workspace "
        f"{statistics.median(ours):.2f} s, ratio {ratio:.2f} (target < 1.5)"
    )
    assert ratio < 3, "the workspace takes far longer to start than an empty Gradio app"
