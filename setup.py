"""Builds esg's compiled hot path, or falls back to pure Python when it can't.

Each hot-path module is ordinary typed Python (``esg/http/parser.py`` ...).  Cython compiles
the same file into a twin extension named ``_<module>_c`` that sits beside it, so both builds
can be imported in one process and tested against each other.  A few modules are hand-written
Cython (``.pyx``) with a pure-Python twin of their own.

The sdist carries those sources, never Cython's generated C: generated C is tied to the Cython
release that wrote it and to the CPython C API of its day (code generated for 3.11 fails to
build on 3.13), so it is made at install time by the Cython that ``pyproject.toml`` asks for.

Environment:

- ``ESG_NO_EXTENSIONS=1``: don't try; install pure Python (PyPy, platforms without a compiler).
- ``ESG_REQUIRE_EXTENSIONS=1``: a failed C build is an error instead of a fallback.

Without either, a failed C build (no compiler, no Python headers, no Cython) prints one warning
line and installs pure Python, as aiohttp, multidict and yarl do.  The wheel made that way is
tagged pure (``py3-none-any``) so that nothing claims a compiled core that isn't there.
"""

from __future__ import annotations

import glob
import gzip
import os
import platform
import re
import sys
import tarfile
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HOT_PATH = [
    "esg/http/parser.py",
    "esg/http/serializer.py",
    "esg/http/cycle.py",
    "esg/http/protocol.py",
    "esg/websocket/frames.py",
    "esg/metrics.py",
    "esg/write_flow.py",
    "esg/http2/hpack.py",
    "esg/http2/connection.py",
    "esg/http2/protocol.py",
]
# Hand-written Cython where one typed-Python source can't be fast enough; each has a
# pure-Python twin that the same tests run against (named in the .pyx's docstring).
HAND_WRITTEN = [
    "esg/http/_headscan_c.pyx",
    "esg/websocket/_mask_c.pyx",
]
COMPILER_DIRECTIVES = {
    # Bounds checks and negative indexing stay on: both builds must behave identically.
    "embedsignature": True,
    # Every esg object is owned by the one event-loop thread that serves its connection, and
    # the module-level caches are bounded dicts/sets (whose operations are atomic on a
    # free-threaded CPython too), so the compiled modules don't rely on the GIL.
    # docs/development.md ("Release artefacts") says what was and wasn't verified.
    "freethreading_compatible": True,
}


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _wants_extensions() -> bool:
    return not _flag("ESG_NO_EXTENSIONS") and platform.python_implementation() == "CPython"


def _extensions() -> list[Extension]:
    """The extension modules, named by their sources; Cython translates them at build time."""
    if not _wants_extensions():
        return []
    modules = []
    for path in HOT_PATH:
        package, _, filename = path[: -len(".py")].rpartition("/")
        name = f"{package.replace('/', '.')}._{filename}_c"
        modules.append(Extension(name, [path], extra_compile_args=["-O3"]))
    for path in HAND_WRITTEN:
        name = path[: -len(".pyx")].replace("/", ".")
        modules.append(Extension(name, [path], extra_compile_args=["-O3"]))
    return modules


CYTHON_BUILD_DIR = os.path.join("build", "cython")


def _forget_stale_c(extensions: list[Extension]) -> None:
    """Delete generated C older than any ``.pxd`` in the tree, so cythonize translates again.

    Cython tracks a ``.py`` source's own changes but not those of its augmenting ``.pxd``
    (``_parser_c.pxd`` beside ``parser.py``), nor of the ``.pxd`` files it cimports: an edit to
    one of those alone would leave the old C (and the old C fields) in place.
    """
    pxd_times = [os.path.getmtime(path) for path in glob.glob("esg/**/*.pxd", recursive=True)]
    newest_pxd = max(pxd_times, default=0.0)
    for extension in extensions:
        for source in extension.sources:
            stem, _ = os.path.splitext(source)
            generated = os.path.join(CYTHON_BUILD_DIR, stem + ".c")
            if os.path.exists(generated) and os.path.getmtime(generated) < newest_pxd:
                os.remove(generated)


class BuildExtOrFallBack(build_ext):
    """Cythonize and compile; if that fails, warn once and leave a pure-Python install."""

    def finalize_options(self) -> None:
        # Cythonize before setuptools prepares the extensions it will build.
        self.cython_failure: Exception | None = None
        if self.distribution.ext_modules:
            try:
                self.distribution.ext_modules = self._cythonize(self.distribution.ext_modules)
            except Exception as exc:  # noqa: BLE001 - no Cython, or a translation error
                self.cython_failure = exc
        super().finalize_options()

    def run(self) -> None:
        try:
            if self.cython_failure is not None:
                raise self.cython_failure
            super().run()
        except Exception as exc:  # noqa: BLE001 - any failure of the C build means "fall back"
            if _flag("ESG_REQUIRE_EXTENSIONS"):
                raise
            self._fall_back(exc)

    @staticmethod
    def _cythonize(extensions: list[Extension]) -> list[Extension]:
        from Cython.Build import cythonize

        _forget_stale_c(extensions)
        # Generated C goes to the build directory, not beside the sources.
        return list(
            cythonize(
                extensions,
                language_level=3,
                compiler_directives=COMPILER_DIRECTIVES,
                build_dir=CYTHON_BUILD_DIR,
                quiet=True,
            )
        )

    def _fall_back(self, exc: BaseException) -> None:
        print(
            f"WARNING: esg's C extensions could not be built ({_reason(exc)}); installing the"
            " pure-Python build, which is slower. Set ESG_REQUIRE_EXTENSIONS=1 to make this an"
            " error.",
            file=sys.stderr,
        )
        # A half-finished build would mix compiled and pure modules: remove what was built.
        for ext in self.extensions:
            built = self.get_ext_fullpath(ext.name)
            if os.path.exists(built):
                os.remove(built)
        self.extensions = []
        self.distribution.ext_modules = []
        wheel = self.distribution.command_obj.get("bdist_wheel")
        if wheel is not None:
            # Read by bdist_wheel after the build, for the install layout and the wheel's tag.
            wheel.root_is_pure = True


def _reason(exc: BaseException) -> str:
    """What went wrong, short enough for the one warning line."""
    text = " ".join(str(exc).split())
    # setuptools reports a failed compiler run as the whole command line; name the program.
    failed = re.match(r"Command '\['?([^',\]]+).*non-zero exit status (\d+)", text)
    if failed:
        return f"{failed[1]} exited with status {failed[2]}"
    if isinstance(exc, ImportError):
        return f"{exc.name or 'a module'} is not installed"
    return text[:160] or type(exc).__name__


class ReproducibleSdist(sdist):
    """An sdist whose bytes depend only on its files (and ``SOURCE_DATE_EPOCH``).

    Entries are sorted, owned by root, with normalized modes and one timestamp, and the gzip
    header carries no time or name, so the same commit always gives the same archive.
    """

    def make_archive(
        self, base_name: str, format: str, root_dir: Any = None, base_dir: Any = None, **_: Any
    ) -> str:
        if format != "gztar":
            return str(super().make_archive(base_name, format, root_dir, base_dir))
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01 by default
        archive = f"{base_name}.tar.gz"
        paths = []
        for folder, dirs, files in os.walk(base_dir):
            dirs.sort()
            paths.append(folder)
            paths.extend(os.path.join(folder, name) for name in sorted(files))

        def normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            executable = info.isdir() or info.mode & 0o100
            info.mode = 0o755 if executable else 0o644
            return info

        with (
            open(archive, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in paths:
                tar.add(path, recursive=False, filter=normalize)
        return archive


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildExtOrFallBack, "sdist": ReproducibleSdist},
)
