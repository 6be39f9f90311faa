"""What ``--reload`` watches: the file filters, and the two ways of noticing changes.

``ChangeFilter`` decides which paths count (``--reload-include`` / ``--reload-exclude``, with
the directories that are never looked into); ``PollingWatcher`` walks the directories every
``--reload-delay`` seconds; ``WatchfilesWatcher`` runs watchfiles' Rust watcher in a small child
process and reports filtered paths over a pipe.  The reloader itself is ``esg.supervisors.reload``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import logging
import multiprocessing
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence

from esg.config import DEFAULT_RELOAD_EXCLUDES, DEFAULT_RELOAD_INCLUDES, Config
from esg.escaping import escape_for_log

__all__ = [
    "IGNORED_DIR_NAMES",
    "ChangeFilter",
    "PollingWatcher",
    "WatchfilesWatcher",
    "changed_paths",
    "describe_changes",
    "forget_bytecode",
    "outermost",
    "reload_roots",
    "snapshot",
]

logger = logging.getLogger("esg.error")

WATCHER_READY_WAIT = 5.0  # start the app anyway if watchfiles isn't watching yet by then
WATCHER_STOP_WAIT = 2.0
SHOWN_NAMES = 3  # changed files named in the log line

IGNORED_DIR_NAMES = frozenset(
    {
        "__pycache__",
        "node_modules",
        "site-packages",
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        ".venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".idea",
    }
)
# What the default excludes were meant to catch (they come from regular expressions: ".py[cod]$",
# ".sw.$", "~$"), besides what they match as globs.
_DEFAULT_EXCLUDE_INTENT = {".py[cod]": "*.py[cod]", ".sw.*": "*.sw?", "~*": "*~"}
_GLOB_CHARS = frozenset("*?[")


# -- which files count ---------------------------------------------------------------------------


class ChangeFilter:
    """``change_filter(path)``: does a change to this file call for a reload?

    Only the path is looked at (a deleted file counts too); ``roots`` are the watched
    directories, which relative globs such as ``static/*`` are matched against.
    """

    def __init__(
        self,
        roots: Sequence[str],
        includes: Sequence[str] = DEFAULT_RELOAD_INCLUDES,
        excludes: Sequence[str] = DEFAULT_RELOAD_EXCLUDES,
        ignored_dirs: Iterable[str] = (),
    ) -> None:
        variants: list[str] = []
        for root in roots:
            for variant in (os.path.abspath(root), os.path.realpath(root)):
                if variant not in variants:
                    variants.append(variant)
        self.roots = variants
        self.includes = list(includes)
        self.excludes = list(excludes)
        self._includes = _compile(self.includes)
        self._excludes = _compile(self.excludes)
        self._literal_includes = {p for p in self.includes if not _GLOB_CHARS & set(p)}
        self._ignored_dirs = {os.path.abspath(path) for path in ignored_dirs}
        self._ignored_dirs |= {os.path.realpath(path) for path in ignored_dirs}

    @classmethod
    def from_config(cls, config: Config, roots: Sequence[str]) -> ChangeFilter:
        """The filter for ``--reload-include`` / ``--reload-exclude`` over ``roots``."""
        user_includes: list[str] = list(config.reload_includes)
        user_excludes: list[str] = list(config.reload_excludes)
        includes = [p for p in DEFAULT_RELOAD_INCLUDES if p not in user_excludes]
        includes += [p for p in user_includes if p not in includes]
        excludes: list[str] = []
        for pattern in DEFAULT_RELOAD_EXCLUDES:
            if pattern not in user_includes:
                excludes.append(pattern)
                excludes.append(_DEFAULT_EXCLUDE_INTENT.get(pattern, pattern))
        excludes += user_excludes
        ignored = [p for p in user_excludes if not _GLOB_CHARS & set(p) and os.path.isdir(p)]
        if sys.prefix != sys.base_prefix:  # the running virtualenv, whatever its name
            ignored.append(sys.prefix)
        return cls(roots, includes, list(dict.fromkeys(excludes)), ignored)

    def __call__(self, path: str) -> bool:
        path = os.path.abspath(path)
        located = False
        for root, relative in self._locate(path):
            located = True
            parts = relative.split(os.sep)
            if self._accepts(root, parts):
                return True
        if not located:  # outside every watched directory: judge by the name alone
            name = os.path.basename(path)
            return self._wanted(name, name)
        return False

    def ignores_dir(self, path: str) -> bool:
        """True when nothing below directory ``path`` (inside a watched one) can count."""
        path = os.path.abspath(path)
        located = False
        for root, relative in self._locate(path):
            located = True
            parts = relative.split(os.sep)
            if not any(self._dir_ignored(root, parts, end) for end in range(1, len(parts) + 1)):
                return False
        return located

    def _locate(self, path: str) -> Iterable[tuple[str, str]]:
        for root in self.roots:
            if path.startswith(root) and path[len(root) : len(root) + 1] == os.sep:
                yield root, path[len(root) + 1 :]
            elif root == os.sep and path != root and path.startswith(root):
                yield root, path[1:]

    def _accepts(self, root: str, parts: list[str]) -> bool:
        if any(self._dir_ignored(root, parts, end) for end in range(1, len(parts))):
            return False
        return self._wanted(parts[-1], os.sep.join(parts))

    def _dir_ignored(self, root: str, parts: list[str], end: int) -> bool:
        """Is the directory ``parts[:end]`` (relative to ``root``) one never to look into?"""
        name = parts[end - 1]
        if name in IGNORED_DIR_NAMES:
            return True
        relative = os.sep.join(parts[:end])
        if _matches(self._excludes, name, relative):
            return True
        return bool(self._ignored_dirs) and os.path.join(root, relative) in self._ignored_dirs

    def _wanted(self, name: str, relative: str) -> bool:
        if name in self._literal_includes or relative in self._literal_includes:
            return True
        if _matches(self._excludes, name, relative):
            return False
        return _matches(self._includes, name, relative)


def _compile(patterns: Iterable[str]) -> list[Callable[[str], object]]:
    compiled: list[Callable[[str], object]] = []
    for pattern in patterns:
        compiled.append(re.compile(fnmatch.translate(pattern)).match)
        if pattern.startswith("**/"):  # "**/*.html" also covers the top level
            compiled.append(re.compile(fnmatch.translate(pattern[3:])).match)
    return compiled


def _matches(patterns: list[Callable[[str], object]], name: str, relative: str) -> bool:
    return any(match(name) or match(relative) for match in patterns)


def reload_roots(config: Config) -> list[str]:
    """The watched directories: ``--reload-dir`` (absolute, existing) or the current one."""
    roots: list[str] = []
    for directory in config.reload_dirs:
        path = os.path.abspath(directory)
        if not os.path.isdir(path):
            logger.warning("--reload-dir %r is not a directory; ignoring it", directory)
        elif path not in roots:
            roots.append(path)
    return roots or [os.getcwd()]


def outermost(roots: Sequence[str]) -> list[str]:
    """``roots`` without those inside another one (a recursive watch covers them)."""
    kept: list[str] = []
    for root in sorted(set(roots), key=len):
        if not any(
            root == other or root.startswith(other.rstrip(os.sep) + os.sep) for other in kept
        ):
            kept.append(root)
    return [root for root in dict.fromkeys(roots) if root in kept]


def describe_changes(paths: Iterable[str], cwd: str | None = None) -> str:
    """``'a.py', 'b/c.py' and 2 more``: relative to ``cwd`` when inside it."""
    cwd = cwd or os.getcwd()
    names = sorted(_display_path(path, cwd) for path in paths)
    shown = ", ".join(f"'{escape_for_log(name)}'" for name in names[:SHOWN_NAMES])
    if len(names) > SHOWN_NAMES:
        shown += f" and {len(names) - SHOWN_NAMES} more"
    return shown


def forget_bytecode(paths: Iterable[str]) -> None:
    """Remove the cached bytecode of the ``.py`` files among ``paths``, if there is any."""
    for path in paths:
        if path.endswith(".py"):
            with contextlib.suppress(NotImplementedError, ValueError, OSError):
                os.unlink(importlib.util.cache_from_source(path))


def _display_path(path: str, cwd: str) -> str:
    if path.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, cwd)
    return path


# -- polling ------------------------------------------------------------------------------------

Snapshot = dict[str, tuple[int, int, int]]


def snapshot(roots: Sequence[str], change_filter: ChangeFilter) -> Snapshot:
    """Modification time, size and inode of every included file below ``roots``."""
    files: Snapshot = {}
    root_set = set(roots)
    for root in roots:
        pending = [root]
        while pending:
            directory = pending.pop()
            try:
                entries = os.scandir(directory)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    with contextlib.suppress(OSError):  # vanished, unreadable
                        if entry.is_dir(follow_symlinks=False):
                            # Another root is walked on its own.
                            if entry.path not in root_set and not change_filter.ignores_dir(
                                entry.path
                            ):
                                pending.append(entry.path)
                        elif entry.path not in files and change_filter(entry.path):
                            info = entry.stat()
                            files[entry.path] = (info.st_mtime_ns, info.st_size, info.st_ino)
    return files


def changed_paths(before: Snapshot, after: Snapshot) -> set[str]:
    """Files added, modified or deleted between two snapshots."""
    changed = {path for path, state in after.items() if before.get(path) != state}
    changed.update(path for path in before if path not in after)
    return changed


class PollingWatcher:
    """Walks the directories every ``interval`` seconds; runs in the reloader itself."""

    name = "polling"
    ready = True

    def __init__(self, roots: Sequence[str], change_filter: ChangeFilter, interval: float):
        self.roots = list(roots)
        self.change_filter = change_filter
        self.interval = interval
        self.files = snapshot(self.roots, change_filter)
        self.next_scan = time.monotonic() + interval

    def fileno(self) -> int | None:
        return None

    def timeout(self, now: float) -> float:
        return max(0.0, self.next_scan - now)

    def changes(self, now: float) -> set[str]:
        if now < self.next_scan:
            return set()
        files = snapshot(self.roots, self.change_filter)
        changed = changed_paths(self.files, files)
        self.files = files
        self.next_scan = time.monotonic() + self.interval  # after the walk, however long
        return changed

    def close(self) -> None:
        self.files = {}


# -- watchfiles ---------------------------------------------------------------------------------


class WatchfilesWatcher:
    """watchfiles in a child process that writes the filtered changes to a pipe.

    Each changed path is sent followed by a NUL byte; an empty record (a lone NUL) ends a
    batch.  The first, empty, batch means "watching now".
    """

    name = "watchfiles"

    def __init__(
        self,
        roots: Sequence[str],
        change_filter: ChangeFilter,
        delay: float,
        close_in_child: list[int],
        sockets: list[socket.socket],
    ) -> None:
        self.read_fd, write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        context = multiprocessing.get_context("fork")
        self.process = context.Process(
            target=_watch_in_child,
            args=(
                list(roots),
                change_filter,
                delay,
                write_fd,
                [*close_in_child, self.read_fd],
                sockets,
                os.getpid(),
            ),
            name="esg-reload-watcher",
            daemon=True,
        )
        try:
            self.process.start()
        finally:
            os.close(write_fd)
        self.ready = False
        self.ready_deadline = time.monotonic() + WATCHER_READY_WAIT
        self.eof = False
        self._buffer = bytearray()
        self._batch: list[str] = []

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def fileno(self) -> int:
        return self.read_fd

    def timeout(self, now: float) -> float:
        return float("inf")

    @property
    def exitcode(self) -> int | None:
        """The child's exit status once it is gone (its pipe closed or the process exited)."""
        code = self.process.exitcode
        if code is None and self.eof:
            self.process.join(WATCHER_STOP_WAIT)  # it closed the pipe: it is on its way out
            code = self.process.exitcode
        return code

    def changes(self, now: float) -> set[str]:
        while not self.eof:
            try:
                data = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.eof = True
            self._buffer += data
        changed: set[str] = set()
        while (end := self._buffer.find(b"\0")) >= 0:
            record = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if record:
                self._batch.append(os.fsdecode(record))
            else:
                self.ready = True
                changed.update(self._batch)
                self._batch = []
        return changed

    def close(self) -> None:
        if self.process.exitcode is None:
            self.process.terminate()
            self.process.join(WATCHER_STOP_WAIT)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join(WATCHER_STOP_WAIT)
        with contextlib.suppress(OSError):
            os.close(self.read_fd)
        with contextlib.suppress(ValueError):
            self.process.close()


class _ParentGone:
    """watchfiles' ``stop_event``: checked after every step, so also our "watching now" cue."""

    def __init__(self, parent_pid: int, on_first_check: Callable[[], None]) -> None:
        self.parent_pid = parent_pid
        self.on_first_check: Callable[[], None] | None = on_first_check

    def is_set(self) -> bool:
        if self.on_first_check is not None:
            callback, self.on_first_check = self.on_first_check, None
            callback()
        return os.getppid() != self.parent_pid


def _watch_in_child(
    roots: list[str],
    change_filter: ChangeFilter,
    delay: float,
    write_fd: int,
    close_fds: list[int],
    sockets: list[socket.socket],
    parent_pid: int,
) -> None:
    """The watcher process: report filtered changes until the reloader goes away."""
    signal.set_wakeup_fd(-1)
    # Ctrl+C reaches the whole process group: the reloader decides, then terminates us.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    for sock in sockets:  # the port must not outlive the reloader through us
        sock.close()
    logging.getLogger("watchfiles").setLevel(logging.WARNING)

    def send(paths: Iterable[str]) -> None:
        data = b"".join(os.fsencode(path) + b"\0" for path in paths) + b"\0"
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]

    step = max(1, round(delay * 1000))
    try:
        import watchfiles

        stop = _ParentGone(parent_pid, lambda: send(()))
        for changes in watchfiles.watch(
            *roots,
            watch_filter=None,
            debounce=max(1600, 2 * step),
            step=step,
            stop_event=stop,
            raise_interrupt=False,
            debug=False,
            ignore_permission_denied=True,
        ):
            paths = sorted({path for _, path in changes if change_filter(path)})
            if paths:
                send(paths)
    except BrokenPipeError:
        return  # the reloader is gone
    except Exception as exc:
        logger.error("watchfiles can't watch the directories: %s: %s", type(exc).__name__, exc)
        raise SystemExit(1) from None
