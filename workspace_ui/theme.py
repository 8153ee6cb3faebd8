"""The workspace's look: a Gradio theme and a little CSS, handed to `mount_gradio_app`."""

from __future__ import annotations

import gradio as gr


def workspace_theme() -> gr.themes.Base:
    """A calm indigo theme with local fonts (the workspace must work offline)."""
    return gr.themes.Soft(
        primary_hue="indigo",
        neutral_hue="slate",
        font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


CSS = """
.gradio-container { width: 100%; max-width: 1440px !important; margin: 0 auto; }
#topbar { align-items: center; padding: 4px 4px 12px; border-bottom: 1px solid var(--border-color-primary);
  margin-bottom: 8px; }
#topbar > div { padding: 0 !important; }
#brand .brand { font-size: 1.25rem; font-weight: 700; color: var(--color-accent); letter-spacing: .01em; }
#account .account { display: flex; gap: 14px; justify-content: flex-end; align-items: baseline;
  font-size: .9rem; }
#account .who { font-weight: 600; }
#account .org { color: var(--body-text-color-subdued); }
#account .signout { color: var(--color-accent); text-decoration: none; font-weight: 600; }
#account .signout:hover { text-decoration: underline; }
#generate-row { align-items: center; }
#estimate { color: var(--body-text-color-subdued); }
#generate { font-size: 1.05rem; }
#generate-status:empty { display: none; }
#details table { width: 100%; font-size: .9rem; border-collapse: collapse; }
#details table, #details tr, #details th { border: 0 !important; }
#details td { border: 0 !important; border-bottom: 1px solid var(--border-color-primary) !important;
  padding: 6px 8px !important; }
#details thead { display: none; }
#details td:first-child { color: var(--body-text-color-subdued); width: 9em; white-space: nowrap; }
#details h4 { margin-top: 0; }
footer { opacity: .6; }
"""
