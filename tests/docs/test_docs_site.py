"""The documentation site (``mkdocs.yml``, ``docs/``, ``tools/docs_hooks.py``; ``make docs``).

The site is built once per test run, strictly, into a temporary directory, as ``make docs``
builds it: a broken link, a missing included file or an option without help text fails the
build.  The Settings page must list every option of the ``esg`` command with the words of its
``--help``, and the home page must show in a real browser (headless Chromium, whose screenshot
is decoded here: a blank or unstyled page fails).

Without MkDocs and its Material theme (``pip install -e '.[docs]'``) these tests skip with one
line; with ``ESG_REQUIRE_DOCS=1`` (set by ``.ci/run``) they fail instead.  A missing Chromium
skips the screenshot, or fails it under ``ESG_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import html
import html.parser
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click
import pytest
from utils import REPO_DIR

from esg.main import main as esg_main

MKDOCS_YML = REPO_DIR / "mkdocs.yml"
DOCS_HOOKS = REPO_DIR / "tools" / "docs_hooks.py"
REQUIRE_DOCS = os.environ.get("ESG_REQUIRE_DOCS", "") not in ("", "0")
BUILD_TIMEOUT = 120.0
SCREENSHOT_TIMEOUT = 60.0
WINDOW = (1280, 900)
# The top rows of the page, all of them the theme's header bar (mkdocs.yml: primary indigo).
HEADER_HEIGHT = 40


def missing_tools() -> str | None:
    """Why the site can't be built here, or None."""
    if not MKDOCS_YML.is_file():
        return "mkdocs.yml is not here: the documentation is built from a checkout"
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        return "MkDocs and mkdocs-material are not installed (pip install -e '.[docs]')"
    return None


MISSING = missing_tools()
if MISSING is not None and not REQUIRE_DOCS:
    pytest.skip(f"{MISSING}; set ESG_REQUIRE_DOCS=1 to fail", allow_module_level=True)


def require_mkdocs() -> None:
    """With ESG_REQUIRE_DOCS=1 a missing tool fails each test that needs it (the rest run)."""
    if MISSING is not None:
        pytest.fail(f"ESG_REQUIRE_DOCS=1 but {MISSING}", pytrace=False)


@pytest.fixture(scope="module")
def hooks() -> ModuleType:
    require_mkdocs()
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS_HOOKS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site() -> Iterator[Path]:
    """The site, built with ``mkdocs build --strict`` as ``make docs`` does."""
    require_mkdocs()
    with tempfile.TemporaryDirectory(prefix="esg-site-") as directory:
        site_dir = Path(directory) / "site"
        command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
        command += ["--config-file", str(MKDOCS_YML), "--site-dir", str(site_dir)]
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        result = subprocess.run(
            command,
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
        yield site_dir


# -- the Settings page ----------------------------------------------------------------------


class TableRows(html.parser.HTMLParser):
    """The text of each cell of each table row (``<td>``) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def settings_rows(site: Path) -> dict[str, list[str]]:
    """The Settings tables' rows, by the option (first cell) each describes."""
    parser = TableRows()
    parser.feed((site / "settings.html").read_text(encoding="utf-8"))
    return {row[0]: row for row in parser.rows if row}


def option_cell(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return " / ".join([*param.opts, *param.secondary_opts])


def test_settings_page_lists_every_option(site: Path) -> None:
    """Each parameter of ``esg`` has its row, and the page lists nothing the command lacks."""
    rows = settings_rows(site)
    expected = {option_cell(param) for param in esg_main.params}
    assert set(rows) == expected, (
        f"missing: {sorted(expected - set(rows))}, not options: {sorted(set(rows) - expected)}"
    )


def test_settings_page_has_each_options_help_and_variable(hooks: ModuleType, site: Path) -> None:
    """A row says what ``esg --help`` says of the option, and names its ESG_* variable."""
    rows = settings_rows(site)
    ctx = click.Context(esg_main, info_name="esg", auto_envvar_prefix="ESG")
    for param in esg_main.params:
        option, default, description, where = rows[option_cell(param)]
        if isinstance(param, click.Option) and not param.hidden:
            record = param.get_help_record(ctx)
            assert record is not None and record[1].strip(), f"{option} has no help text"
            help_text, _ = hooks.split_help(" ".join(record[1].split()))
            assert description.startswith(help_text), (option, description, help_text)
        else:
            assert description, f"{option} is not described"
        assert default, option
        assert param.name is not None
        if param.name != "version":  # --version reads no variable
            assert f"ESG_{param.name.upper()}" in where, (option, where)


def test_settings_page_shows_the_whole_help(site: Path) -> None:
    page = (site / "settings.html").read_text(encoding="utf-8")
    pre = re.findall(r"<pre[^>]*>(.*?)</pre>", page, re.S)
    blocks = [html.unescape(re.sub(r"<[^>]+>", "", block)) for block in pre]
    help_text = esg_main.get_help(
        click.Context(esg_main, info_name="esg", terminal_width=98, max_content_width=100)
    )
    assert any(help_text.strip() in block for block in blocks)


def test_every_hidden_option_is_described(hooks: ModuleType) -> None:
    """uvicorn's options hidden from --help have no help text to generate from: each has a line."""
    hidden = {p.name for p in esg_main.params if isinstance(p, click.Option) and p.hidden}
    assert hidden <= set(hooks.HIDDEN_OPTIONS), sorted(hidden - set(hooks.HIDDEN_OPTIONS))


def test_included_files_are_on_the_site(site: Path) -> None:
    """The example configurations and the benchmark results are the repository's files."""
    deployment = (site / "deployment.html").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", deployment))
    for path in ("examples/nginx/esg.conf", "examples/haproxy/haproxy.cfg"):
        for line in (REPO_DIR / path).read_text(encoding="utf-8").splitlines():
            assert line.strip() in text, f"{path}: {line!r} is not on the Deployment page"
    benchmarks = (site / "benchmarks.html").read_text(encoding="utf-8")
    latest = (REPO_DIR / "bench" / "results" / "latest.md").read_text(encoding="utf-8")
    assert html.escape(latest.splitlines()[0], quote=False) in benchmarks
    chart = site / "repo-files" / "bench" / "results" / "latest.png"
    assert chart.read_bytes() == (REPO_DIR / "bench" / "results" / "latest.png").read_bytes()


# -- the home page in a browser -------------------------------------------------------------


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path is not None:
            return path
    if os.environ.get("ESG_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail("ESG_REQUIRE_BROWSER=1 but no chromium binary is installed")
    pytest.skip("no chromium binary (apt-get install chromium); set ESG_REQUIRE_BROWSER=1 to fail")


def screenshot(chromium: str, url: str, png: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="esg-chromium-") as profile:
        command = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--no-proxy-server",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={png}",
            url,
        ]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SCREENSHOT_TIMEOUT,
            start_new_session=True,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks: list[bytes] = []
    pos, width, height, channels = 8, 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            chunks.append(body)
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    assert len(raw) == height * (stride + 1), "truncated image data"
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        line = unfilter(raw[start], line, previous, channels)
        rows.append(b"".join(line[x : x + 3] for x in range(0, stride, channels)))
        previous = line
    return width, height, rows


def unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> bytearray:
    """PNG's five scanline filters undone (PNG specification, section 9)."""
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    else:
        assert kind == 0, f"unknown PNG filter {kind}"
    return line


def colours(rows: list[bytes]) -> Counter[bytes]:
    return Counter(row[x : x + 3] for row in rows for x in range(0, len(row), 3))


def test_home_page_screenshot(site: Path, tmp_path: Path) -> None:
    """The built home page, shown by headless Chromium: the theme's header and the text."""
    chromium = find_chromium()
    png = tmp_path / "home.png"
    screenshot(chromium, (site / "index.html").as_uri(), png)
    width, height, rows = png_pixels(png.read_bytes())
    assert (width, height) == WINDOW
    everything = colours(rows)
    top, share = everything.most_common(1)[0]
    assert share < 0.95 * width * height, f"the page is nearly all one colour ({top.hex()})"
    # The header bar is the theme's indigo (blue well above red and green): the CSS loaded.
    header = colours(rows[:HEADER_HEIGHT])
    indigo = sum(n for (r, g, b), n in header.items() if b > r + 60 and b > g + 60)
    assert indigo > 0.5 * width * HEADER_HEIGHT, "no theme-coloured header bar"
    # Below it, dark text on a light page: the Markdown rendered into words.
    body = colours(rows[HEADER_HEIGHT:])
    dark = sum(n for (r, g, b), n in body.items() if max(r, g, b) < 100)
    light = sum(n for (r, g, b), n in body.items() if min(r, g, b) > 230)
    assert dark > 0.002 * width * height, "no text on the page"
    assert light > 0.5 * width * height, "the page isn't light: not the default scheme"
