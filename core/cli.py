"""The `creator` command line: the same one door (Studio) as the apps, for operators and scripts."""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from core.cli_money import billing_app, budgets_app, credits_app
from core.errors import CreatorError, InvalidInput
from core.messages import error_line
from core.types import Role

app = typer.Typer(
    help="Creator Workspace: generate and edit AI media with any provider, and watch the cost.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
users_app = typer.Typer(help="Local accounts.", no_args_is_help=True)
models_app = typer.Typer(help="Models available in the workspace.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(models_app, name="models")
app.add_typer(budgets_app, name="budgets")
app.add_typer(credits_app, name="credits")
app.add_typer(billing_app, name="billing")


def _studio():
    from core.composition import build_studio

    return build_studio()


@app.command()
def workspace(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Start the creator workspace (Gradio + REST API) on http://127.0.0.1:7860."""
    import uvicorn

    from core.settings import Settings

    settings = Settings()
    _studio()  # migrate and check the configuration before serving
    host = host or settings.workspace_host
    port = port or settings.workspace_port
    typer.echo(f"Creator Workspace on http://{host}:{port}/")
    uvicorn.run("workspace_ui.server:create_app", factory=True, host=host, port=port, log_level="warning")


@app.command()
def analytics(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Start the manager's analytics dashboard (Streamlit) on http://127.0.0.1:8501."""
    from core.settings import Settings

    settings = Settings()
    _studio()
    spec = find_spec("analytics_ui.app")
    if spec is None or spec.origin is None:
        raise InvalidInput("The analytics app is not installed; reinstall Creator Workspace.")
    script = Path(spec.origin)
    host = host or settings.analytics_host
    port = port or settings.analytics_port
    typer.echo(f"Creator Analytics on http://{host}:{port}/")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
    ]
    sys.stdout.flush()
    # Become Streamlit (no child left behind when this process is stopped).
    os.execv(sys.executable, command)  # noqa: S606 - a fixed argument list, no shell


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration (the apps also do this on start)."""
    from core.settings import Settings

    studio = _studio()
    typer.echo(f"Database is at the newest schema ({_safe_url(Settings().resolved_database_url)}).")
    studio.engine.dispose()


@users_app.command("add")
def users_add(
    email: str,
    org: Annotated[str | None, typer.Option(help="Organization (created when new).")] = None,
    role: Annotated[Role, typer.Option(help="Role in the organization.")] = Role.OWNER,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a local account (the password is asked for, never taken from the command line)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    principal = _studio().create_user(email, password, org, role)
    typer.echo(f"Added {principal.email} to {principal.org_name} as {principal.role}.")


@models_app.command("build-tiny")
def models_build_tiny(path: Path) -> None:
    """Write a tiny random-weight text-to-image pipeline (for demos and tests) into PATH."""
    source = _studio().build_tiny_model(path)
    typer.echo(f"Tiny pipeline written to {source}. Add it with: creator models add {source}")


@models_app.command("add")
def models_add(
    id_or_path: str,
    name: Annotated[str | None, typer.Option(help="Name to show in the workspace.")] = None,
    provider: Annotated[
        str, typer.Option(help="Provider that runs it (see `creator models providers`).")
    ] = "diffusers",
    task: Annotated[
        str | None, typer.Option(help="What to use it for, e.g. image-to-image (default: its natural task).")
    ] = None,
    fallback: Annotated[
        list[str] | None, typer.Option("--fallback", help="Model to try when this one fails (repeatable).")
    ] = None,
) -> None:
    """Make a Hub id, a local model folder or a vendor model id available in the workspace."""
    info = _studio().add_model(id_or_path, name=name, provider=provider, task=task, fallbacks=fallback)
    typer.echo(f"Added {info.ref.name} ({info.ref.task}, {info.ref.provider}): {info.price_text}")


@models_app.command("providers")
def models_providers() -> None:
    """Installed providers: local ones run on this machine, hosted ones need a key."""
    studio = _studio()
    for name in studio.registry.names():
        try:
            kind = "local" if studio.registry.get(name).local else "hosted"
        except Exception as exc:  # a broken third-party plugin must not hide the others
            kind = f"unavailable ({error_line(exc)})"
        typer.echo(f"{name}\t{kind}")


@models_app.command("fallbacks")
def models_fallbacks(
    name: str,
    others: Annotated[list[str] | None, typer.Argument(help="Models to try, in order.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every fallback.")] = False,
) -> None:
    """Show, set or clear the models tried when NAME fails with a retryable error."""
    studio = _studio()
    if others or clear:
        studio.set_fallbacks(name, list(others or []))
    chain = studio.fallbacks(name)
    typer.echo(f"{name} falls back to: {', '.join(chain)}" if chain else f"{name} has no fallbacks.")


@models_app.command("list")
def models_list() -> None:
    """Models available, with what they make and the price in force."""
    studio = _studio()
    infos = studio.models()
    if not infos:
        typer.echo("No models yet. Add one with `creator models add ID_OR_PATH`.")
        return
    for info in infos:
        typer.echo(
            f"{info.ref.name}\t{info.spec.modality}\t{info.ref.task}\t{info.ref.provider}\t"
            f"{info.price_text}\t{info.ref.source}"
        )


@models_app.command("pull")
def models_pull(model_id: str) -> None:
    """Download a model from the Hugging Face Hub into the local cache (needs internet)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = snapshot_download(model_id)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise InvalidInput(
            f"Could not download {model_id}: the Hub is unreachable or the id is wrong."
        ) from exc
    typer.echo(f"Downloaded {model_id} to {path}. Add it with: creator models add {model_id}")


@app.command()
def generate(
    prompt: str,
    model: Annotated[str, typer.Option(help="Model name (see `creator models list`).")],
    project: Annotated[str, typer.Option(help="Project (created when new).")] = "Default",
    seed: Annotated[int | None, typer.Option(help="Seed for an exact re-run.")] = None,
    user: Annotated[str | None, typer.Option(help="Member to act as (e-mail).")] = None,
    negative: Annotated[str, typer.Option(help="Negative prompt.")] = "",
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Model parameter, NAME=VALUE.")
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Copy the file here.")] = None,
) -> None:
    """Generate with a model through the same door as the workspace; prints file, seed and cost."""
    from core.money import format_usd

    studio = _studio()
    principal = studio.principal(user) if user else studio.sole_principal()
    if project not in {p.name for p in studio.projects(principal)}:
        studio.create_project(principal, project)
    params = dict(_parse_param(p) for p in (param or []))
    generation = studio.generate(
        principal,
        {
            "project": project,
            "model": model,
            "prompt": prompt,
            "negative_prompt": negative,
            "params": params,
            "seed": seed,
        },
        progress=_print_progress,
    )
    typer.echo("", err=True)
    for asset in generation.assets:
        path = studio.asset_path(principal, asset.id)
        if output:
            output.write_bytes(path.read_bytes())
            path = output
        typer.echo(f"asset: {path}")
    typer.echo(f"seed: {generation.seed}")
    typer.echo(f"cost: {format_usd(generation.actual_cost_micros)}")


@app.command("demo-data")
def demo_data(
    rows: Annotated[int, typer.Option(help="How many generations to make up.", min=1)] = 5000,
) -> None:
    """Fill a demo organization with months of varied generation history for the dashboard."""
    from core.demo_data import fill_demo_data

    summary = fill_demo_data(_studio(), rows)
    typer.echo(summary)


def _parse_param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InvalidInput(f"--param takes NAME=VALUE, not '{text}'.")
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            continue
    return name, value


def _print_progress(progress: object) -> None:
    step, total = progress.step, progress.total  # type: ignore[attr-defined]
    typer.echo(f"\rstep {step}/{total}", nl=False, err=True)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Entry point of the `creator` console script: errors become one line and exit code 1."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except CreatorError as exc:
        typer.echo(f"error: {error_line(exc)}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:
        if os.environ.get("CREATOR_DEBUG"):
            raise
        typer.echo(f"error: {error_line(exc)}", err=True)
        raise SystemExit(1) from None
