"""The `creator` CLI as a user runs it: from a fresh data directory, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

CREATOR = str(Path(sys.executable).parent / "creator")

COMMANDS = [
    [],
    ["workspace"],
    ["analytics"],
    ["db"],
    ["db", "upgrade"],
    ["users"],
    ["users", "add"],
    ["models"],
    ["models", "build-tiny"],
    ["models", "add"],
    ["models", "list"],
    ["models", "fallbacks"],
    ["models", "providers"],
    ["models", "pull"],
    ["generate"],
    ["demo-data"],
    ["budgets"],
    ["budgets", "set"],
    ["budgets", "list"],
    ["credits"],
    ["credits", "grant"],
    ["credits", "balance"],
    ["billing"],
    ["billing", "mode"],
]


def creator(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CREATOR, *args], env=env, input=input, capture_output=True, text=True, timeout=300)


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREATOR_", "DATABASE_URL"))}
    env.update(CREATOR_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    return env


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "creator")
def test_every_command_has_help(command: list[str], fresh_env: dict[str, str]) -> None:
    done = creator(fresh_env, *command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout


@pytest.mark.slow
def test_tiny_model_to_generation_from_a_fresh_data_dir(
    database_url: str, fresh_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**fresh_env, "DATABASE_URL": database_url}
    tiny = tmp_path / "tiny-sd"
    assert creator(env, "models", "build-tiny", str(tiny)).returncode == 0
    added = creator(env, "models", "add", str(tiny), "--name", "tiny-sd")
    assert added.returncode == 0, added.stderr
    assert "$0.60 per GPU hour" in added.stdout
    listed = creator(env, "models", "list")
    assert listed.stdout.startswith("tiny-sd\timage\ttext-to-image\tdiffusers\t$0.60 per GPU hour")
    made = creator(env, "users", "add", "me@example.com", "--password-stdin", input="long enough pw\n")
    assert made.returncode == 0, made.stderr
    out_file = tmp_path / "fox.png"
    done = creator(
        env,
        "generate",
        "a red fox",
        "--model",
        "tiny-sd",
        "--seed",
        "42",
        "--project",
        "Foxes",
        "-o",
        str(out_file),
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert lines["seed"] == "42"
    assert lines["cost"].startswith("$0.0")
    assert Path(lines["asset"]) == out_file
    with Image.open(out_file) as image:
        assert image.size == (64, 64)


def test_errors_are_one_clear_line_without_traceback(fresh_env: dict[str, str]) -> None:
    done = creator(fresh_env, "generate", "a fox", "--model", "nope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: ")


def test_unknown_model_says_how_to_add_one(fresh_env: dict[str, str]) -> None:
    creator(fresh_env, "users", "add", "me@example.com", "--password-stdin", input="long enough pw\n")
    done = creator(fresh_env, "generate", "a fox", "--model", "nope")
    assert done.returncode == 1
    assert "creator models add" in done.stderr


def test_short_password_is_refused_and_no_user_is_made(fresh_env: dict[str, str]) -> None:
    done = creator(fresh_env, "users", "add", "me@example.com", "--password-stdin", input="short\n")
    assert done.returncode == 1
    assert "at least 8 characters" in done.stderr
    again = creator(fresh_env, "users", "add", "me@example.com", "--password-stdin", input="long enough pw\n")
    assert again.returncode == 0, again.stderr


def test_adding_a_folder_that_is_not_a_model_is_refused(fresh_env: dict[str, str], tmp_path: Path) -> None:
    done = creator(fresh_env, "models", "add", str(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert creator(fresh_env, "models", "list").stdout.startswith("No models yet")


def test_db_upgrade_reports_the_database_without_its_password(fresh_env: dict[str, str]) -> None:
    done = creator(fresh_env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "newest schema" in done.stdout
    assert (Path(fresh_env["CREATOR_HOME"]) / "creator.db").exists()


def test_demo_data_fills_a_demo_organization(fresh_env: dict[str, str]) -> None:
    done = creator(fresh_env, "demo-data", "--rows", "500")
    assert done.returncode == 0, done.stderr
    assert "Added 500 generations" in done.stdout


def test_budgets_are_set_and_listed_from_the_command_line(
    database_url: str, fresh_env: dict[str, str]
) -> None:
    env = {**fresh_env, "DATABASE_URL": database_url}
    added = creator(
        env, "users", "add", "me@example.com", "--org", "Acme", "--password-stdin", input="long enough pw\n"
    )
    assert added.returncode == 0, added.stderr
    done = creator(env, "budgets", "set", "--org", "Acme", "--limit", "250", "--period", "weekly")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Set the organization 'Acme' weekly budget to $250.00: $0.00 spent, $0.00 held, $250.00 left."
    )
    assert creator(env, "budgets", "set", "--member", "me@example.com", "--limit", "12.50").returncode == 0
    listed = creator(env, "budgets", "list").stdout.splitlines()
    assert sorted(listed) == [
        "member\tme@example.com\tmonthly\t$12.50 limit\t$0.00 spent\t$0.00 held\t$12.50 left",
        "org\tAcme\tweekly\t$250.00 limit\t$0.00 spent\t$0.00 held\t$250.00 left",
    ]


def test_budget_mistakes_are_one_clear_line(fresh_env: dict[str, str]) -> None:
    creator(
        fresh_env,
        "users",
        "add",
        "me@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        input="long enough pw\n",
    )
    creator(
        fresh_env,
        "users",
        "add",
        "v@example.com",
        "--org",
        "Acme",
        "--role",
        "viewer",
        "--password-stdin",
        input="long enough pw\n",
    )
    both = creator(fresh_env, "budgets", "set", "--org", "Acme", "--project", "P", "--limit", "5")
    viewer = creator(fresh_env, "budgets", "set", "--org", "Acme", "--limit", "5", "--user", "v@example.com")
    for done, says in ((both, "exactly one of --org"), (viewer, "cannot set budgets")):
        assert done.returncode == 1
        assert done.stderr.startswith("error: ") and says in done.stderr
        assert done.stderr.strip().count("\n") == 0


def test_credits_and_billing_mode_from_the_command_line(fresh_env: dict[str, str]) -> None:
    creator(
        fresh_env,
        "users",
        "add",
        "me@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        input="long enough pw\n",
    )
    mode = creator(fresh_env, "billing", "mode", "Acme", "platform")
    assert mode.returncode == 0, mode.stderr
    assert "Acme now pays with credits: the catalog price × 1.2" in mode.stdout
    for _ in range(2):
        granted = creator(
            fresh_env, "credits", "grant", "Acme", "25", "--reason", "welcome", "--idempotency-key", "w1"
        )
        assert granted.returncode == 0, granted.stderr
        assert granted.stdout.strip() == "Acme has $25.00 in credits ($0.00 held)."
    balance = creator(fresh_env, "credits", "balance", "Acme")
    assert balance.stdout.strip() == (
        "Acme: $25.00 balance, $0.00 held, $25.00 available (billing mode: platform)."
    )
    nobody = creator(fresh_env, "credits", "grant", "Nobody", "5")
    assert nobody.returncode == 1 and nobody.stderr.strip() == "error: No organization 'Nobody'."
    assert creator(fresh_env, "billing", "mode", "Acme", "barter").returncode == 2  # usage error
