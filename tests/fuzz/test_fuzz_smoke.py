"""The fuzzing harness's property (tests/fuzz/fuzz_parser.py) on a few thousand seeded inputs,
so CI exercises it without atheris: both builds, input-derived cuts and limits, bounded
buffering.  Run the harness itself to fuzz for longer (tests/conformance/README.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parent / "fuzz_parser.py"


def load_harness() -> ModuleType:
    name = "esg_fuzz_parser"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HARNESS)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


harness = load_harness()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_seeded_random_inputs_hold_the_fuzzing_property(seed: int) -> None:
    for data in harness.random_inputs(seed, 2000):
        try:
            harness.check(data)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ninput: {data!r}") from None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x04GET / HTTP/1.1\r\nHost: a\r\n\r\n",  # byte by byte
        b"\x1bPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",  # cut, then EOF
        b"\x09GET /" + b"p" * 50 + b" HTTP/1.1\r\nHost: a\r\n\r\n",  # line at a small limit
        b"\x01POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        + b"X: y\r\n" * 60,  # trailers over the small head limit
    ],
)
def test_edge_inputs(data: bytes) -> None:
    harness.check(data)


def test_the_harness_notices_a_build_difference() -> None:
    """The property really compares builds: a parser that loses a field is caught."""
    pure = harness.builds()[0]

    class LossyParser(pure.RequestParser):  # type: ignore[name-defined,misc]
        def next_event(self):  # type: ignore[no-untyped-def]
            event = super().next_event()
            if isinstance(event, pure.Request):
                event.headers = event.headers[:-1]
            return event

    lossy = ModuleType("lossy")
    lossy.__dict__.update(pure.__dict__)
    lossy.RequestParser = LossyParser  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="differs"):
        harness.check(b"\x00GET / HTTP/1.1\r\nHost: a\r\n\r\n", [pure, lossy])


def test_the_harness_replays_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case"
    case.write_bytes(b"\x00GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.builtin_loop([str(case)]) == 0
    assert "passes" in capsys.readouterr().out
