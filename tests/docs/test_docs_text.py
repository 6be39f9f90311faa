"""The documents as text, without building the site (no MkDocs needed).

The README points into docs/, so its relative links must name files that exist; and every
``esg ...`` command line shown in the README or in docs/ may only use options the ``esg``
command has, so that renaming or removing an option can't leave an example behind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
from utils import REPO_DIR

from esg.main import main as esg_main

DOCUMENTS = [REPO_DIR / "README.md", *sorted((REPO_DIR / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(?P<body>.*?)^```$", re.M | re.S)
CODE_SPAN = re.compile(r"`(?P<code>esg [^`]+)`")
# Where a command line starts: `esg ...`, `ESG_PORT=9000 esg ...`, or a JSON list ["esg", ...].
ESG_COMMAND = re.compile(r'(?:^|\s|\[)"?esg"?(?:,|\s)(?P<args>.*)$', re.S)
OPTION = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")


def test_readme_links_resolve() -> None:
    """The README's relative links (into docs/ and the tree) name files that exist."""
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    relative = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in relative)
    missing = [target for target in relative if not (REPO_DIR / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def command_lines(text: str) -> Iterator[str]:
    """Each shell command or JSON command list in ``text``'s code, continuations joined."""
    for fence in FENCE.finditer(text):
        # A trailing backslash continues a shell line; an open [ continues a JSON list.
        body = re.sub(r"\\\n", " ", fence["body"])
        body = re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace("\n", " "), body)
        yield from body.splitlines()
    for span in CODE_SPAN.finditer(text):
        yield span["code"]


def esg_options_used(path: Path) -> Iterator[tuple[str, str]]:
    for line in command_lines(path.read_text(encoding="utf-8")):
        line = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        match = ESG_COMMAND.search(line)
        if match is not None:
            for option in OPTION.findall(match["args"]):
                yield option, line.strip()


def test_command_lines_use_real_options() -> None:
    known = {"--help"}
    for param in esg_main.params:
        if isinstance(param, click.Option):
            known.update(param.opts, param.secondary_opts)
    seen = set()
    for path in DOCUMENTS:
        for option, line in esg_options_used(path):
            seen.add(option)
            assert option in known, f"{path.name}: {line!r} uses {option}, which esg doesn't have"
    # The examples are found at all: the Kubernetes command list, for one, is read whole.
    assert {"--workers", "--timeout-graceful-shutdown", "--metrics-host"} <= seen
