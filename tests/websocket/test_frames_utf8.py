"""Text messages must be UTF-8 (RFC 6455 8.1): the intent of Autobahn|Testsuite group 6.

A message fails (1007) on the fragment where it becomes invalid, not only at its end: the
reference below finds, byte by byte, the first prefix that no continuation can make valid, and
each sequence is cut into one-byte fragments and into two fragments at every point to check the
reader fails exactly there.  A sequence still incomplete when the message ends is invalid too.
"""

from __future__ import annotations

from typing import Any

import pytest

TEXT, CONT, PING = 1, 0, 9
KOSME = "κόσμε".encode()

# RFC 3629 section 4: each lead byte, how many continuation bytes follow, and the range the
# first of them must fall in (the rest are always 80..BF).
_LEADS: dict[int, tuple[int, int, int]] = {}
for _b in range(0xC2, 0xE0):
    _LEADS[_b] = (1, 0x80, 0xBF)
for _b in range(0xE0, 0xF0):
    _LEADS[_b] = (2, 0xA0 if _b == 0xE0 else 0x80, 0x9F if _b == 0xED else 0xBF)
for _b in range(0xF0, 0xF5):
    _LEADS[_b] = (3, 0x90 if _b == 0xF0 else 0x80, 0x8F if _b == 0xF4 else 0xBF)


def completable(prefix: bytes) -> bool:
    """Some bytes appended to ``prefix`` make it valid UTF-8 (the reference, from the RFC's
    table rather than CPython's decoder)."""
    i = 0
    n = len(prefix)
    while i < n:
        if prefix[i] < 0x80:
            i += 1
            continue
        if prefix[i] not in _LEADS:
            return False
        need, low, high = _LEADS[prefix[i]]
        for j in range(1, need + 1):
            if i + j >= n:
                return True
            byte = prefix[i + j]
            if not (low <= byte <= high if j == 1 else 0x80 <= byte <= 0xBF):
                return False
        i += need + 1
    return True


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def dead_at(data: bytes) -> int | None:
    """The length of the shortest prefix of ``data`` that can't be completed, if any."""
    for k in range(1, len(data) + 1):
        if not completable(data[:k]):
            return k
    return None


VALID = [
    "",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\x00",
    "\u0080",
    "\u0800",
    "\U00010000",
    "\x7f",
    "\u07ff",
    "\uffff",
    "\U0010ffff",
    "\ud7ff",
    "\ue000",
    "\ufffd",
    "\ufeff",
    "\ufffe",
    "\ufdd0",
    "\U0001fffe",
    "\U0010fffe",
    "😀 mixed ascii and \u20ac",
]

INVALID = [
    KOSME + b"\xed\xa0\x80edited",  # 6.3: a surrogate inside valid text
    b"\xf8\x88\x80\x80\x80",  # 6.8: first 5- and 6-byte sequences
    b"\xfc\x84\x80\x80\x80\x80",
    b"\xf7\xbf\xbf\xbf",  # 6.10: beyond U+10FFFF
    b"\xfb\xbf\xbf\xbf\xbf",
    b"\xfd\xbf\xbf\xbf\xbf\xbf",
    b"\xf4\x90\x80\x80",  # 6.11.5: U+110000
    b"\x80",  # 6.12: unexpected continuation bytes
    b"\xbf",
    b"\x80\xbf",
    b"\x80\xbf\x80",
    b"\x80\xbf\x80\xbf",
    b"\x80\xbf\x80\xbf\x80",
    bytes(range(0x80, 0xC0)),
    bytes(x for b in range(0xC0, 0xE0) for x in (b, 0x20)),  # 6.13: lonely start bytes
    bytes(x for b in range(0xE0, 0xF0) for x in (b, 0x20)),
    bytes(x for b in range(0xF0, 0xF8) for x in (b, 0x20)),
    bytes(x for b in range(0xF8, 0xFC) for x in (b, 0x20)),
    b"\xfc\x20\xfd\x20",
    b"\xc0",  # 6.14: last continuation byte missing
    b"\xe0\x80",
    b"\xf0\x80\x80",
    b"\xf8\x80\x80\x80",
    b"\xfc\x80\x80\x80\x80",
    b"\xdf",
    b"\xef\xbf",
    b"\xf7\xbf\xbf",
    b"\xfb\xbf\xbf\xbf",
    b"\xfd\xbf\xbf\xbf\xbf",
    b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"  # 6.15: concatenated
    b"\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
    b"\xfe",  # 6.16: impossible bytes
    b"\xff",
    b"\xfe\xfe\xff\xff",
    b"\xc0\xaf",  # 6.17: overlong ASCII
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xf8\x80\x80\x80\xaf",
    b"\xfc\x80\x80\x80\x80\xaf",
    b"\xc1\xbf",  # 6.18: maximum overlong sequences
    b"\xe0\x9f\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xf8\x87\xbf\xbf\xbf",
    b"\xfc\x83\xbf\xbf\xbf\xbf",
    b"\xc0\x80",  # 6.19: overlong NUL
    b"\xe0\x80\x80",
    b"\xf0\x80\x80\x80",
    b"\xf8\x80\x80\x80\x80",
    b"\xfc\x80\x80\x80\x80\x80",
    b"\xed\xa0\x80",  # 6.20: single UTF-16 surrogates
    b"\xed\xad\xbf",
    b"\xed\xae\x80",
    b"\xed\xaf\xbf",
    b"\xed\xb0\x80",
    b"\xed\xbe\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",  # 6.21: paired UTF-16 surrogates
    b"\xed\xa0\x80\xed\xbf\xbf",
    b"\xed\xad\xbf\xed\xb0\x80",
    b"\xed\xad\xbf\xed\xbf\xbf",
    b"\xed\xae\x80\xed\xb0\x80",
    b"\xed\xae\x80\xed\xbf\xbf",
    b"\xed\xaf\xbf\xed\xb0\x80",
    b"\xed\xaf\xbf\xed\xbf\xbf",
    KOSME + b"\xf0\x9f\x98",  # valid so far, but the message ends inside a character
]


def fail_index(ws: Any, payloads: list[bytes]) -> int | None:
    """The index of the fragment after which the reader fails, feeding one fragment at a time."""
    reader = ws.reader()
    for i, piece in enumerate(payloads):
        last = i == len(payloads) - 1
        reader.feed(ws.frame(TEXT if i == 0 else CONT, piece, fin=last))
        try:
            event = reader.next_event()
        except ws.module.ProtocolError as exc:
            assert exc.code == 1007
            return i
        assert (event is not None) == last
    return None


def expected_fail_index(data: bytes, cut_points: list[int]) -> int | None:
    """Which fragment (cut at ``cut_points``) a conforming reader fails on."""
    if _decodes(data):
        return None
    dead = dead_at(data)
    if dead is None:
        return len(cut_points)  # only the end of the message makes it invalid
    return sum(1 for point in cut_points if point < dead)


def test_the_reference_itself() -> None:
    assert dead_at(b"\xed\xa0\x80") == 2
    assert dead_at(b"\xf4\x90") == 2
    assert dead_at(b"\xf0\x9f\x98") is None
    assert dead_at(KOSME + b"\xed\xa0\x80edited") == len(KOSME) + 2


@pytest.mark.parametrize("text", VALID)
def test_valid_text(ws: Any, text: str) -> None:
    data = text.encode()
    ws.check(ws.frame(TEXT, data), [("text", text)])
    ws.check(ws.fragments(TEXT, data, [1] * len(data)), [("text", text)])


@pytest.mark.parametrize("text", ["Hello-µ@ßöäüàá-UTF-8!!", "κόσμε", "\U0010ffff😀"])
def test_valid_text_split_into_two_fragments_at_every_byte(ws: Any, text: str) -> None:
    data = text.encode()
    for cut in range(len(data) + 1):
        assert fail_index(ws, [data[:cut], data[cut:]]) is None


@pytest.mark.parametrize("data", INVALID, ids=[f"6-{i}" for i in range(len(INVALID))])
def test_invalid_text_in_one_frame(ws: Any, data: bytes) -> None:
    ws.check(ws.frame(TEXT, data), [], 1007)
    ws.check(ws.frame(PING, b"first") + ws.frame(TEXT, data), [("ping", b"first")], 1007)


@pytest.mark.parametrize("data", INVALID, ids=[f"6-{i}" for i in range(len(INVALID))])
def test_invalid_text_fails_on_the_fragment_where_it_becomes_invalid(ws: Any, data: bytes) -> None:
    one_byte_each = [data[i : i + 1] for i in range(len(data))]
    points = list(range(1, len(data)))
    assert fail_index(ws, one_byte_each) == expected_fail_index(data, points)
    ws.check(ws.fragments(TEXT, data, [1] * (len(data) - 1)), [], 1007)
    for cut in range(len(data) + 1):
        halves = [data[:cut], data[cut:]]
        assert fail_index(ws, halves) == expected_fail_index(data, [cut]), cut


def test_autobahn_6_4_fail_fast_on_the_middle_fragment(ws: Any) -> None:
    assert fail_index(ws, [KOSME, b"\xf4\x90\x80\x80", b"edited"]) == 1
    assert fail_index(ws, [KOSME + b"\xf4", b"\x90\x80\x80", b"edited"]) == 1


def test_fail_fast_inside_one_frame_as_its_payload_arrives(ws: Any) -> None:
    # Autobahn 6.4.3/6.4.4: one frame whose payload trickles in; the reader fails as soon as
    # the invalid bytes arrive rather than waiting for the rest of the frame.
    frame = ws.frame(TEXT, KOSME + b"\xf4\x90\x80\x80" + b"edited")
    head = 6
    reader = ws.reader()
    reader.feed(frame[: head + len(KOSME)])
    assert reader.next_event() is None
    reader.feed(frame[head + len(KOSME) : head + len(KOSME) + 2])
    with pytest.raises(ws.module.ProtocolError) as exc:
        reader.next_event()
    assert exc.value.code == 1007


def prefix_verdict(prefix: bytes) -> int | None:
    """Fragment index a reader fails on for [prefix, b""]: 0 now, 1 at the end, None never."""
    if not completable(prefix):
        return 0
    return None if _decodes(prefix) else 1


def test_every_two_byte_prefix_fails_exactly_when_it_must(ws: Any) -> None:
    # CPython's incremental decoder waits on ED A0..ED BF (surrogates) until a third byte;
    # the reader must not.
    for lead in range(0x80, 0x100):
        for second in range(0x100):
            prefix = bytes([lead, second])
            assert fail_index(ws, [prefix, b""]) == prefix_verdict(prefix), prefix


def test_every_three_byte_prefix_of_a_four_byte_sequence(ws: Any) -> None:
    for lead in range(0xF0, 0xF5):
        for second in (0x80, 0x8F, 0x90, 0xBF):
            for third in range(0x100):
                prefix = bytes([lead, second, third])
                assert fail_index(ws, [prefix, b""]) == prefix_verdict(prefix), prefix
