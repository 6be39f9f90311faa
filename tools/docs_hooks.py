"""MkDocs hooks for esg's documentation site (``mkdocs.yml`` loads this file; ``make docs``).

The pages in ``docs/`` are plain Markdown that reads on GitHub as it is; this module fills in,
at build time, what would otherwise drift from the code:

* ``<!-- esg:settings -->`` becomes the Settings reference, generated from the ``esg`` click
  command itself (``settings_markdown()``), so the site lists exactly the options ``esg --help``
  does, with the same help text and defaults.
* ``<!-- esg:include PATH -->`` becomes the text of the repository file PATH, and
  ``<!-- esg:include PATH LANG -->`` that text as a code block: the benchmark tables and the
  example configurations on the site are the files the harness writes and the tests run.
* A link that leaves ``docs/`` (``[config](../examples/nginx/esg.conf)``, which works on GitHub)
  becomes a link to that file in the repository on GitHub, and an image that does
  (``![chart](../bench/results/latest.png)``) is copied into the site.  Either one fails the
  build when its file doesn't exist, as a broken link between pages does under ``--strict``.

Nothing here needs more than MkDocs and an importable esg (``make docs`` runs it in ``.venv``).
"""

from __future__ import annotations

import inspect
import posixpath
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
# Where the files that docs/ links to are copied in the built site (images only).
REPO_FILES_DIR = "repo-files"
# Each marker is a line of its own (so that a page can mention one in running text).
INCLUDE = re.compile(r"^<!-- esg:include (?P<path>\S+)(?: (?P<lang>\w+))? -->$", re.MULTILINE)
SETTINGS_LINE = re.compile(r"^<!-- esg:settings -->$", re.MULTILINE)
# A Markdown link or image whose target leaves docs/: [text](../path#anchor "title").
OUTSIDE_LINK = re.compile(
    r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>\.\./[^)\s#]+)(?P<rest>[^)]*)\)"
)
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")

# Options click keeps out of --help: uvicorn's, accepted so that its command lines run.  Each
# needs a line here (the build fails otherwise), since there is no help text to generate from.
HIDDEN_OPTIONS = {
    "http": "uvicorn's choice of HTTP/1.1 parser. esg has one parser, its own: `auto` is "
    "accepted silently, any other value (`h11`, `httptools`) with one warning, and esg serves "
    "as usual.",
    "h11_max_incomplete_event_size": "uvicorn's h11 limit on an incomplete request: esg applies "
    "N as its limit on the whole request head (431 beyond it). esg's own limit is 64 KiB; a "
    "larger N keeps 64 KiB, with a warning.",
}

# The sections of the Settings page, in order: an option goes to the first whose test accepts
# its name.  A new option lands in a section by its prefix, or in "Other options".
SECTIONS: list[tuple[str, Callable[[str], bool]]] = [
    (
        "The app",
        lambda name: name in {"app", "app_dir", "factory", "interface", "lifespan", "env_file"},
    ),
    ("Sockets", lambda name: name in {"host", "port", "uds", "uds_mode", "fd", "backlog"}),
    (
        "Processes and reload",
        lambda name: (
            name.startswith(("workers", "reload", "timeout_worker", "limit_max_requests"))
            or name == "loop"
        ),
    ),
    (
        "Proxies and response headers",
        lambda name: (
            name in {"proxy_headers", "forwarded_allow_ips", "root_path", "header", "server_header"}
            or name == "date_header"
        ),
    ),
    ("Limits and timeouts", lambda name: name.startswith(("limit_", "timeout_"))),
    ("HTTP/2", lambda name: name.startswith("http2")),
    ("WebSockets", lambda name: name == "ws" or name.startswith("ws_")),
    ("TLS", lambda name: name.startswith("ssl_")),
    ("Logging", lambda name: name.startswith(("log_", "access_log")) or name == "use_colors"),
    ("Metrics", lambda name: name.startswith("metrics")),
    ("Other options", lambda name: True),
]
HELP_EXTRA = re.compile(r"\s*\[(?P<extra>[^\[\]]*)\]$")
MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]]")


# -- the Settings page ----------------------------------------------------------------------


def esg_command() -> click.Command:
    from esg.main import main

    return main


def documented_parameters(command: click.Command) -> list[click.Parameter]:
    """Every parameter the Settings page lists: options shown by --help, APP, hidden ones."""
    return [param for param in command.params if param.name is not None]


def option_names(param: click.Parameter) -> str:
    """``--host``, or ``--access-log / --no-access-log``, or ``APP``."""
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return " / ".join([*param.opts, *param.secondary_opts])


def environment_variable(param: click.Parameter) -> str | None:
    if isinstance(param.envvar, str):
        return param.envvar
    if isinstance(param, click.Option) and param.allow_from_autoenv and param.name:
        return f"ESG_{param.name.upper()}"
    return None


def config_keyword(param: click.Parameter) -> str | None:
    """The keyword of ``esg.run()`` and ``esg.Config`` that the option sets."""
    from esg.config import Config
    from esg.main import _CONFIG_NAMES

    if not param.expose_value or param.name is None:
        return None
    if param.name == "app":
        return "app"
    keyword = _CONFIG_NAMES.get(param.name, param.name)
    if keyword not in inspect.signature(Config).parameters:
        raise PluginError(f"--{param.name} maps to Config({keyword}=...), which doesn't exist")
    return keyword


def help_and_default(param: click.Parameter, ctx: click.Context) -> tuple[str, str]:
    """The help text (as Markdown) that ``esg --help`` prints, and the default apart from it."""
    if not isinstance(param, click.Option):
        # APP, the argument: the command's own help says what it is.
        if not ctx.command.help:
            raise PluginError("the esg command has no help text to describe APP with")
        return plain_markdown(ctx.command.help), "required"
    if param.hidden:
        if param.name not in HIDDEN_OPTIONS:
            raise PluginError(f"--{param.name} is hidden from --help: add it to HIDDEN_OPTIONS")
        return HIDDEN_OPTIONS[param.name], plain_default(param)
    record = param.get_help_record(ctx)
    if record is None or not record[1].strip():
        raise PluginError(f"{option_names(param)} has no help text")
    help_text, default = split_help(record[1])
    if param.is_flag or default is None:
        # A flag's shown default is the flag's name (`[default: http2]`): say on or off.
        default = plain_default(param)
    return plain_markdown(help_text), default


def split_help(help_text: str) -> tuple[str, str | None]:
    """Click's help text without its ``[default: ...]`` tail, and what that tail says."""
    match = HELP_EXTRA.search(help_text)
    if match is None:
        return help_text, None
    extras = [part.strip() for part in match["extra"].split(";")]
    return help_text[: match.start()].rstrip(), "; ".join(
        part.removeprefix("default: ") for part in extras
    )


def plain_markdown(text: str) -> str:
    """``text`` shown as it is: ``'*.py'`` or ``req[Header-Name]`` must not become markup."""
    return MARKDOWN_SPECIAL.sub(r"\\\g<0>", text)


def plain_default(param: click.Option) -> str:
    """The default of an option whose --help shows none."""
    value = param.default
    if not param.expose_value:
        return "-"
    if param.is_flag or param.is_bool_flag:
        return "on" if value is True else "off"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != "":
        return str(value)
    return "none"


def table_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    return f"`{text}`"


def section_of(name: str) -> str:
    return next(title for title, accepts in SECTIONS if accepts(name))


def settings_rows(command: click.Command) -> Iterator[tuple[str, click.Parameter]]:
    """(section title, parameter) for every documented parameter, in section order."""
    params = documented_parameters(command)
    shown = [param for param in params if not getattr(param, "hidden", False)]
    for title, _ in SECTIONS:
        for param in shown:
            assert param.name is not None
            if section_of(param.name) == title:
                yield title, param
    for param in params:
        if getattr(param, "hidden", False):
            yield "Accepted for uvicorn's command lines", param


def default_cell(default: str) -> str:
    if default in {"on", "off", "none", "required", "-"}:
        return default
    return code(default)


def description_cell(param: click.Parameter, help_text: str) -> str:
    if isinstance(param.type, click.Choice):
        choices = ", ".join(code(str(choice)) for choice in param.type.choices)
        help_text = f"{help_text} One of {choices}."
    return table_cell(help_text)


def settings_markdown(command: click.Command | None = None) -> str:
    """The Settings reference: one table per section, then the whole ``esg --help``."""
    command = command or esg_command()
    # 98 columns: what `COLUMNS=100 esg --help` prints (click keeps two for the margin).
    ctx = click.Context(
        command,
        info_name="esg",
        auto_envvar_prefix="ESG",
        terminal_width=98,
        max_content_width=100,
    )
    lines: list[str] = []
    section = None
    for title, param in settings_rows(command):
        if title != section:
            section = title
            lines += ["", f"## {title}", ""]
            lines += ["| option | default | description | environment variable, keyword |"]
            lines += ["|---|---|---|---|"]
        help_text, default = help_and_default(param, ctx)
        variable, keyword = environment_variable(param), config_keyword(param)
        where = [code(variable)] if variable else []
        if keyword is not None:
            where.append(code(f"{keyword}="))
        lines.append(
            f"| {code(option_names(param))} | {default_cell(default)} | "
            f"{description_cell(param, help_text)} | {'<br>'.join(where) or '-'} |"
        )
    help_page = command.get_help(ctx)
    lines += ["", "## The whole `esg --help`", "", "```text", help_page, "```", ""]
    # In a block of its own, for the stylesheet (docs/stylesheets/extra.css); md_in_html.
    return "\n".join(['<div class="esg-settings" markdown="1">', *lines, "</div>"])


# -- includes and links that leave docs/ -----------------------------------------------------


def repository_file(page: Page, target: str) -> Path:
    """The repository file a ``../`` link of ``page`` names; the build fails if it is missing."""
    page_dir = posixpath.dirname(page.file.src_uri)
    relative = posixpath.normpath(posixpath.join("docs", page_dir, target))
    path = ROOT / relative
    if relative.startswith("..") or not path.exists():
        raise PluginError(f"{page.file.src_uri} links to {target}, which doesn't exist ({path})")
    return path


def include(match: re.Match[str]) -> str:
    path = ROOT / match["path"]
    if not path.is_file():
        raise PluginError(f"esg:include names {match['path']}, which doesn't exist")
    text = path.read_text(encoding="utf-8").rstrip("\n")
    if match["lang"]:
        return f"```{match['lang']}\n{text}\n```"
    return text


def repo_url(config: MkDocsConfig) -> str:
    url = config.repo_url
    if not url:
        raise PluginError("mkdocs.yml needs repo_url: links out of docs/ point there")
    return str(url).rstrip("/")


def outside_images(markdown: str) -> Iterator[str]:
    for match in OUTSIDE_LINK.finditer(markdown):
        if match["bang"] and match["target"].lower().endswith(IMAGE_SUFFIXES):
            yield match["target"]


# -- the hooks -------------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add every image a page takes from outside docs/ to the site, under repo-files/."""
    docs_dir = Path(config.docs_dir)
    for source in sorted(docs_dir.rglob("*.md")):
        for target in outside_images(source.read_text(encoding="utf-8")):
            relative = posixpath.normpath(
                posixpath.join(source.parent.relative_to(docs_dir).as_posix(), target)
            )
            in_repo = posixpath.normpath(posixpath.join("docs", relative))
            path = ROOT / in_repo
            uri = f"{REPO_FILES_DIR}/{in_repo}"
            if path.is_file() and files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **_: Any) -> str:
    if SETTINGS_LINE.search(markdown):
        markdown = SETTINGS_LINE.sub(lambda _: settings_markdown(), markdown)
    markdown = INCLUDE.sub(include, markdown)
    base = repo_url(config)
    page_dir = posixpath.dirname(page.file.src_uri)

    def relink(match: re.Match[str]) -> str:
        path = repository_file(page, match["target"])
        in_repo = path.relative_to(ROOT).as_posix()
        if match["bang"] and in_repo.lower().endswith(IMAGE_SUFFIXES):
            # Copied into the site by on_files; linked relative to this page.
            target = posixpath.relpath(f"{REPO_FILES_DIR}/{in_repo}", page_dir or ".")
        else:
            kind = "tree" if path.is_dir() else "blob"
            target = f"{base}/{kind}/main/{in_repo}"
        return f"{match['bang']}[{match['text']}]({target}{match['rest']})"

    return OUTSIDE_LINK.sub(relink, markdown)
