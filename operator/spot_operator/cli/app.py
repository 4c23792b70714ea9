"""spotctl's entry point. Each command group lives in its own module and registers here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="spotctl",
    help="Inspect and drive spot-optimizer: status, prices, savings, switches, simulation, models, sandbox.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register() -> None:
    """Import the command modules; each adds its commands to ``app``."""
    from spot_operator.cli import (
        demo,  # noqa: F401
        model,  # noqa: F401
        prices,  # noqa: F401
        sandbox,  # noqa: F401
        savings,  # noqa: F401
        simulate,  # noqa: F401
        status,  # noqa: F401
        switch,  # noqa: F401
    )


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
