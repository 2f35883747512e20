"""MkDocs hook: the command-line page (`cli.md`) is generated from featswap's Typer app at every build, so that
it cannot drift from the code. Each command's help text, its usage and a table of its options come from the
click objects Typer builds; nothing is written to docs/."""

from __future__ import annotations

from typing import Any

PAGE = "cli.md"

INTRO = """# Command line

This page is generated from the command-line app itself at every build of the documentation
(`docs/hooks/cli_page.py`), so it says what `featswap COMMAND --help` says. Every failure a user can cause
prints one line, `error: ...`, saying what to do, and exits with status 2. How the options combine (data
specs, configs, fitting and evaluation sets) is told in [Running experiments](usage.md).
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type_name(param: Any) -> str:
    """The value's type as the help shows it (typer's own parameters, or click's)."""
    if callable(getattr(param, "bare_type", None)):
        return str(param.bare_type()).removeprefix("list[").removesuffix("]")
    return str(param.type.name).upper()


def _option_row(param: Any) -> str:
    names = [*param.opts, *getattr(param, "secondary_opts", [])]
    if param.param_type_name == "argument":
        shown = f"`{str(param.name).upper()}` (argument)"
    else:
        shown = " / ".join(f"`{n}`" for n in names)
    kind = "flag" if getattr(param, "is_flag", False) else _cell(_type_name(param))
    if getattr(param, "multiple", False):
        kind += ", repeatable"
    help_text = _cell(getattr(param, "help", None) or "")
    if param.required:
        help_text = ("**required.** " + help_text).strip()
    default = param.default
    if default is not None and not callable(default) and default != () and not getattr(param, "is_flag", False):
        help_text += f" Default: `{default}`."
    return f"| {shown} | {kind} | {help_text} |"


def _command_section(name: str, command: Any) -> list[str]:
    ctx = command.context_class(command, info_name=f"featswap {name}")
    usage = " ".join(command.collect_usage_pieces(ctx))
    out = [f"## featswap {name}", "", f"```text\nfeatswap {name} {usage}\n```", ""]
    out += [(command.help or "").strip(), ""]
    rows = [_option_row(p) for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if rows:
        out += ["| option | value | meaning |", "|---|---|---|", *rows, ""]
    return out


def cli_markdown() -> str:
    """The whole page, from `featswap.cli.app`."""
    import typer  # typer carries its own click: the objects are used by what they do, not by their class

    from featswap.cli import app

    group: Any = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="featswap")
    lines = [INTRO, "## featswap", "", (group.help or "").strip(), ""]
    rows = [_option_row(p) for p in group.params if p.name != "help"]
    lines += ["| option | value | meaning |", "|---|---|---|", *rows, ""]
    lines += ["Commands: " + ", ".join(f"[`{n}`](#featswap-{n})" for n in group.list_commands(ctx)), ""]
    for name in group.list_commands(ctx):
        lines += _command_section(name, group.get_command(ctx, name))
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=cli_markdown()))
    return files
