"""Text from the database shown through Streamlit's Markdown exactly as typed."""

from __future__ import annotations

_MARKDOWN_PUNCTUATION = set("\\`*_{}[]()<>#+-.!|~:$@")


def literal(text: str) -> str:
    """`text` escaped so Markdown neither formats it nor turns an e-mail into a link."""
    return "".join("\\" + c if c in _MARKDOWN_PUNCTUATION else c for c in text)
