"""Every error a person can meet in the workspace becomes a message here, and only here."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import gradio as gr

from core.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    Canceled,
    Conflict,
    CreatorError,
    Forbidden,
    InsufficientCredits,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    ProviderError,
    RateLimited,
)
from workspace_ui.formatting import escape_markdown

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on our side. Nothing was charged; the server log has the details."

# Most specific first: ModelUnavailable is a ProviderError.
_TITLES: tuple[tuple[type[CreatorError], str], ...] = (
    (InvalidInput, "Please check your input"),
    (NotFound, "Not found"),
    (Forbidden, "Not allowed"),
    (AuthenticationFailed, "Please sign in again"),
    (Conflict, "Already exists"),
    (BudgetExceeded, "Budget reached"),
    (InsufficientCredits, "Not enough credits"),
    (RateLimited, "Slow down"),
    (Canceled, "Canceled"),
    (ModelUnavailable, "Model not available"),
    (ProviderError, "Generation failed"),
)

P = ParamSpec("P")
R = TypeVar("R")


def title_for(exc: CreatorError) -> str:
    """The heading shown above an error's message."""
    return next((title for kind, title in _TITLES if isinstance(exc, kind)), "Something went wrong")


def message_for(exc: CreatorError) -> str:
    """What to tell a person about an error, in plain words."""
    message = exc.message
    if isinstance(exc, RateLimited) and exc.retry_after:
        message += f" Try again in {exc.retry_after:.0f} s."
    elif isinstance(exc, ProviderError) and exc.retryable:
        message += " Trying again may work."
    return message


def status_for(exc: CreatorError) -> str:
    """An error as a line of Markdown for a status area."""
    return f"**{title_for(exc)}.** {escape_markdown(message_for(exc))}"


def shows_errors(
    handler: Callable[P, R] | None = None, *, outputs: int = 1, status_at: int | None = None
) -> Any:
    """Wrap an event handler so errors reach the person as a message, never a traceback.

    A CreatorError leaves every output as it was, except the status Markdown at `status_at`
    (of `outputs`), which shows the message; a toast says it too.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return fn(*args, **kwargs)
            except CreatorError as exc:
                # Toasts render HTML, and messages can quote what the user typed.
                gr.Warning(html.escape(message_for(exc)), title=title_for(exc))
                if status_at is None:
                    return gr.skip()
                return [status_for(exc) if i == status_at else gr.skip() for i in range(outputs)]
            except gr.Error:
                raise
            except Exception:
                log.exception("workspace handler %s failed", fn.__name__)
                raise gr.Error(UNEXPECTED, title="Something went wrong", print_exception=False) from None

        return wrapper

    return decorate(handler) if handler is not None else decorate
