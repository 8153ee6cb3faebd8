"""Parameters are checked against the model's declared ranges before any money is spent."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.params import validate_params
from core.types import ModelSpec, ParamSpec, Task

SPEC = ModelSpec(
    Task.TEXT_TO_IMAGE,
    (
        ParamSpec("width", "int", 512, 64, 2048, 8, label="Width"),
        ParamSpec("guidance_scale", "float", 7.5, 0, 30),
        ParamSpec("sampler", "choice", "ddim", choices=("ddim", "euler")),
        ParamSpec("tiling", "bool", False),
    ),
)


def test_defaults_fill_missing_parameters() -> None:
    assert validate_params(SPEC, {}) == {
        "width": 512,
        "guidance_scale": 7.5,
        "sampler": "ddim",
        "tiling": False,
    }


def test_numbers_from_forms_are_coerced() -> None:
    assert validate_params(SPEC, {"width": "640", "guidance_scale": "3"})["width"] == 640


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": 32}, "Width must be at least 64"),
        ({"width": 4096}, "at most 2048"),
        ({"width": 100}, "multiple of 8"),
        ({"width": -8}, "at least 64"),
        ({"guidance_scale": float("inf")}, "finite"),
        ({"guidance_scale": "lots"}, "must be a number"),
        ({"guidance_scale": True}, "must be a number"),
        ({"sampler": "dpm"}, "one of ddim, euler"),
        ({"tiling": "yes"}, "true or false"),
        ({"steps": 5}, "Unknown parameter"),
    ],
)
def test_out_of_range_or_unknown_parameters_are_refused(params: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_params(SPEC, params)
