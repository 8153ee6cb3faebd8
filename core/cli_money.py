"""The `creator budgets`, `creator credits` and `creator billing` commands (see core.cli)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from core.errors import InvalidInput

budgets_app = typer.Typer(
    help="Spending limits of the organization, projects and members.", no_args_is_help=True
)
credits_app = typer.Typer(
    help="Prepaid credits of organizations the platform pays for.", no_args_is_help=True
)
billing_app = typer.Typer(
    help="How organizations pay: their own keys or platform credits.", no_args_is_help=True
)


def _studio():
    from core.composition import build_studio

    return build_studio()


@budgets_app.command("set")
def budgets_set(
    limit: Annotated[str, typer.Option("--limit", help="Hard limit in US dollars, e.g. 250 or 12.50.")],
    org: Annotated[str | None, typer.Option("--org", help="The organization's budget (its name).")] = None,
    project: Annotated[str | None, typer.Option("--project", help="A project's budget (its name).")] = None,
    member: Annotated[str | None, typer.Option("--member", help="A member's budget (their e-mail).")] = None,
    period: Annotated[
        Literal["monthly", "weekly", "none"], typer.Option(help="When spending starts again from $0.")
    ] = "monthly",
    thresholds: Annotated[
        str, typer.Option(help="Alert when spending reaches these percentages of the limit.")
    ] = "50,80,100",
    user: Annotated[str | None, typer.Option(help="Owner or manager to act as (e-mail).")] = None,
) -> None:
    """Set (or replace) a hard budget: generations that would overspend it are refused."""
    from core.budgets import usd_text
    from core.money import usd_to_micros

    chosen = [
        (scope, target)
        for scope, target in (("org", org), ("project", project), ("member", member))
        if target
    ]
    if len(chosen) != 1:
        raise InvalidInput(
            "Say whose budget it is with exactly one of --org NAME, --project NAME or --member EMAIL."
        )
    [(scope, target)] = chosen
    try:
        percents = [int(p) for p in thresholds.replace(" ", "").split(",") if p]
    except ValueError as exc:
        raise InvalidInput(
            f"--thresholds takes whole percentages like 50,80,100, not '{thresholds}'."
        ) from exc
    studio = _studio()
    principal = _acting(studio, user, org)
    info = studio.set_budget(principal, scope, target, usd_to_micros(limit), period, percents)
    typer.echo(
        f"Set the {info.label} to {usd_text(info.limit_micros)}: {usd_text(info.spent_micros)} spent, "
        f"{usd_text(info.held_micros)} held, {usd_text(info.remaining_micros)} left."
    )


@budgets_app.command("list")
def budgets_list(
    user: Annotated[str | None, typer.Option(help="Member to act as (e-mail).")] = None,
) -> None:
    """Budgets with their limit, and what is spent, held and left in the current period."""
    from core.budgets import usd_text

    studio = _studio()
    infos = studio.budgets(_acting(studio, user))
    if not infos:
        typer.echo("No budgets yet. Set one with `creator budgets set`.")
        return
    for b in infos:
        amounts = (
            f"{usd_text(b.limit_micros)} limit\t{usd_text(b.spent_micros)} spent\t"
            f"{usd_text(b.held_micros)} held\t{usd_text(b.remaining_micros)} left"
        )
        typer.echo(f"{b.scope}\t{b.target}\t{b.period}\t{amounts}")


@credits_app.command("grant")
def credits_grant(
    org: str,
    usd: Annotated[str, typer.Argument(help="Amount in US dollars, e.g. 25 or 9.99.")],
    reason: Annotated[str, typer.Option(help="Why, for the ledger.")] = "",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Apply the grant once however often the command runs.")
    ] = None,
) -> None:
    """Give an organization credits (for organizations the platform pays for)."""
    from core.budgets import usd_text
    from core.money import usd_to_micros

    balance = _studio().grant_credits(org, usd_to_micros(usd), reason, idempotency_key)
    typer.echo(
        f"{org} has {usd_text(balance.balance_micros)} in credits ({usd_text(balance.held_micros)} held)."
    )


@credits_app.command("balance")
def credits_balance(org: str) -> None:
    """An organization's credits: balance, held for running generations, available."""
    from core.budgets import usd_text

    studio = _studio()
    balance = studio.credit_balance(org)
    mode = studio.billing_mode(org)
    typer.echo(
        f"{org}: {usd_text(balance.balance_micros)} balance, {usd_text(balance.held_micros)} held, "
        f"{usd_text(balance.available_micros)} available (billing mode: {mode})."
    )


@billing_app.command("mode")
def billing_mode(
    org: str,
    mode: Annotated[
        Literal["byok", "platform"], typer.Argument(help="byok: its own keys; platform: credits pay.")
    ],
) -> None:
    """Switch how an organization pays: its own vendor keys (byok) or platform credits (platform)."""
    studio = _studio()
    studio.set_billing_mode(org, mode)
    if mode == "platform":
        markup = studio.settings.platform_markup
        typer.echo(f"{org} now pays with credits: the catalog price × {markup} per generation.")
    else:
        typer.echo(f"{org} now pays with its own keys (byok): costs are tracked, no credits move.")


def _acting(studio, user: str | None, org: str | None = None):
    return studio.principal(user, org) if user else studio.sole_principal()
