"""The project's results: a gallery of images and the details of the one selected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

import gradio as gr

from core.accounts import Principal
from core.generations import GenerationInfo
from core.studio import Studio
from workspace_ui.formatting import duration_text, escape_markdown, money_text, params_text

EMPTY_DETAILS = "*Select an image to see how it was made.*"
CAPTION_LENGTH = 60


@dataclass(frozen=True)
class GalleryPanel:
    """The gallery, the generation behind each of its images, and the details area."""

    gallery: gr.Gallery
    items: gr.State  # list[GenerationInfo], one per gallery image, same order
    details: gr.Markdown


def build_gallery_panel() -> GalleryPanel:
    """Lay out the gallery and the details; call inside a Blocks layout."""
    gallery = gr.Gallery(
        label="Results",
        columns=4,
        fit_columns=False,  # one image stays a thumbnail instead of filling the panel
        height=460,
        object_fit="contain",
        allow_preview=True,
        buttons=["download", "fullscreen"],
        interactive=False,
        elem_id="gallery",
    )
    with gr.Group(elem_id="details-card"):
        details = gr.Markdown(EMPTY_DETAILS, elem_id="details", padding=True)
    panel = GalleryPanel(gallery, gr.State([]), details)
    panel.gallery.select(show_details, inputs=panel.items, outputs=panel.details, show_progress="hidden")
    return panel


def gallery_contents(
    studio: Studio, principal: Principal, project: str | None
) -> tuple[list[tuple[str, str]], list[GenerationInfo]]:
    """The project's images (file, caption), newest first, and the generation behind each."""
    if not project:
        return [], []
    images: list[tuple[str, str]] = []
    items: list[GenerationInfo] = []
    for generation in studio.generations(principal, project):
        for asset in generation.assets:
            if asset.kind != "image":
                continue
            path = studio.asset_path(principal, asset.id)
            images.append((str(path), _caption(generation.prompt)))
            items.append(generation)
    return images, items


def show_details(items: list[GenerationInfo], evt: gr.SelectData) -> str:
    """The details of the image the person clicked."""
    index = evt.index if isinstance(evt.index, int) else None
    if index is None or not 0 <= index < len(items):
        return EMPTY_DETAILS
    return details_markdown(items[index])


def details_markdown(g: GenerationInfo) -> str:
    """How a generation was made and what it cost, as Markdown."""
    created = g.created_at if g.created_at.tzinfo else g.created_at.replace(tzinfo=UTC)
    rows = [
        ("Model", escape_markdown(g.model)),
        ("Parameters", escape_markdown(params_text(g.parameters))),
        ("Seed", str(g.seed) if g.seed is not None else "—"),
        ("Status", str(g.status)),
        ("Cost", money_text(g.actual_cost_micros)),
        ("Estimated", money_text(g.estimated_cost_micros) if g.estimated_cost_micros is not None else "—"),
        ("Duration", duration_text(g.duration_ms)),
        ("Created", created.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    if g.negative_prompt:
        rows.insert(1, ("Negative prompt", escape_markdown(g.negative_prompt)))
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"#### {escape_markdown(g.prompt)}\n\n| | |\n|---|---|\n{table}\n"


def _caption(prompt: str) -> str:
    return prompt if len(prompt) <= CAPTION_LENGTH else prompt[: CAPTION_LENGTH - 1] + "…"
