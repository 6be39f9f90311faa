"""Property tests for the frame codec (hypothesis).

* Differential: streams of client frames — mostly well-formed messages, fragments and control
  frames, with one frame sometimes mutated (a flag, an opcode, the mask, the length encoding) —
  are read by esg and by wsproto's FrameProtocol; both must produce the same messages and reach
  the same verdict.  Known, deliberate disagreements are listed in ``agree()``.
* However the bytes are cut, the reader reaches the same result.
* The compiled and pure builds agree event by event, including ``buffered()`` after each read,
  with and without permessage-deflate, also on arbitrary bytes.
* The C unmasking helper agrees with the pure-Python one.
"""

from __future__ import annotations

import importlib
import re
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from esg import _compiled
from esg.websocket import deflate

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0
UNLIMITED = 1 << 40

PURE = importlib.import_module("esg.websocket.frames")
COMPILED = None if _compiled.NO_EXTENSIONS else _compiled.load_compiled("esg.websocket.frames")
needs_compiled = pytest.mark.skipif(COMPILED is None, reason="compiled codec not built")

# -- generating frame streams ----------------------------------------------------------------

# (opcode, payload, fin, rsv, masked, length_bytes or None, mask)
Spec = tuple[int, bytes, bool, int, bool, "int | None", bytes]

masks = st.binary(min_size=4, max_size=4)
texts = st.text(max_size=40).map(lambda s: s.encode("utf-8"))
broken_texts = st.builds(
    lambda head, bad, tail: head + bad + tail,
    texts,
    st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xff", b"\xf4\x90", b"\xe0", b"\x80"]),
    texts,
)
close_codes = st.sampled_from(
    [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1013, 1015, 1016, 2999, 3000,
     4999, 5000, 999, 0]
)  # fmt: skip
close_payloads = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=1),
    st.builds(lambda code, reason: code.to_bytes(2, "big") + reason, close_codes, texts),
    st.builds(lambda code, reason: code.to_bytes(2, "big") + reason, close_codes, broken_texts),
)


@st.composite
def data_message(draw: st.DrawFn, mask: bytes) -> list[Spec]:
    text = draw(st.booleans())
    payload = draw(st.one_of(texts, texts, broken_texts) if text else st.binary(max_size=300))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    specs: list[Spec] = []
    for i, piece in enumerate(pieces):
        opcode = (TEXT if text else BINARY) if i == 0 else CONT
        specs.append((opcode, piece, i == len(pieces) - 1, 0, True, None, mask))
        if i < len(pieces) - 1 and draw(st.integers(0, 3)) == 0:
            specs.append(draw(control_frame(mask)))
    return specs


@st.composite
def control_frame(draw: st.DrawFn, mask: bytes) -> Spec:
    opcode = draw(st.sampled_from([PING, PONG, CLOSE]))
    payload = draw(close_payloads if opcode == CLOSE else st.binary(max_size=130))
    return (opcode, payload, True, 0, True, None, mask)


@st.composite
def raw_frame(draw: st.DrawFn, mask: bytes) -> Spec:
    return (
        draw(st.integers(0, 15)),
        draw(st.binary(max_size=20)),
        draw(st.booleans()),
        draw(st.integers(0, 7)),
        draw(st.integers(0, 9)) > 0,
        None,
        mask,
    )


@st.composite
def mutate(draw: st.DrawFn, spec: Spec) -> Spec:
    opcode, payload, fin, rsv, masked, length_bytes, mask = spec
    what = draw(st.sampled_from(["fin", "rsv", "opcode", "mask", "length"]))
    if what == "fin":
        fin = not fin
    elif what == "rsv":
        rsv = draw(st.integers(1, 7))
    elif what == "opcode":
        opcode = draw(st.integers(0, 15))
    elif what == "mask":
        masked = False
    else:
        length_bytes = draw(st.sampled_from([0, 2, 8]))
        if length_bytes == 0 and len(payload) > 125:
            length_bytes = 2
    return (opcode, payload, fin, rsv, masked, length_bytes, mask)


@st.composite
def frame_streams(draw: st.DrawFn) -> list[Spec]:
    mask = draw(masks)
    specs: list[Spec] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.integers(0, 9))
        if kind < 6:
            specs.extend(draw(data_message(mask)))
        elif kind < 9:
            specs.append(draw(control_frame(mask)))
        else:
            specs.append(draw(raw_frame(mask)))
    if specs and draw(st.integers(0, 2)) == 0:
        index = draw(st.integers(0, len(specs) - 1))
        specs[index] = draw(mutate(specs[index]))
    return specs


def encode(ws: Any, specs: list[Spec]) -> bytes:
    out = []
    for opcode, payload, fin, rsv, masked, length_bytes, mask in specs:
        if length_bytes is not None and length_bytes == 2 and len(payload) > 65535:
            length_bytes = 8
        out.append(
            ws.frame(
                opcode,
                payload,
                fin=fin,
                rsv=rsv,
                mask=mask if masked else None,
                length_bytes=length_bytes,
            )
        )
    return b"".join(out)


def split(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted(p % (len(data) + 1) for p in points)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# -- wsproto as the reference ----------------------------------------------------------------


def wsproto_outcome(ws: Any, pieces: list[bytes]) -> Any:
    """wsproto's reading of the same bytes, as messages (it hands out frame pieces)."""
    proto = FrameProtocol(client=False, extensions=[])
    events: list[tuple[Any, ...]] = []
    parts: list[Any] = []
    try:
        for piece in pieces:
            proto.receive_bytes(piece)
            for frame in proto.received_frames():
                if frame.opcode is Opcode.PING:
                    events.append(("ping", bytes(frame.payload)))
                elif frame.opcode is Opcode.PONG:
                    events.append(("pong", bytes(frame.payload)))
                elif frame.opcode is Opcode.CLOSE:
                    code, reason = frame.payload
                    events.append(("close", int(code), reason))
                    return ws.Outcome(events, None)  # wsproto reads nothing after a close
                else:
                    parts.append(frame.payload)
                    if frame.message_finished:
                        if frame.opcode is Opcode.TEXT:
                            events.append(("text", "".join(parts)))
                        else:
                            events.append(("bytes", b"".join(bytes(p) for p in parts)))
                        parts = []
    except ParseFailed as exc:
        return ws.Outcome(events, int(exc.code))
    return ws.Outcome(events, None)


def up_to_first_close(outcome: Any) -> Any:
    for i, event in enumerate(outcome.events):
        if event[0] == "close":
            return type(outcome)(outcome.events[: i + 1], None)
    return outcome


_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


def agree(ours: Any, theirs: Any, specs: list[Spec]) -> bool:
    """esg and wsproto read the same, up to one deliberate difference:

    Invalid UTF-8 (1007) is failed as soon as a sequence can't be completed.  CPython's
    incremental decoder, which wsproto uses as is, holds back ED A0..ED BF (the start of a UTF-16
    surrogate) until a third byte arrives, so wsproto keeps reading: it may return control
    frames that come before that byte, or fail later for another reason, or not at all if the
    stream ends first.  RFC 6455 8.1 says to fail the connection once the bytes are not valid
    UTF-8; failing first is what Autobahn 6.4 ("fail fast") checks.
    """
    if ours == theirs:
        return True
    payloads = b"".join(spec[1] for spec in specs if spec[0] in (TEXT, CONT))
    if ours.error == 1007 and _SURROGATE.search(payloads):
        return bool(theirs.events[: len(ours.events)] == ours.events)
    return False


@PROPERTY_SETTINGS
@given(specs=frame_streams(), points=st.lists(st.integers(0, 10**6), max_size=6))
def test_reads_like_wsproto(ws: Any, specs: list[Spec], points: list[int]) -> None:
    data = encode(ws, specs)
    pieces = split(data, points)
    ours = up_to_first_close(ws.replay(pieces, max_size=UNLIMITED))
    theirs = wsproto_outcome(ws, pieces)
    note_event(f"verdict {ours.error}, {len(ours.events)} events")
    assert agree(ours, theirs, specs), (ours, theirs)


def test_surrogate_split_by_a_control_frame_fails_before_wsproto_does(ws: Any) -> None:
    # The first disagreement agree() allows: esg fails on the fragment ending in ED A0.
    data = ws.frame(TEXT, b"ok\xed\xa0", fin=False) + ws.frame(PING, b"p") + ws.frame(CONT, b"\x80")
    ours, theirs = ws.replay([data]), wsproto_outcome(ws, [data])
    assert ours == ws.Outcome([], 1007)
    assert theirs == ws.Outcome([("ping", b"p")], 1007)
    assert agree(ours, theirs, [(TEXT, b"ok\xed\xa0", False, 0, True, None, b"")])


def test_close_code_1014_is_accepted_where_wsproto_refuses_it(ws: Any) -> None:
    # 1014 (Bad Gateway) is in IANA's close code registry, like 1012 and 1013 that wsproto
    # accepts; RFC 6455 7.4.2 leaves 1000-2999 to such registrations.  wsproto's table lacks it.
    data = ws.frame(CLOSE, (1014).to_bytes(2, "big"))
    assert ws.replay([data]) == ws.Outcome([("close", 1014, "")], None)
    assert wsproto_outcome(ws, [data]) == ws.Outcome([], 1002)


@PROPERTY_SETTINGS
@given(specs=frame_streams(), points=st.lists(st.integers(0, 10**6), max_size=8))
def test_any_cut_reads_the_same(ws: Any, specs: list[Spec], points: list[int]) -> None:
    data = encode(ws, specs)
    assert ws.replay(split(data, points)) == ws.replay([data])


# -- the two builds --------------------------------------------------------------------------


def trace(module: Any, pieces: list[bytes], **options: Any) -> list[Any]:
    """Everything observable about reading ``pieces``, for comparing builds."""
    params = options.pop("deflate", None)
    if params is not None:
        options["inflater"] = deflate.Inflater(params)
    reader = module.FrameReader(**options)
    out: list[Any] = []
    try:
        for piece in pieces:
            reader.feed(piece)
            while (event := reader.next_event()) is not None:
                out.append(_plain(event))
            out.append(reader.buffered())
    except module.ProtocolError as exc:
        out.append(("error", exc.code, exc.reason))
    return out


def _plain(event: Any) -> tuple[Any, ...]:
    return (type(event).__name__, *(getattr(event, s) for s in type(event).__slots__))


@needs_compiled
@PROPERTY_SETTINGS
@given(
    specs=frame_streams(),
    points=st.lists(st.integers(0, 10**6), max_size=6),
    max_size=st.sampled_from([UNLIMITED, 64, 300]),
)
def test_builds_agree_on_frame_streams(
    ws: Any, specs: list[Spec], points: list[int], max_size: int
) -> None:
    pieces = split(encode(ws, specs), points)
    assert trace(COMPILED, pieces, max_size=max_size) == trace(PURE, pieces, max_size=max_size)


@needs_compiled
@PROPERTY_SETTINGS
@given(data=st.binary(max_size=400), points=st.lists(st.integers(0, 10**6), max_size=6))
def test_builds_agree_on_arbitrary_bytes(data: bytes, points: list[int]) -> None:
    pieces = split(data, points)
    params = deflate.DeflateParams()
    assert trace(COMPILED, pieces) == trace(PURE, pieces)
    assert trace(COMPILED, pieces, deflate=params) == trace(PURE, pieces, deflate=params)


@needs_compiled
@PROPERTY_SETTINGS
@given(
    payloads=st.lists(st.one_of(texts, st.binary(max_size=500)), min_size=1, max_size=5),
    client_nct=st.booleans(),
    fragment=st.integers(0, 40),
    points=st.lists(st.integers(0, 10**6), max_size=6),
    max_size=st.sampled_from([UNLIMITED, 100]),
)
def test_builds_agree_on_compressed_streams(
    ws: Any,
    payloads: list[bytes],
    client_nct: bool,
    fragment: int,
    points: list[int],
    max_size: int,
) -> None:
    params = deflate.DeflateParams(client_no_context_takeover=client_nct)
    client = ws.ClientCompressor(params)
    frames = []
    for payload in payloads:
        compressed = client.compress(payload)
        if fragment and len(compressed) > fragment:
            sizes = [fragment] * ((len(compressed) - 1) // fragment)
            frames.append(ws.fragments(TEXT, compressed, sizes, rsv1=True))
        else:
            frames.append(ws.frame(TEXT, compressed, rsv=4))
    pieces = split(b"".join(frames), points)
    options = {"deflate": params, "max_size": max_size}
    assert trace(COMPILED, pieces, **options) == trace(PURE, pieces, **options)


@needs_compiled
@PROPERTY_SETTINGS
@given(text=st.text(max_size=300), data=st.binary(max_size=300), code=close_codes)
def test_builds_write_the_same_bytes(text: str, data: bytes, code: int) -> None:
    for module in (COMPILED, PURE):
        assert module is not None
    params = deflate.DeflateParams()
    writers = [m.FrameWriter(deflate.Deflater(params)) for m in (COMPILED, PURE)]
    assert writers[0].text(text) == writers[1].text(text)
    assert writers[0].binary(data) == writers[1].binary(data)
    assert COMPILED.encode_frame(2, data, False, True) == PURE.encode_frame(2, data, False, True)

    def close(module: Any) -> Any:
        try:
            return module.encode_close(code, text)
        except ValueError:
            return ValueError

    assert close(COMPILED) == close(PURE)


# -- unmasking -------------------------------------------------------------------------------


PURE_UNMASK = importlib.import_module("esg.websocket.mask").unmask


def test_compiled_build_uses_the_c_unmask_helper(frames: Any) -> None:
    if frames is PURE:
        assert frames._unmask is PURE_UNMASK
    else:
        assert frames._unmask is importlib.import_module("esg.websocket._mask_c").unmask


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=100), mask=masks, start=st.integers(0, 100), n=st.integers(0, 100))
def test_c_unmask_agrees_with_python(data: bytes, mask: bytes, start: int, n: int) -> None:
    fast = importlib.import_module("esg.websocket._mask_c").unmask
    if start + n <= len(data):
        assert fast(data, start, n, mask) == PURE_UNMASK(data, start, n, mask)
        assert fast(data, start, n, mask) == bytes(
            b ^ mask[i % 4] for i, b in enumerate(data[start : start + n])
        )
    else:
        with pytest.raises(ValueError):
            fast(data, start, n, mask)


@needs_compiled
def test_c_unmask_refuses_bad_arguments() -> None:
    fast = importlib.import_module("esg.websocket._mask_c").unmask
    for args in [(b"abc", -1, 1, b"abcd"), (b"abc", 0, -1, b"abcd"), (b"abc", 0, 1, b"abc")]:
        with pytest.raises(ValueError):
            fast(*args)


def test_zlib_is_bounded_the_way_the_inflater_relies_on() -> None:
    # Inflater.decompress asks zlib for limit + 1 bytes; zlib must never return more.
    zobj = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = zobj.compress(b"\x00" * 100000) + zobj.flush(zlib.Z_SYNC_FLUSH)
    assert len(zlib.decompressobj(-15).decompress(bomb, 1001)) == 1001
