"""Every `seneca` command takes the settings flags, with one help text each, from one decorator."""

import typer
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.options import with_settings
from warehouse.settings import Settings

SETTINGS_FLAGS = {"--marcus-root", "--marcus-home", "--lake", "--catalog-url"}
# Commands that make their own Marcus data and lake.
OWN_SETTINGS = {"sample", "demo"}
TIMED = {
    "run",
    "status",
    "report",
    "retain",
    "hold add",
    "hold remove",
    "backup",
    "backups list",
    "backups verify",
    "backups prune",
}


def leaf_commands(group, prefix=""):
    """Every command of the app by its full name ("hold add"), sub-groups walked."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_takes_the_settings_flags_with_the_same_help():
    helps: dict[str, set[str]] = {}
    names = set()
    for name, command in leaf_commands(typer.main.get_command(app)):
        names.add(name)
        flags = {opt: p for p in command.params for opt in p.opts if opt.startswith("--")}
        if name in OWN_SETTINGS:
            assert not SETTINGS_FLAGS & set(flags), name
            continue
        wanted = SETTINGS_FLAGS | ({"--now"} if name in TIMED else set())
        assert wanted <= set(flags), (name, wanted - set(flags))
        for flag in wanted:
            helps.setdefault(flag, set()).add(flags[flag].help)
    assert TIMED <= names
    assert {flag: len(texts) for flag, texts in helps.items()} == {
        flag: 1 for flag in SETTINGS_FLAGS | {"--now"}
    }


def test_a_new_command_adopts_the_flags_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("SENECA_LAKE", raising=False)
    extra = typer.Typer()
    seen: list[Settings] = []

    @extra.command()
    @with_settings(now=True)
    def retain(settings: Settings, dry_run: bool = False) -> None:
        seen.append(settings)

    result = CliRunner().invoke(
        extra, ["--lake", str(tmp_path), "--now", "2026-06-02", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert seen[0].lake == tmp_path and seen[0].now is not None and seen[0].now.day == 2
    bad = CliRunner().invoke(extra, ["--now", "June"])
    assert bad.exit_code == 2
