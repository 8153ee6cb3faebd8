"""Plain-text and Markdown renderings of money, durations and parameters for the workspace."""

from __future__ import annotations

from typing import Any

from core.money import format_usd

_MARKDOWN_SPECIALS = "\\`*_[]<>#|"


def escape_markdown(text: str) -> str:
    """Text (a prompt, a name) that Markdown shows literally."""
    for char in _MARKDOWN_SPECIALS:
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def money_text(micros: int | None) -> str:
    """Micro-USD for people; sub-cent local runs keep enough places to not read as $0.0000."""
    if micros is not None and 0 < abs(micros) < 100:
        return format_usd(micros, places=6)
    return format_usd(micros)


def duration_text(milliseconds: int | None) -> str:
    """A run's duration: '850 ms', '3.4 s', '2 min 05 s'; '—' when unknown."""
    if milliseconds is None:
        return "—"
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def params_text(params: dict[str, Any]) -> str:
    """Parameters on one line: 'width 64 · height 64 · steps 4'."""
    return " · ".join(f"{name.replace('_', ' ')} {value}" for name, value in params.items()) or "—"
