"""Controls for a model's parameters, built from its ParamSpecs into a fixed pool of slots.

Gradio needs every component to exist when the page is built, so the panel holds a few
sliders, drop-downs and checkboxes and shows, labels and bounds the ones the chosen model
uses. Which parameter each visible slot holds travels in a `gr.State`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.types import ModelSpec, ParamSpec

NUMBER_SLOTS = 6
CHOICE_SLOTS = 2
SWITCH_SLOTS = 2


@dataclass(frozen=True)
class ParamControls:
    """The pooled controls and the State naming the parameter each slot holds."""

    numbers: list[gr.Slider]
    choices: list[gr.Dropdown]
    switches: list[gr.Checkbox]
    rows: list[gr.Row]  # the number slots, two to a row
    names: gr.State

    @property
    def slots(self) -> list[gr.components.Component]:
        """Every slot in one fixed order, the order `values_of` uses."""
        return [*self.numbers, *self.choices, *self.switches]

    @property
    def outputs(self) -> list[gr.blocks.Block]:
        """The slots and their rows, the order `updates_for` uses."""
        return [*self.slots, *self.rows]


def build_param_controls() -> ParamControls:
    """Create the hidden slots; call inside a Blocks layout."""
    numbers: list[gr.Slider] = []
    rows: list[gr.Row] = []
    for row in range(0, NUMBER_SLOTS, 2):
        # Two to a row (width beside height); a hidden slot leaves its neighbour the whole row.
        with gr.Row(visible=False) as row_block:
            rows.append(row_block)
            numbers.extend(
                gr.Slider(visible=False, interactive=True, min_width=140, elem_id=f"param-number-{i}")
                for i in (row, row + 1)
            )
    choices = [
        gr.Dropdown(visible=False, interactive=True, elem_id=f"param-choice-{i}") for i in range(CHOICE_SLOTS)
    ]
    switches = [
        gr.Checkbox(visible=False, interactive=True, elem_id=f"param-switch-{i}") for i in range(SWITCH_SLOTS)
    ]
    return ParamControls(numbers, choices, switches, rows, gr.State([]))


def updates_for(spec: ModelSpec | None) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Updates for `ParamControls.outputs` that show `spec`'s parameters, and each slot's parameter."""
    pools: dict[str, list[ParamSpec]] = {"number": [], "choice": [], "switch": []}
    for p in spec.params if spec else ():
        pools[_pool_of(p)].append(p)
    for pool, size in (("number", NUMBER_SLOTS), ("choice", CHOICE_SLOTS), ("switch", SWITCH_SLOTS)):
        # Free-text parameters and any beyond the pool keep their defaults: the core fills them.
        del pools[pool][size:]
    updates: list[dict[str, Any]] = []
    names: list[str | None] = []
    for pool, size, show in (
        ("number", NUMBER_SLOTS, _number_update),
        ("choice", CHOICE_SLOTS, _choice_update),
        ("switch", SWITCH_SLOTS, _switch_update),
    ):
        specs = pools[pool]
        for i in range(size):
            if i < len(specs):
                updates.append(show(specs[i]))
                names.append(specs[i].name)
            else:
                updates.append(gr.update(visible=False))
                names.append(None)
    shown = len(pools["number"])
    updates.extend(gr.update(visible=shown > row) for row in range(0, NUMBER_SLOTS, 2))
    return updates, names


def values_of(names: list[str | None], values: list[Any]) -> dict[str, Any]:
    """The parameters as the core expects them, from the slots' names and current values."""
    params: dict[str, Any] = {}
    for name, value in zip(names, values, strict=False):
        if name is None or value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # sliders report 512.0; int parameters want 512
        params[name] = value
    return params


def _pool_of(p: ParamSpec) -> str:
    if p.kind in ("int", "float"):
        return "number"
    if p.kind == "choice":
        return "choice"
    if p.kind == "bool":
        return "switch"
    return "text"


def _label(p: ParamSpec) -> str:
    return p.label or p.name.replace("_", " ").capitalize()


def _number_update(p: ParamSpec) -> dict[str, Any]:
    default = float(p.default if p.default is not None else p.minimum or 0)
    minimum = p.minimum if p.minimum is not None else min(0.0, default)
    maximum = p.maximum if p.maximum is not None else max(default * 4, minimum + 100)
    step = p.step if p.step is not None else (1 if p.kind == "int" else 0.1)
    return gr.update(
        visible=True,
        label=_label(p),
        info=p.help or None,
        minimum=minimum,
        maximum=maximum,
        step=step,
        value=p.default,
    )


def _choice_update(p: ParamSpec) -> dict[str, Any]:
    return gr.update(
        visible=True, label=_label(p), info=p.help or None, choices=list(p.choices), value=p.default
    )


def _switch_update(p: ParamSpec) -> dict[str, Any]:
    return gr.update(visible=True, label=_label(p), info=p.help or None, value=bool(p.default))
