"""Who is signed in: Gradio's authenticated user name (the e-mail) turned into a Principal."""

from __future__ import annotations

import gradio as gr

from core.accounts import Principal
from core.errors import AuthenticationFailed
from core.studio import Studio


def principal_of(studio: Studio, request: gr.Request | None) -> Principal:
    """The principal behind a workspace request; AuthenticationFailed when nobody is signed in."""
    email = getattr(request, "username", None)
    if not email:
        raise AuthenticationFailed("You are not signed in. Reload the page to sign in.")
    return studio.principal(email)
