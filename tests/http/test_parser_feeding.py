"""The conformance corpus replayed one byte at a time and split at random points.

A parser that reads a different request depending on how TCP cut the bytes is a smuggling bug,
so each feeding mode must reach exactly the verdict of the whole-buffer replay, and that verdict
must be the case's expectation.  Random cuts are seeded by the case id, so a failure names a
reproducible split.  The rest of the file pins down feeding behaviour the corpus relies on.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from conformance import cases as corpus

SEEDS = (1, 2, 3, 4, 5)


CASES = corpus.CASES
CUT_CASES = [case for case in CASES if case.eof and None in case.errors and not case.valid]


def case_id(case: Any) -> str:
    return str(case.id)


@pytest.fixture
def parser_mod(build: Any) -> ModuleType:
    module: ModuleType = build.module("esg.http.parser")
    return module


# -- the corpus in every feeding mode -------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_one_byte_at_a_time_reaches_the_same_verdict(parser_mod: ModuleType, case: Any) -> None:
    expected = corpus.replay(parser_mod, case, corpus.whole(case.raw)).verdict()
    outcome = corpus.replay(parser_mod, case, corpus.byte_by_byte(case.raw))
    assert corpus.problems(case, outcome) == []
    assert outcome.verdict() == expected


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_random_splits_reach_the_same_verdict(parser_mod: ModuleType, case: Any) -> None:
    expected = corpus.replay(parser_mod, case, corpus.whole(case.raw)).verdict()
    for seed in SEEDS:
        pieces = corpus.random_split(case.raw, seed, case.id)
        outcome = corpus.replay(parser_mod, case, pieces)
        cuts = [len(piece) for piece in pieces]
        assert corpus.problems(case, outcome) == [], f"seed {seed}, piece sizes {cuts}"
        assert outcome.verdict() == expected, f"seed {seed}, piece sizes {cuts}"


@pytest.mark.parametrize("case", CUT_CASES, ids=case_id)
@pytest.mark.parametrize("mode", ["whole", "byte_by_byte"])
def test_incomplete_message_then_eof_never_ends(
    parser_mod: ModuleType, case: Any, mode: str
) -> None:
    parser = parser_mod.RequestParser()
    for piece in getattr(corpus, mode)(case.raw):
        parser.feed(piece)
    parser.feed_eof()
    seen = []
    for _ in range(len(case.raw) + 5):
        try:
            event = parser.next_event()
        except parser_mod.ParseError as exc:
            assert 400 <= exc.status < 500
            break
        seen.append(type(event).__name__)
        if isinstance(event, parser_mod.EndOfMessage):
            parser.start_next_request()
    assert seen.count("EndOfMessage") == len(case.requests)


# -- feeding behaviour ----------------------------------------------------------------------


def drain(parser: Any) -> list[Any]:
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


def test_paused_after_end_of_message_until_start_next_request(parser_mod: ModuleType) -> None:
    parser = parser_mod.RequestParser()
    parser.feed(corpus.get(target=b"/one") + corpus.get(target=b"/two"))
    first = drain(parser)
    assert [type(e).__name__ for e in first] == ["Request", "EndOfMessage"]
    parser.feed(corpus.get(target=b"/three"))
    assert parser.next_event() is None
    assert parser.next_event() is None
    parser.start_next_request()
    assert drain(parser)[0].target == b"/two"
    parser.start_next_request()
    assert drain(parser)[0].target == b"/three"


def test_parser_stays_dead_after_an_error(parser_mod: ModuleType) -> None:
    parser = parser_mod.RequestParser()
    parser.feed(b"GET / HTTP/1.1\nHost: a\n\n")
    with pytest.raises(parser_mod.ParseError) as first:
        drain(parser)
    parser.feed(corpus.get())
    with pytest.raises(parser_mod.ParseError) as again:
        parser.next_event()
    assert again.value.status == first.value.status == 400


def test_parse_error_carries_a_reason(parser_mod: ModuleType) -> None:
    parser = parser_mod.RequestParser()
    parser.feed(corpus.head(b"GET / HTTP/2.0", corpus.HOST))
    with pytest.raises(parser_mod.ParseError) as error:
        parser.next_event()
    assert error.value.status == 505
    assert isinstance(error.value.reason, str) and error.value.reason


def test_nothing_is_parsed_before_bytes_arrive(parser_mod: ModuleType) -> None:
    parser = parser_mod.RequestParser()
    assert parser.next_event() is None
    parser.feed(b"")
    assert parser.next_event() is None
    parser.feed_eof()
    assert parser.next_event() is None


def test_content_length_body_is_delivered_as_it_arrives(parser_mod: ModuleType) -> None:
    parser = parser_mod.RequestParser()
    parser.feed(corpus.post(b"0123456789")[:-6])
    assert [type(e).__name__ for e in drain(parser)] == ["Request", "Data"]
    parser.feed(b"456")
    assert [e.data for e in drain(parser)] == [b"456"]
    parser.feed(b"789GET")
    events = drain(parser)
    assert [type(e).__name__ for e in events] == ["Data", "EndOfMessage"]
    assert events[0].data == b"789"  # the next request's bytes stay buffered
