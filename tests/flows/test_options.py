"""Every `seneca` command takes the settings flags, with one help text each, from one decorator."""

import typer
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.options import with_settings
from warehouse.settings import Settings

SETTINGS_FLAGS = {"--marcus-root", "--marcus-home", "--lake", "--catalog-url"}
# Commands that make their own Marcus data and lake.
OWN_SETTINGS = {"sample", "demo"}
TIMED = {"run", "status", "report"}


def test_every_command_takes_the_settings_flags_with_the_same_help():
    group = typer.main.get_command(app)
    helps: dict[str, set[str]] = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        flags = {opt: p for p in command.params for opt in p.opts if opt.startswith("--")}
        if name in OWN_SETTINGS:
            assert not SETTINGS_FLAGS & set(flags), name
            continue
        wanted = SETTINGS_FLAGS | ({"--now"} if name in TIMED else set())
        assert wanted <= set(flags), (name, wanted - set(flags))
        for flag in wanted:
            helps.setdefault(flag, set()).add(flags[flag].help)
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
