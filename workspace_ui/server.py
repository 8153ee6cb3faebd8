"""The workspace server: FastAPI with a health check and the Gradio workspace behind sign-in.

`creator workspace` runs it with `uvicorn.run("workspace_ui.server:create_app", factory=True)`.
"""

from __future__ import annotations

import asyncio

import fastapi
import gradio as gr

from core.composition import build_studio
from core.errors import AuthenticationFailed
from core.studio import Studio
from workspace_ui.app import TITLE, build_blocks
from workspace_ui.theme import CSS, workspace_theme

SIGN_IN_MESSAGE = (
    f"<strong>{TITLE}</strong><br>Sign in with your e-mail address (as the username) and password. "
    "An owner adds people with <code>creator users add</code>."
)


def create_app(studio: Studio | None = None) -> fastapi.FastAPI:
    """The FastAPI app serving /healthz and the workspace at /, building a Studio if none is given."""
    studio = studio or build_studio()
    _announce_first_owner(studio)
    app = fastapi.FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def authenticate(email: str, password: str) -> bool:
        # Gradio awaits this inside its login route: hash checking must not block the loop.
        return await asyncio.to_thread(_password_ok, studio, email, password)

    return gr.mount_gradio_app(
        app,
        build_blocks(studio),
        path="/",
        auth=authenticate,
        auth_message=SIGN_IN_MESSAGE,
        footer_links=[],
        run_history=False,
        show_error=False,
        ssr_mode=False,
        theme=workspace_theme(),
        css=CSS,
    )


def _password_ok(studio: Studio, email: str, password: str) -> bool:
    try:
        studio.sign_in(email, password)
    except AuthenticationFailed:
        return False
    return True


def _announce_first_owner(studio: Studio) -> None:
    created = studio.ensure_first_owner()
    if created is None:
        return
    email, password = created
    # The operator needs this once, on the terminal that started the server.
    print(
        "\nCreator Workspace: first run, an owner account was created.\n"
        f"  Sign in with e-mail {email}\n"
        f"  and password       {password}\n"
        "  Keep it safe; add more people with `creator users add`.\n",
        flush=True,
    )
