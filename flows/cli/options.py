"""The settings flags every `seneca` command takes, declared once.

A command adopts them with one line, `@with_settings` (or `@with_settings(now=True)` where time
matters) under `@app.command()`, and a first parameter `settings: Settings`: the decorator adds
`--marcus-root`, `--marcus-home`, `--lake`, `--catalog-url` (and `--now`) with the same names
and help texts everywhere, and calls the command with the Settings they, the SENECA_* variables
and seneca.toml make.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

import typer

from warehouse.settings import load_settings

MarcusRoot = Annotated[
    Path | None,
    typer.Option("--marcus-root", help="Marcus checkout/working dir [SENECA_MARCUS_ROOT]"),
]
MarcusHome = Annotated[
    Path | None, typer.Option("--marcus-home", help="Marcus's ~/.marcus dir [SENECA_MARCUS_HOME]")
]
LakeOpt = Annotated[Path | None, typer.Option("--lake", help="Lake root directory [SENECA_LAKE]")]
CatalogOpt = Annotated[
    str | None,
    typer.Option("--catalog-url", help="SQLAlchemy URL of the catalog [SENECA_CATALOG_URL]"),
]
NowOpt = Annotated[
    dt.datetime | None,
    typer.Option(
        "--now",
        help="Act as if it were this time (UTC unless an offset is given) [SENECA_NOW]",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
    ),
]

# Settings field → its flag's type, in the order `--help` lists them.
SETTINGS_FLAGS: dict[str, Any] = {
    "marcus_root": MarcusRoot,
    "marcus_home": MarcusHome,
    "lake": LakeOpt,
    "catalog_url": CatalogOpt,
}
TIME_FLAG: dict[str, Any] = {"now": NowOpt}

Command = TypeVar("Command", bound=Callable[..., Any])


@overload
def with_settings(command: Command, *, now: bool = False) -> Command: ...
@overload
def with_settings(command: None = None, *, now: bool = False) -> Callable[[Command], Command]: ...


def with_settings(
    command: Command | None = None, *, now: bool = False
) -> Command | Callable[[Command], Command]:
    """Give `command` the common settings flags (and `--now` if `now`); it gets `settings`."""
    if command is None:
        return functools.partial(with_settings, now=now)
    flags = {**SETTINGS_FLAGS, **(TIME_FLAG if now else {})}
    own = inspect.signature(command, eval_str=True)
    if "settings" not in own.parameters:
        raise TypeError(f"{command.__name__} takes no `settings` parameter")
    kept = [p for name, p in own.parameters.items() if name != "settings"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in flags.items()
    ]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name, None) for name in flags}
        return command(*args, settings=load_settings(**given), **kwargs)

    signature = own.replace(parameters=[*kept, *added])
    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    return run
