"""The peers' own virtualenv (bench/.venv-peers-X.Y): newest uvicorn, granian, hypercorn."""

from __future__ import annotations

import json
import subprocess
import sys

from servers import PEERS_VENV

PACKAGES = ["uvicorn[standard]", "granian", "hypercorn", "starlette", "matplotlib"]
VERSIONED = ["uvicorn", "httptools", "uvloop", "granian", "hypercorn", "starlette"]


def ensure_peers() -> None:
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        print("bench: creating", PEERS_VENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    marker = PEERS_VENV / ".installed"
    if not marker.exists():
        print("bench: installing", " ".join(PACKAGES), file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--upgrade", *PACKAGES], check=True
        )
        marker.write_text("ok\n")


def peer_versions() -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; "
        f"print(json.dumps({{n: m.version(n) for n in {VERSIONED!r}}}))"
    )
    out = subprocess.run(
        [str(PEERS_VENV / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))
