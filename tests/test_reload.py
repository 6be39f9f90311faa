"""``esg --reload``: the change filter on its own, then the reloader as a real process.

The process tests write a small app (``mod.py``) into a temporary directory, run
``python -m esg mod:app --reload`` from there and edit the file; they run once with watchfiles
and once with the polling backend (``ESG_RELOAD_POLL=1``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from utils import (
    STOP_TIMEOUT,
    ServerProcess,
    esg_command,
    free_port,
    request_bytes,
    subprocess_env,
    wait_for,
)

from esg.supervisors.watch import (
    IGNORED_DIR_NAMES,
    ChangeFilter,
    PollingWatcher,
    changed_paths,
    describe_changes,
    forget_bytecode,
    outermost,
    reload_roots,
    snapshot,
)

# -- the filter -------------------------------------------------------------------------------


def make_filter(
    root: Path, includes: list[str] | None = None, excludes: list[str] | None = None
) -> ChangeFilter:
    config = SimpleNamespace(reload_includes=includes or [], reload_excludes=excludes or [])
    return ChangeFilter.from_config(config, [str(root)])


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("app.py", True),
        ("pkg/sub/mod.py", True),
        ("notes.txt", False),
        ("index.html", False),
        (".hidden.py", False),
        ("app.pyc", False),
        (".app.py.swp", False),
        ("app.py~", False),
        ("~lock.py", False),
        ("__pycache__/app.py", False),
        ("pkg/__pycache__/app.py", False),
        (".git/hooks/pre-commit.py", False),
        ("node_modules/lib/build.py", False),
        (".venv/lib/python3.11/site-packages/x.py", False),
        ("env/lib/python3.11/site-packages/x.py", False),
        (".hidden_dir/app.py", False),
    ],
)
def test_default_filter(tmp_path: Path, relative: str, expected: bool) -> None:
    assert make_filter(tmp_path)(str(tmp_path / relative)) is expected


def test_include_globs_match_the_name_or_the_relative_path(tmp_path: Path) -> None:
    change_filter = make_filter(tmp_path, includes=["*.html", "static/*"])
    assert change_filter(str(tmp_path / "index.html"))
    assert change_filter(str(tmp_path / "templates" / "deep" / "page.html"))
    assert change_filter(str(tmp_path / "static" / "css" / "site.css"))
    assert not change_filter(str(tmp_path / "other" / "site.css"))
    assert change_filter(str(tmp_path / "app.py"))  # the default stays
    assert not change_filter(str(tmp_path / "static" / ".hidden.css"))  # excluded by '.*'


def test_double_star_prefix_covers_the_top_level(tmp_path: Path) -> None:
    change_filter = make_filter(tmp_path, includes=["**/*.html"])
    assert change_filter(str(tmp_path / "a.html"))
    assert change_filter(str(tmp_path / "x" / "b.html"))


def test_exclude_globs_and_directories(tmp_path: Path) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    change_filter = make_filter(tmp_path, excludes=["build/*", "generated", str(vendor)])
    assert not change_filter(str(tmp_path / "build" / "x.py"))
    assert change_filter(str(tmp_path / "src" / "build" / "x.py"))  # 'build/*' is relative
    assert not change_filter(str(tmp_path / "generated" / "y.py"))
    assert not change_filter(str(tmp_path / "src" / "generated" / "z.py"))  # a name anywhere
    assert not change_filter(str(vendor / "lib.py"))
    assert change_filter(str(tmp_path / "src" / "app.py"))
    assert change_filter.ignores_dir(str(tmp_path / "build" / "sub"))
    assert change_filter.ignores_dir(str(vendor))
    assert not change_filter.ignores_dir(str(tmp_path / "src"))


def test_naming_a_default_in_the_other_option_drops_it(tmp_path: Path) -> None:
    only_html = make_filter(tmp_path, includes=["*.html"], excludes=["*.py"])
    assert not only_html(str(tmp_path / "app.py"))
    assert only_html(str(tmp_path / "a.html"))
    hidden = make_filter(tmp_path, includes=[".*"])
    assert hidden(str(tmp_path / ".config.py"))
    assert hidden(str(tmp_path / ".env"))
    assert not hidden(str(tmp_path / ".git" / "config.py"))  # ignored directories stay ignored
    assert not hidden(str(tmp_path / "a.pyc"))


def test_an_include_without_wildcards_wins_over_the_excludes(tmp_path: Path) -> None:
    change_filter = make_filter(tmp_path, includes=[".env", "conf/.settings"])
    assert change_filter(str(tmp_path / ".env"))
    assert change_filter(str(tmp_path / "conf" / ".settings"))
    assert not change_filter(str(tmp_path / ".other"))


def test_ignored_directories(tmp_path: Path) -> None:
    change_filter = ChangeFilter([str(tmp_path)], ignored_dirs=[str(tmp_path / "myenv")])
    assert not change_filter(str(tmp_path / "myenv" / "lib" / "x.py"))
    assert change_filter.ignores_dir(str(tmp_path / "myenv"))
    for name in IGNORED_DIR_NAMES:
        assert change_filter.ignores_dir(str(tmp_path / "pkg" / name)), name
    assert not change_filter.ignores_dir(str(tmp_path / "pkg"))


def test_nested_roots_each_count(tmp_path: Path) -> None:
    inner = tmp_path / ".hidden" / "inner"
    change_filter = ChangeFilter([str(tmp_path), str(inner)])
    assert change_filter(str(inner / "a.py"))  # watched explicitly
    assert not change_filter(str(tmp_path / ".hidden" / "b.py"))


def test_path_outside_the_roots_is_judged_by_its_name(tmp_path: Path) -> None:
    change_filter = ChangeFilter([str(tmp_path / "root")])
    assert change_filter(str(tmp_path / "elsewhere" / "x.py"))
    assert not change_filter(str(tmp_path / "elsewhere" / "x.txt"))


def test_outermost_drops_nested_roots() -> None:
    assert outermost(["/a/b", "/a", "/c", "/ab", "/a"]) == ["/a", "/c", "/ab"]


def test_reload_roots_default_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert reload_roots(SimpleNamespace(reload_dirs=[])) == [str(tmp_path)]
    (tmp_path / "src").mkdir()
    config = SimpleNamespace(reload_dirs=["src", "src", "missing"])
    assert reload_roots(config) == [str(tmp_path / "src")]


def test_describe_changes(tmp_path: Path) -> None:
    paths = [str(tmp_path / name) for name in ("b.py", "a.py", "pkg/c.py", "d.py", "e.py")]
    assert describe_changes(paths[:2], str(tmp_path)) == "'a.py', 'b.py'"
    assert describe_changes(paths, str(tmp_path)) == "'a.py', 'b.py', 'd.py' and 2 more"
    assert describe_changes(["/x/y.py"], str(tmp_path)) == "'/x/y.py'"
    assert describe_changes([str(tmp_path / "a\nb.py")], str(tmp_path)) == "'a\\x0ab.py'"


def test_snapshot_sees_added_modified_and_deleted_files(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "node_modules").mkdir()
    for name in ("keep.py", "edit.py", "gone.py", "pkg/mod.py", "notes.txt", "node_modules/x.py"):
        (tmp_path / name).write_text("x = 1\n")
    change_filter = make_filter(tmp_path)
    before = snapshot([str(tmp_path)], change_filter)
    expected = {str(tmp_path / n) for n in ("keep.py", "edit.py", "gone.py", "pkg/mod.py")}
    assert set(before) == expected
    edited = tmp_path / "edit.py"
    info = edited.stat()
    os.utime(edited, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    (tmp_path / "gone.py").unlink()
    (tmp_path / "pkg" / "new.py").write_text("")
    (tmp_path / "notes.txt").write_text("changed")
    (tmp_path / "node_modules" / "x.py").write_text("changed")
    after = snapshot([str(tmp_path)], change_filter)
    assert changed_paths(before, after) == {
        str(tmp_path / "edit.py"),
        str(tmp_path / "gone.py"),
        str(tmp_path / "pkg" / "new.py"),
    }
    assert changed_paths(after, after) == set()


def test_polling_watcher_reports_changes_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("a = 1\n")
    watcher = PollingWatcher([str(tmp_path)], make_filter(tmp_path), interval=0.1)
    assert watcher.fileno() is None
    assert watcher.changes(time.monotonic() + 60) == set()
    (tmp_path / "app.py").write_text("a = 22\n")
    assert watcher.changes(time.monotonic() - 60) == set()  # not due yet
    assert watcher.changes(time.monotonic() + 60) == {str(tmp_path / "app.py")}
    assert watcher.changes(time.monotonic() + 60) == set()


def test_forget_bytecode_removes_only_the_changed_modules_cache(tmp_path: Path) -> None:
    import importlib.util

    sources = [tmp_path / "a.py", tmp_path / "b.py"]
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        cached.parent.mkdir(exist_ok=True)
        cached.write_bytes(b"")
    forget_bytecode([str(sources[0]), str(tmp_path / "notes.txt"), str(tmp_path / "new.py")])
    assert not Path(importlib.util.cache_from_source(str(sources[0]))).exists()
    assert Path(importlib.util.cache_from_source(str(sources[1]))).exists()


# -- the reloader as a process ----------------------------------------------------------------

APP_SOURCE = """
import asyncio
import os
from urllib.parse import parse_qs

MESSAGE = @MESSAGE@


async def lifespan(receive, send):
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            marker = os.environ.get("RELOAD_TEST_MARKER")
            if marker:
                with open(marker, "a") as file:
                    file.write(f"shutdown {MESSAGE} {os.getpid()}\\n")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/gated":
        query = parse_qs(scope["query_string"].decode())
        open(query["started"][0], "w").close()
        for _ in range(3000):  # up to 60 s
            if os.path.exists(query["gate"][0]):
                break
            await asyncio.sleep(0.02)
    body = f"{MESSAGE} {os.getpid()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""

BACKENDS = ["watchfiles", "polling"]
HAS_PROC = os.path.isdir("/proc/self")
DETECTED = re.compile(r"Detected changes in (.*), reloading")


def write_atomically(path: Path, text: str, mtime_ns: int | None = None) -> None:
    """Write like an editor that saves through a temporary file ('.*' is excluded)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    if mtime_ns is not None:
        os.utime(temporary, ns=(mtime_ns, mtime_ns))
    os.replace(temporary, path)


def write_app(directory: Path, message: str, mtime_ns: int | None = None) -> None:
    source = APP_SOURCE.replace("@MESSAGE@", repr(message))
    write_atomically(directory / "mod.py", source, mtime_ns)


def get(server: ServerProcess, path: str = "/") -> str:
    try:
        return httpx.get(f"{server.url}{path}", timeout=10).text
    except httpx.HTTPError:
        return ""


def serves(server: ServerProcess, message: str) -> int:
    """Wait until the app answers with ``message``; the worker's pid."""
    if not wait_for(lambda: get(server).startswith(f"{message} "), timeout=20):
        raise AssertionError(f"never served {message!r}:\n{server.stderr()}")
    return int(get(server).split()[-1])


def child_pids(pid: int) -> set[int]:
    """The children of ``pid`` (Linux: read from /proc; elsewhere none are found)."""
    children: set[int] = set()
    if not HAS_PROC:
        return children
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.add(int(entry))
    return children


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            state = file.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    write_app(directory, "one")
    return directory


@contextlib.contextmanager
def run_reloader(
    directory: Path,
    backend: str,
    *args: str,
    reload_dir: bool = True,
    env: dict[str, str] | None = None,
    bytecode: bool = False,
) -> Iterator[ServerProcess]:
    """``esg mod:app --reload`` run from ``directory``; always stopped, children included."""
    port = free_port()
    watch = ["--reload-dir", str(directory)] if reload_dir else []
    command = esg_command(
        "mod:app", "--reload", "--reload-delay", "0.1", "--app-dir", str(directory),
        "--port", str(port), *watch, *args,
    )  # fmt: skip
    extra = {
        "ESG_RELOAD_POLL": "1" if backend == "polling" else "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        **(env or {}),
    }
    full_env = subprocess_env(extra)
    if bytecode:  # let the worker write __pycache__, as it usually does
        del full_env["PYTHONDONTWRITEBYTECODE"]
    stderr_path = directory.parent / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            command,
            env=full_env,
            cwd=str(directory),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    server = ServerProcess(proc, stderr_path, port, None)
    children: set[int] = set()
    try:
        yield server
    finally:
        if proc.poll() is None:
            children = child_pids(proc.pid)
        server.stop()
        for pid in children:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def detected(server: ServerProcess) -> list[str]:
    return DETECTED.findall(server.stderr())


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_edit_is_served(app_dir: Path, backend: str) -> None:
    with run_reloader(app_dir, backend) as server:
        first = serves(server, "one")
        write_app(app_dir, "two!")
        second = serves(server, "two!")
        stderr = server.stderr()
    assert first != second
    assert f"using {backend}" in stderr
    assert f"Will watch for changes in these directories: ['{app_dir}']" in stderr
    assert "'mod.py'" in detected(server), stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_syntax_error_waits_for_the_next_save(app_dir: Path, backend: str) -> None:
    with run_reloader(app_dir, backend) as server:
        serves(server, "one")
        write_atomically(app_dir / "mod.py", "def app(:\n")
        failed = "The app failed to start (exit status 1); waiting for changes"
        assert wait_for(lambda: failed in server.stderr(), timeout=20), server.stderr()
        assert server.proc.poll() is None
        write_app(app_dir, "three")
        serves(server, "three")
        stderr = server.stderr()
    assert "SyntaxError" in stderr
    assert stderr.count(failed) == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_only_matching_files_reload(app_dir: Path, backend: str) -> None:
    for name in ("drafts", "__pycache__", "node_modules", "static"):
        (app_dir / name).mkdir()
    options = ("--reload-include", "*.html", "--reload-exclude", "drafts/*")
    # No --reload-dir: the current directory (app_dir) is watched.
    with run_reloader(app_dir, backend, *options, reload_dir=False) as server:
        first = serves(server, "one")
        for name in (
            "notes.txt",
            ".hidden.py",
            "drafts/draft.html",
            "__pycache__/cached.py",
            "node_modules/dep.py",
        ):
            write_atomically(app_dir / name, "x = 1\n")
        write_atomically(app_dir / "static" / "page.html", "<p>hi</p>")
        assert wait_for(lambda: detected(server), timeout=20), server.stderr()
        second = serves(server, "one")
        stderr = server.stderr()
    assert detected(server) == ["'static/page.html'"], stderr
    assert first != second


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_the_worker_gracefully(app_dir: Path, backend: str) -> None:
    marker = app_dir.parent / "marker"
    with run_reloader(app_dir, backend, env={"RELOAD_TEST_MARKER": str(marker)}) as server:
        worker = serves(server, "one")
        children = child_pids(server.proc.pid)
        server.signal(signal.SIGTERM)
        status = server.wait()
        stderr = server.stderr()
    assert status == 0, stderr
    if HAS_PROC:
        assert worker in children
        assert len(children) == (2 if backend == "watchfiles" else 1)  # the watcher process
    assert marker.read_text() == f"shutdown one {worker}\n"
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=STOP_TIMEOUT)
    assert "Stopping reloader process" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_requests_wait_while_the_worker_restarts(
    app_dir: Path, tmp_path: Path, backend: str
) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with run_reloader(app_dir, backend) as server:
        serves(server, "one")
        with server.raw() as busy, contextlib.ExitStack() as stack:
            busy.send(request_bytes("GET", f"/gated?gate={gate}&started={started}"))
            assert wait_for(started.exists)
            write_app(app_dir, "two!")
            # The old worker no longer accepts; it waits for the request in flight.
            closing = "Waiting for connections to close"
            assert wait_for(lambda: closing in server.stderr(), timeout=20), server.stderr()
            queued = stack.enter_context(server.raw())
            queued.send(request_bytes("GET", "/"))
            gate.touch()
            old = busy.read_response()
            new = queued.read_response()
    assert (old.status, old.body.split()[0]) == (200, b"one")
    assert (new.status, new.body.split()[0]) == (200, b"two!")


@pytest.mark.slow
def test_sighup_reloads(app_dir: Path) -> None:
    with run_reloader(app_dir, "watchfiles") as server:
        first = serves(server, "one")
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: "Received SIGHUP, reloading" in server.stderr())
        assert wait_for(lambda: get(server).split()[-1:] not in ([], [str(first)]), timeout=20)
        assert detected(server) == []


@pytest.mark.slow
def test_a_worker_that_dies_waits_for_the_next_change(app_dir: Path) -> None:
    with run_reloader(app_dir, "polling") as server:
        worker = serves(server, "one")
        os.kill(worker, signal.SIGKILL)
        died = f"Worker [{worker}] stopped unexpectedly (killed by SIGKILL); waiting for changes"
        assert wait_for(lambda: died in server.stderr(), timeout=20), server.stderr()
        write_app(app_dir, "back")
        serves(server, "back")


@pytest.mark.slow
def test_a_second_sigterm_stops_the_worker_now(app_dir: Path, tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    with run_reloader(app_dir, "polling") as server:
        serves(server, "one")
        with server.raw() as busy:
            busy.send(request_bytes("GET", f"/gated?gate={gate}&started={started}"))
            assert wait_for(started.exists)
            server.signal(signal.SIGTERM)
            closing = "Waiting for connections to close"
            assert wait_for(lambda: closing in server.stderr(), timeout=20), server.stderr()
            server.signal(signal.SIGTERM)
            status = server.wait(timeout=STOP_TIMEOUT)
            closed = busy.is_closed()
        stderr = server.stderr()
    assert status == 0, stderr
    assert closed
    assert "Received SIGTERM again: stopping the worker now" in stderr
    assert "still has open requests" not in stderr


@pytest.mark.slow
def test_polling_takes_over_when_the_watcher_dies(app_dir: Path) -> None:
    with run_reloader(app_dir, "watchfiles") as server:
        serves(server, "one")
        found = re.search(r"watcher process \[(\d+)\]", server.stderr())
        assert found, server.stderr()
        os.kill(int(found.group(1)), signal.SIGKILL)
        fallback = "The watchfiles watcher process stopped (killed by SIGKILL); polling every"
        assert wait_for(lambda: fallback in server.stderr(), timeout=20), server.stderr()
        write_app(app_dir, "polled")
        serves(server, "polled")


@pytest.mark.slow
def test_a_same_size_edit_within_the_second_is_not_served_stale(app_dir: Path) -> None:
    # Python trusts cached bytecode whose recorded source size and mtime (in whole seconds)
    # match: the reloader must remove it for the changed files.
    second = (int(time.time()) - 10) * 1_000_000_000
    write_app(app_dir, "one", mtime_ns=second + 100_000_000)
    with run_reloader(app_dir, "watchfiles", bytecode=True) as server:
        serves(server, "one")
        assert list((app_dir / "__pycache__").glob("mod.*.pyc"))
        write_app(app_dir, "two", mtime_ns=second + 200_000_000)  # same size
        serves(server, "two")
