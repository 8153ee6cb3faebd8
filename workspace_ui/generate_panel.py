"""The Generate form: prompt, model, its parameters, seed, the cost estimate and the button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.errors import CreatorError, InvalidInput
from core.studio import MAX_SEED, Studio
from core.types import Progress, Task
from workspace_ui import gallery_panel
from workspace_ui.formatting import duration_text, escape_markdown, money_text
from workspace_ui.gallery_panel import GalleryPanel
from workspace_ui.messages import shows_errors, status_for
from workspace_ui.param_controls import ParamControls, build_param_controls, updates_for, values_of
from workspace_ui.session import principal_of

NO_MODELS = "No text-to-image models yet. An operator adds one with `creator models add`."


@dataclass(frozen=True)
class GeneratePanel:
    """The form's components, for wiring."""

    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    model: gr.Dropdown
    params: ParamControls
    seed: gr.Textbox
    estimate: gr.Markdown
    button: gr.Button
    status: gr.Markdown


def build_generate_panel() -> GeneratePanel:
    """Lay out the form; call inside a Blocks layout."""
    prompt = gr.Textbox(
        label="Prompt",
        lines=3,
        max_lines=8,
        placeholder="A lighthouse on a cliff at dusk, oil painting",
        elem_id="prompt",
    )
    negative_prompt = gr.Textbox(
        label="Negative prompt", placeholder="What to keep out of the image", elem_id="negative"
    )
    model = gr.Dropdown(label="Model", choices=[], elem_id="model", interactive=True)
    with gr.Accordion("Settings", open=True, elem_id="settings"):
        params = build_param_controls()
        seed = gr.Textbox(label="Seed", placeholder="random", info="Blank for a random seed.", elem_id="seed")
    with gr.Row(equal_height=True, elem_id="generate-row"):
        estimate = gr.Markdown(elem_id="estimate")
        button = gr.Button("Generate", variant="primary", elem_id="generate", scale=0, min_width=160)
    status = gr.Markdown(elem_id="generate-status")
    return GeneratePanel(prompt, negative_prompt, model, params, seed, estimate, button, status)


def model_choices(studio: Studio, current: str | None = None) -> dict[str, Any]:
    """The model drop-down: every text-to-image model with its price, keeping the current choice."""
    # Edits need input files and audio needs a player; this form and gallery make images from text.
    models = [m for m in studio.models() if m.ref.task == Task.TEXT_TO_IMAGE]
    choices = [(f"{m.ref.name} · {m.price_text}", m.ref.name) for m in models]
    names = [m.ref.name for m in models]
    value = current if current in names else (names[0] if names else None)
    return gr.update(choices=choices, value=value)


def estimate_text(studio: Studio, model: str | None, params: dict[str, Any]) -> str:
    """What the next run should cost, as a line of Markdown."""
    if not model:
        return NO_MODELS
    try:
        if not studio.model(model).prices:
            return "**Cost:** no price is set for this model"
        micros = studio.estimate(model, params)
    except CreatorError as exc:
        return status_for(exc)
    if micros is None:
        return "**Cost:** price known after the first run"
    return f"**Estimated cost:** ≈ {money_text(micros)}"


def wire_generate_panel(
    studio: Studio, panel: GeneratePanel, project: gr.Dropdown, gallery: GalleryPanel
) -> None:
    """Connect the form: model changes rebuild the parameters, the button generates."""
    slots = panel.params.slots

    def show_model(model: str | None) -> list[Any]:
        spec = studio.model(model).spec if model else None
        updates, names = updates_for(spec)
        defaults = {p.name: p.default for p in spec.params} if spec else {}
        return [*updates, names, estimate_text(studio, model, defaults)]

    panel.model.change(
        shows_errors(show_model),
        inputs=panel.model,
        outputs=[*panel.params.outputs, panel.params.names, panel.estimate],
        show_progress="hidden",
    )

    def refresh_estimate(data: dict[Any, Any]) -> str:
        params = values_of(data[panel.params.names], [data[s] for s in slots])
        return estimate_text(studio, data[panel.model], params)

    # Person-made changes only: a slider's .change also fires while show_model relabels the
    # slots, with values from before their new bounds arrived.
    gr.on(
        [
            *(t for s in panel.params.numbers for t in (s.release, s.input)),
            *(c.input for c in [*panel.params.choices, *panel.params.switches]),
        ],
        refresh_estimate,
        inputs={panel.model, panel.params.names, *slots},
        outputs=panel.estimate,
        show_progress="hidden",
        trigger_mode="always_last",
    )

    @shows_errors(outputs=5, status_at=0)
    def generate(
        data: dict[Any, Any], request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> list[Any]:
        principal = principal_of(studio, request)
        if not data[project]:
            raise InvalidInput("Pick a project first, or create one.")
        if not data[panel.model]:
            raise InvalidInput(NO_MODELS)
        if not (data[panel.prompt] or "").strip():
            raise InvalidInput("Write a prompt first: describe the image you want.")
        params = values_of(data[panel.params.names], [data[s] for s in slots])
        request_body = {
            "project": data[project],
            "model": data[panel.model],
            "prompt": data[panel.prompt],
            "negative_prompt": data[panel.negative_prompt] or "",
            "params": params,
            "seed": parse_seed(data[panel.seed]),
        }
        progress(0, desc="Loading the model…")

        def report(p: Progress) -> None:
            progress(p.fraction, desc=f"Step {p.step} of {p.total}")

        done = studio.generate(principal, request_body, progress=report)
        status = (
            f"**Done** in {duration_text(done.duration_ms)} · seed {done.seed} · "
            f"cost {money_text(done.actual_cost_micros)} — "
            f"“{escape_markdown(done.prompt[:80])}”"
        )
        images, items = gallery_panel.gallery_contents(studio, principal, data[project])
        return [
            status,
            gr.update(value=images, selected_index=None),
            items,
            gallery_panel.EMPTY_DETAILS,
            estimate_text(studio, data[panel.model], params),
        ]

    panel.button.click(
        generate,
        inputs={
            project,
            panel.model,
            panel.prompt,
            panel.negative_prompt,
            panel.seed,
            panel.params.names,
            *slots,
        },
        outputs=[panel.status, gallery.gallery, gallery.items, gallery.details, panel.estimate],
        concurrency_limit=1,
        concurrency_id="generate",
    )


def parse_seed(text: str | None) -> int | None:
    """A seed typed by a person: blank means random; otherwise a whole number in range."""
    text = (text or "").strip().replace(",", "").replace("_", "")
    if not text:
        return None
    if not text.isdigit() or int(text) > MAX_SEED:
        raise InvalidInput(f"The seed must be a whole number from 0 to {MAX_SEED}, or blank.")
    return int(text)
