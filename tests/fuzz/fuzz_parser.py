"""Fuzzing harness for esg's HTTP/1.1 request parser.

    .venv/bin/python tests/fuzz/fuzz_parser.py -runs=100000 [-seed=N] [-max_total_time=S] [path...]

With atheris installed this is a libFuzzer target (every libFuzzer flag works; the pure-Python
parser and head scanner are instrumented for coverage, and a custom mutator mixes libFuzzer's
byte mutations with the HTTP-aware operators of tests/conformance/mutations.py).  Without
atheris, or with ``-no_atheris=1``, a built-in loop mutates the corpus' valid cases and
generated requests with the same operators.  Paths given are files to replay (a crash file, for
instance) or, for the built-in loop, directories whose files seed the pool.

``check(data)`` is the property, also run by tests/fuzz/test_fuzz_smoke.py.  The first byte of
``data`` is a control byte (limits profile, how the bytes are cut, whether EOF follows); the
rest is fed to both builds of the parser, cut at points derived from the input.  It fails when

* anything but ``ParseError`` escapes, or a ``ParseError`` carries a status esg never answers
  with, or a dead parser stops raising it;
* the compiled and the pure build differ in any event, field or error (status and reason);
* the verdict (complete requests, then refused or not) depends on where the bytes were cut;
* the parser holds more than its head or chunk-line limit in its buffer while waiting for bytes;
* the events break the API: Data outside a message, empty Data, EndOfMessage twice, an event
  before ``start_next_request()``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Run on its own, the harness finds esg in the checkout and the corpus in tests/.
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from conformance import cases as corpus  # noqa: E402
from conformance import mutations  # noqa: E402

from esg import _compiled  # noqa: E402

STATUSES = frozenset({400, 413, 414, 417, 431, 501, 505})
# Parser options per profile (the control byte's two low bits): the defaults, and small limits
# that generated inputs can reach.
PROFILES: list[dict[str, int]] = [
    {},
    {
        "limit_request_line": 64,
        "limit_request_fields": 4,
        "limit_request_field_size": 64,
        "limit_request_head": 256,
        "limit_request_body": 100,
    },
    {"limit_request_head": 1024, "limit_request_body": 0},
    {"limit_request_line": 200, "limit_request_body": 10},
]
PER_BYTE_MAX = 512  # longer inputs are cut at random points instead of byte by byte


def builds() -> list[ModuleType]:
    """The builds to compare: pure, and compiled unless disabled or not built."""
    pure = importlib.import_module("esg.http.parser")
    compiled = None if _compiled.NO_EXTENSIONS else _compiled.load_compiled("esg.http.parser")
    return [pure] if compiled is None else [pure, compiled]


# -- one run --------------------------------------------------------------------------------

# Every field of a request head; the compiled Request (a C type) has no __slots__ to read.
REQUEST_FIELDS: tuple[str, ...] = importlib.import_module("esg.http.parser").Request.__slots__


def head_bound(limits: dict[str, int]) -> int:
    """The most a waiting parser may buffer: a head (or trailers) or a chunk-size line."""
    chunk_line: int = importlib.import_module("esg.http.parser").CHUNK_EXTENSIONS_LIMIT + 65
    return max(limits.get("limit_request_head", 65536) + 1, chunk_line)


def run(parser_mod: ModuleType, pieces: list[bytes], limits: dict[str, int], eof: bool) -> Any:
    """Feed ``pieces`` (then EOF), draining events after each; returns (events, error)."""
    parser = parser_mod.RequestParser(**limits)
    bound = head_bound(limits)
    events: list[Any] = []
    in_message = False

    def drain() -> None:
        nonlocal in_message
        while (event := parser.next_event()) is not None:
            if isinstance(event, parser_mod.Request):
                assert not in_message, "Request inside a message"
                in_message = True
                events.append(("request", tuple(getattr(event, f) for f in REQUEST_FIELDS)))
            elif isinstance(event, parser_mod.Data):
                assert in_message, "Data outside a message"
                assert isinstance(event.data, bytes) and event.data, "empty Data"
                events.append(("data", event.data))
            elif isinstance(event, parser_mod.EndOfMessage):
                assert in_message, "EndOfMessage outside a message"
                in_message = False
                events.append(("end",))
                assert parser.paused() and parser.next_event() is None, "an event while paused"
                parser.start_next_request()
            else:
                raise AssertionError(f"unknown event {event!r}")
        assert parser.buffered() <= bound, f"{parser.buffered()} bytes buffered while waiting"

    try:
        for piece in pieces:
            parser.feed(piece)
            drain()
        if eof:
            parser.feed_eof()
            drain()
    except parser_mod.ParseError as exc:
        assert exc.status in STATUSES, f"status {exc.status}"
        try:
            parser.next_event()
        except parser_mod.ParseError as again:
            assert (again.status, again.reason) == (exc.status, exc.reason), "another error"
        else:
            raise AssertionError("a dead parser returned an event") from None
        return events, (exc.status, exc.reason)
    return events, None


def verdict(events: list[Any], error: Any) -> Any:
    """What must not depend on the cuts: complete requests (bodies joined), then refused or not.

    The unfinished message's partial body, and which error status among several rules a broken
    message hits first, may depend on how much had arrived.
    """
    requests, body, head = [], bytearray(), None
    for event in events:
        if event[0] == "request":
            head, body = event[1], bytearray()
        elif event[0] == "data":
            body += event[1]
        else:
            requests.append((head, bytes(body)))
    return requests, error is not None


# -- the property -----------------------------------------------------------------------------


def plan(data: bytes) -> tuple[bytes, list[bytes], dict[str, int], bool]:
    """Split ``data`` into the request bytes, the pieces to feed, the limits and EOF."""
    control, raw = (data[0], data[1:]) if data else (0, b"")
    limits = PROFILES[control & 3]
    mode = (control >> 2) & 3
    eof = bool(control & 0x10)
    if mode == 0 or len(raw) < 2:
        pieces = [raw]
    elif mode == 1 and len(raw) <= PER_BYTE_MAX:
        pieces = [raw[i : i + 1] for i in range(len(raw))]
    else:
        rng = random.Random(hashlib.sha1(data).digest())
        count = rng.randint(1, min(len(raw) - 1, 64))
        pieces = corpus.split_at(raw, rng.sample(range(1, len(raw)), count))
    return raw, pieces, limits, eof


def check(data: bytes, modules: list[ModuleType] | None = None) -> None:
    """The fuzzing property (module docstring); raises AssertionError on a violation."""
    raw, pieces, limits, eof = plan(data)
    modules = builds() if modules is None else modules
    results = [run(module, pieces, limits, eof) for module in modules]
    for other, module in zip(results[1:], modules[1:], strict=True):
        assert other == results[0], f"{module.__name__} differs from {modules[0].__name__}"
    if len(pieces) > 1:
        whole = run(modules[0], [raw], limits, eof)
        assert verdict(*whole) == verdict(*results[0]), "the verdict depends on the cuts"


# -- inputs -----------------------------------------------------------------------------------


def seeds() -> list[bytes]:
    return [case.raw for case in corpus.CASES if case.valid]


def mutant(rng: random.Random, pool: list[bytes]) -> bytes:
    """A control byte, then a mutated seed, generated request or pool entry (or noise)."""
    roll = rng.random()
    if roll < 0.05:
        raw = rng.randbytes(rng.randint(0, 64))
    else:
        raw = rng.choice(pool) if roll < 0.6 else mutations.generate_requests(rng)
        if rng.random() < 0.9:
            raw = mutations.mutate(raw, rng, rng.randint(1, 4))
    return bytes([rng.randrange(256)]) + raw


def random_inputs(seed: int, count: int) -> Iterator[bytes]:
    """``count`` inputs, the same for the same seed (the smoke test's and the loop's)."""
    rng = random.Random(seed)
    pool = seeds()
    for _ in range(count):
        data = mutant(rng, pool)
        if rng.random() < 0.05 and len(pool) < 5000:
            pool.append(data[1:])
        yield data


# -- running ----------------------------------------------------------------------------------


def report(data: bytes) -> Path:
    path = Path(f"crash-{hashlib.sha1(data).hexdigest()}")
    path.write_bytes(data)
    print(f"\nfailing input ({len(data)} bytes) written to {path}:\n{data!r}", file=sys.stderr)
    return path


def builtin_loop(argv: list[str]) -> int:
    flags = {a[1:].split("=", 1)[0]: a.split("=", 1)[1] for a in argv if a.startswith("-")}
    paths = [Path(a) for a in argv if not a.startswith("-")]
    runs = int(flags.get("runs", "-1"))
    seed = int(flags.get("seed", str(time.time_ns() % 2**32)))
    deadline = time.monotonic() + float(flags.get("max_total_time", "inf"))
    files = [p for p in paths if p.is_file()]
    for path in files:  # replay
        data = path.read_bytes()
        try:
            check(data)
        except Exception:
            print(f"{path}: fails", file=sys.stderr)
            raise
        print(f"{path}: passes")
    if files and "runs" not in flags:
        return 0
    rng = random.Random(seed)
    pool = seeds() + [f.read_bytes()[1:] for d in paths if d.is_dir() for f in d.iterdir()]
    print(f"esg parser fuzzing without atheris: seed={seed}, builds={len(builds())}")
    done, started = 0, time.monotonic()
    while done != runs and time.monotonic() < deadline:
        data = mutant(rng, pool)
        try:
            check(data)
        except Exception:
            report(data)
            raise
        if rng.random() < 0.05 and len(pool) < 5000:
            pool.append(data[1:])
        done += 1
        if done & (done - 1) == 0 or done % 100_000 == 0:
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"#{done}\tpool: {len(pool)}\texec/s: {rate:.0f}", flush=True)
    print(f"Done {done} runs in {time.monotonic() - started:.0f} s")
    return 0


def atheris_main(atheris: Any, argv: list[str]) -> None:
    def test_one_input(data: bytes) -> None:
        check(data)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if data and rng.random() < 0.5:
            return bytes(atheris.Mutate(data, max_size))
        raw: bytes = data[1:] if len(data) > 1 else mutations.generate_requests(rng)
        if rng.random() < 0.2:
            raw = rng.choice(seed_pool)
        control = data[0] if data and rng.random() < 0.7 else rng.randrange(256)
        mutated: bytes = mutations.mutate(raw, rng)
        return (bytes([control]) + mutated)[:max_size]

    seed_pool = seeds()
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def main(argv: list[str]) -> int:
    no_atheris = "-no_atheris=1" in argv
    argv = [a for a in argv if not a.startswith("-no_atheris=")]
    try:
        if no_atheris:
            raise ImportError
        import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return builtin_loop(argv[1:])
    with atheris.instrument_imports(include=["esg"]):
        importlib.import_module("esg.http.parser")  # with the pure head scanner
    atheris_main(atheris, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
