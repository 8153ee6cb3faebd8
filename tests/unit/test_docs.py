"""The README is part of the product: every command and setting it must mention is there."""

from __future__ import annotations

from pathlib import Path

import click
import typer.main

from core.cli import app
from core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _command_paths(command: click.Command, prefix: str = "creator") -> list[str]:
    paths = []
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            paths.extend(_command_paths(sub, f"{prefix} {name}"))
    else:
        paths.append(prefix)
    return paths


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [p for p in _command_paths(typer.main.get_command(app)) if p not in README]
    assert missing == []


def test_every_setting_is_in_the_readme() -> None:
    aliases = [field.alias for field in Settings.model_fields.values()]
    missing = [a for a in aliases if a not in README]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    top = README[:2500]
    assert "make run" in top
    assert "make test" in top


def test_readme_screenshots_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("docs/screenshots/workspace.png", "docs/screenshots/analytics.png"):
        assert name in README
        assert (root / name).exists(), f"{name} is made by the browser tests (make test)"
