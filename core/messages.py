"""How errors read to a person, in one place for the CLI (the UIs use their own single mapping)."""

from __future__ import annotations

from core.errors import CreatorError, RateLimited


def error_line(exc: BaseException) -> str:
    """One clear line for any error: our typed errors speak for themselves; others are named."""
    if isinstance(exc, RateLimited) and exc.retry_after:
        return f"{exc.message} Try again in {int(exc.retry_after) + 1} s."
    if isinstance(exc, CreatorError):
        return exc.message
    # An unexpected failure: name it without dumping internals (or secrets) on the user.
    return f"Unexpected {type(exc).__name__}; run with CREATOR_DEBUG=1 for details."
