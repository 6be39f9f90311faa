"""The conformance corpus (tests/conformance/cases.py) against both builds of the parser, and
the differential check against h11.

Every case is fed whole here; tests/http/test_parser_feeding.py replays the same cases one byte
at a time and split at random points.  Where h11 answers differently the difference is listed
below with the RFC clause that justifies esg, and tests/conformance/README.md carries the same
table; an entry that stops being true fails, so the lists stay exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import pytest
from conformance import cases as corpus

CONFORMANCE_DIR = Path(__file__).resolve().parent.parent / "conformance"


CASES = corpus.CASES
ERROR_CASES = [case for case in CASES if not case.valid]
VALID_CASES = [case for case in CASES if case.valid]
# Cases whose verdict is an error (a peer closing mid-message may also end quietly).
REJECTED_CASES = [case for case in CASES if None not in case.errors]

# docs/security.md rows checked by the parser itself (28 is the connection's pipelining queue).
PARSER_ROWS = [row for row in range(1, 30) if row != 28]
CVE_CASE_PREFIXES = ("cve_2025_43859_h11", "cve_2024_1135_gunicorn", "cve_2022_24761_waitress")


def case_id(case: Any) -> str:
    return str(case.id)


# -- the corpus itself ----------------------------------------------------------------------


def test_every_parser_row_has_several_cases() -> None:
    per_row = Counter(row for case in CASES for row in case.rows)
    thin = {row: per_row[row] for row in PARSER_ROWS if per_row[row] < 3}
    assert thin == {}


@pytest.mark.parametrize("prefix", CVE_CASE_PREFIXES)
def test_every_peer_cve_class_has_a_named_case(prefix: str) -> None:
    assert any(case.id.startswith(prefix) and not case.valid for case in CASES)


def test_limits_in_cases_are_parser_options() -> None:
    options = {
        "limit_request_line",
        "limit_request_fields",
        "limit_request_field_size",
        "limit_request_head",
        "limit_request_body",
    }
    assert {name for case in CASES for name in case.limits} <= options


# -- esg against the corpus -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_verdict_when_fed_whole(build: Any, case: Any) -> None:
    parser_mod = build.module("esg.http.parser")
    outcome = corpus.replay(parser_mod, case, corpus.whole(case.raw))
    assert corpus.problems(case, outcome) == []


@pytest.mark.parametrize("case", ERROR_CASES, ids=case_id)
def test_nothing_malformed_reaches_the_app(build: Any, case: Any) -> None:
    """A broken head never becomes a Request; a broken body never gets its EndOfMessage."""
    parser_mod = build.module("esg.http.parser")
    outcome = corpus.replay(parser_mod, case, corpus.whole(case.raw))
    valid_before = len(case.requests)
    assert len(outcome.messages) <= valid_before + case.pending
    assert all(not message.complete for message in outcome.messages[valid_before:])


# -- h11, message by message ----------------------------------------------------------------


@dataclass
class H11Outcome:
    messages: list[tuple[h11.Request, bytes, bool]] = field(default_factory=list)
    error: str | None = None


def run_h11(case: Any) -> H11Outcome:
    """Serve ``case.raw`` with h11, answering each request so the next one can be read."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    outcome = H11Outcome()
    body = bytearray()
    try:
        conn.receive_data(case.raw)
        if case.eof:
            conn.receive_data(b"")
        while isinstance(event := conn.next_event(), h11.Request | h11.Data | h11.EndOfMessage):
            if isinstance(event, h11.Request):
                request, body = event, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
            else:
                outcome.messages.append((request, bytes(body), True))
                if not answer_and_continue(conn):
                    break
    except h11.ProtocolError as exc:
        outcome.error = str(exc)
    return outcome


def answer_and_continue(conn: h11.Connection) -> bool:
    conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
    conn.send(h11.EndOfMessage())
    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
        conn.start_next_cycle()
        return True
    return False


# Valid in esg; h11 refuses them or stops early.  Reason: why esg's acceptance is right.
_EMPTY_LINE = "RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request"
H11_REJECTS_VALID = {
    "chunked_extension_bws_around_semicolon_and_equals": (
        'RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )'
    ),
    "http10_keep_alive_pipelined": (
        "RFC 9112 9.3 / C.2.2: HTTP/1.0 keep-alive is honoured; h11 always closes 1.0"
    ),
    "empty_line_before_the_request_line_ignored": _EMPTY_LINE,
    "chunk_size_line_exactly_at_the_limit": (
        "RFC 9112 7.1: chunk-size = 1*HEXDIG, leading zeros included; h11 takes at most 20 digits"
    ),
    "empty_line_after_a_body_ignored": _EMPTY_LINE,
}

# Valid in both; header lists differ in representation.  Names excluded from the comparison.
H11_HEADER_DIFFERENCES = {
    "transfer_encoding_name_case_insensitive": (
        {b"transfer-encoding"},
        "h11 lowercases the coding; esg keeps values as sent",
    ),
    "absolute_form_host_replaced_by_authority": (
        {b"host"},
        "RFC 9112 3.2.2: the target's authority replaces Host; h11 keeps Host",
    ),
    "identical_content_lengths_merged": (
        {b"content-length"},
        "h11 folds identical Content-Length fields into one",
    ),
    "identical_content_length_list_merged": (
        {b"content-length"},
        "h11 rewrites the list `5, 5` as `5`",
    ),
}

# esg rejects; h11 accepts (or waits for more bytes).  The RFC clause behind esg's answer.
_LIMIT = "a configured limit (h11 has only max_incomplete_event_size)"
H11_ACCEPTS_INVALID = {
    "version_http_0_9": "RFC 9112 2.3 / security.md row 2: only HTTP/1.0 and HTTP/1.1 are served",
    "version_http_2_0_not_supported": "RFC 9110 15.6.6: 505 for an unsupported major version",
    "version_http_3_0_not_supported": "RFC 9110 15.6.6: 505 for an unsupported major version",
    "pipelined_chunked_then_http2_version": "RFC 9110 15.6.6: 505 for an unsupported major",
    "target_relative_without_slash": "RFC 9112 3.2: no request-target form matches; 3: 400",
    "target_with_fragment": "RFC 9112 3.2.1: origin-form is absolute-path [ ? query ], no fragment",
    "asterisk_target_outside_options": "RFC 9112 3.2.4: asterisk-form is only for OPTIONS",
    "asterisk_target_with_post": "RFC 9112 3.2.4: asterisk-form is only for OPTIONS",
    "authority_form_outside_connect": "RFC 9112 3.2.3: authority-form is only for CONNECT",
    "absolute_form_with_userinfo": "RFC 9110 4.2.4: treat userinfo in a target as an error",
    "request_line_over_the_limit": "RFC 9112 3 / RFC 9110 15.5.15: 414, " + _LIMIT,
    "request_line_over_the_limit_before_crlf": "RFC 9110 15.5.15: 414, " + _LIMIT,
    "request_line_over_a_configured_limit": "RFC 9110 15.5.15: 414, " + _LIMIT,
    "bare_cr_in_the_final_empty_line": "RFC 9112 2.2: a bare CR MUST be treated as invalid",
    "bare_lf_ends_the_request_line": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "bare_lf_ends_a_field": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "bare_lf_everywhere": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "bare_lf_final_empty_line": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "pipelined_valid_then_bare_lf": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "control_byte_in_a_value": "RFC 9110 5.5: CTLs other than HTAB are invalid in a value",
    "escape_byte_in_a_value": "RFC 9110 5.5: CTLs other than HTAB are invalid in a value",
    "del_in_a_value": "RFC 9110 5.5: DEL is not a field-vchar",
    "obs_fold_with_space": "RFC 9112 5.2: a server MUST reject obs-fold with 400 or unfold it",
    "obs_fold_with_tab": "RFC 9112 5.2: a server MUST reject obs-fold with 400 or unfold it",
    "obs_fold_of_host": "RFC 9112 5.2: a server MUST reject obs-fold with 400 or unfold it",
    "disguised_te_obs_fold": "RFC 9112 5.2 (obs-fold) and 6.1 (Content-Length with TE)",
    "more_fields_than_the_limit": "RFC 6585 5: 431, " + _LIMIT,
    "more_fields_than_a_configured_limit": "RFC 6585 5: 431, " + _LIMIT,
    "field_value_over_the_size_limit": "RFC 6585 5: 431, " + _LIMIT,
    "field_name_over_the_size_limit": "RFC 6585 5: 431, " + _LIMIT,
    "field_over_a_configured_size_limit": "RFC 6585 5: 431, " + _LIMIT,
    "head_over_the_limit": "RFC 6585 5: 431, " + _LIMIT,
    "head_over_the_limit_never_ending": "RFC 6585 5: 431, " + _LIMIT,
    "head_over_a_configured_limit": "RFC 6585 5: 431, " + _LIMIT,
    "host_with_a_space": "RFC 9112 3.2: 400 for a Host with an invalid value (RFC 3986 3.2.2)",
    "host_with_userinfo": "RFC 9112 3.2: 400 for a Host with an invalid value (RFC 3986 3.2.2)",
    "host_with_a_path": "RFC 9112 3.2: 400 for a Host with an invalid value (RFC 3986 3.2.2)",
    "host_with_a_non_numeric_port": "RFC 9112 3.2: 400 for an invalid Host (RFC 3986 3.2.3)",
    "host_with_8bit_bytes": "RFC 9112 3.2: 400 for a Host with an invalid value (RFC 3986 3.2.2)",
    "content_length_20_digits": "RFC 9110 8.6: guard against integer overflow (esg: 18 digits)",
    "content_length_19_digits": "RFC 9110 8.6: guard against integer overflow (esg: 18 digits)",
    "content_length_over_the_body_limit": "RFC 9110 15.5.14: 413, " + _LIMIT,
    "content_length_over_the_body_limit_with_body": "RFC 9110 15.5.14: 413, " + _LIMIT,
    "chunked_body_crossing_the_body_limit": "RFC 9110 15.5.14: 413, " + _LIMIT,
    "content_length_and_transfer_encoding": "RFC 9112 6.1: MAY reject CL with TE; esg does",
    "transfer_encoding_and_content_length": "RFC 9112 6.1: MAY reject CL with TE; esg does",
    "content_length_zero_and_chunked": "RFC 9112 6.1: MAY reject CL with TE; esg does",
    "disguised_te_leading_tab_with_content_length": "RFC 9112 6.1: MAY reject CL with TE",
    "pipelined_valid_then_te_and_cl": "RFC 9112 6.1: MAY reject CL with TE; esg does",
    "transfer_encoding_in_http10": "RFC 9112 6.1: TE in HTTP/1.0 means faulty framing",
    "transfer_encoding_in_http10_keep_alive": "RFC 9112 6.1: TE in HTTP/1.0 is faulty framing",
    "transfer_encoding_and_content_length_in_http10": "RFC 9112 6.1: faulty framing in 1.0",
    "chunk_size_trailing_space": "RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF; BWS only before ;",
    "chunk_size_overflows_64_bits": "RFC 9112 7.1: recipients MUST prevent integer overflow",
    "chunk_size_over_63_bits": "RFC 9112 7.1: recipients MUST prevent integer overflow",
    "chunk_size_16_hex_digits": "RFC 9112 7.1: MUST prevent overflow (esg: 15 hex digits)",
    "chunk_extension_bare_cr": "RFC 9112 2.2: a bare CR MUST be treated as invalid",
    "chunk_extension_empty_name": "RFC 9112 7.1.1: chunk-ext-name is a token (1*tchar)",
    "chunk_extension_name_then_garbage": "RFC 9112 7.1.1: chunk-ext grammar",
    "chunk_extension_control_byte": "RFC 9112 7.1.1: chunk-ext-val is token / quoted-string",
    "chunk_extension_unterminated_quote": "RFC 9112 7.1.1 / RFC 9110 5.6.4: quoted-string",
    "chunk_extension_missing_value": "RFC 9112 7.1.1: chunk-ext-val after = is 1*tchar or quoted",
    "chunk_extensions_over_16k_in_one_line": "RFC 9112 7.1.1: limit chunk extensions, 4xx",
    "chunk_extensions_over_16k_in_total": "RFC 9112 7.1.1: limit chunk extensions, 4xx",
    "final_empty_line_bare_lf": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "trailer_bare_lf": "RFC 9112 2.2: bare LF MAY be accepted; esg is strict",
    "trailer_obs_fold": "RFC 9112 7.1.2 + 5.2: trailer fields are field lines; no obs-fold",
    "trailer_field_over_the_size_limit": "RFC 9112 7.1.2 + RFC 6585 5: 431, " + _LIMIT,
    "trailers_more_than_the_field_limit": "RFC 9112 7.1.2 + RFC 6585 5: 431, " + _LIMIT,
    "trailers_over_the_head_limit_never_ending": "RFC 9112 7.1.2 + RFC 6585 5: 431, " + _LIMIT,
}


def comparable_headers(request: Any, ignored: set[bytes]) -> list[tuple[bytes, bytes]]:
    return [(bytes(n), bytes(v)) for n, v in request.headers if bytes(n) not in ignored]


@pytest.mark.parametrize("case", VALID_CASES, ids=case_id)
def test_h11_reads_valid_case_the_same(build: Any, case: Any) -> None:
    theirs = run_h11(case)
    finished = theirs.error is None and len(theirs.messages) == len(case.requests)
    if case.id in H11_REJECTS_VALID:
        assert not finished, "h11 now accepts this case: drop it from H11_REJECTS_VALID"
        return
    assert finished, theirs.error
    ours = corpus.replay(build.module("esg.http.parser"), case, [case.raw])
    ignored = H11_HEADER_DIFFERENCES.get(case.id, (set(), ""))[0]
    for message, (request, body, _) in zip(ours.messages, theirs.messages, strict=True):
        assert message.head["method"] == request.method
        assert message.head["target"] == request.target
        assert bytes(message.body) == body
        ours_headers = [pair for pair in message.head["headers"] if pair[0] not in ignored]
        assert ours_headers == comparable_headers(request, ignored)


@pytest.mark.parametrize("name", sorted(H11_HEADER_DIFFERENCES))
def test_h11_header_differences_are_still_real(build: Any, name: str) -> None:
    case = corpus.BY_ID[name]
    (request, _, _), *_ = run_h11(case).messages
    ours = corpus.replay(build.module("esg.http.parser"), case, [case.raw])
    assert list(ours.messages[0].head["headers"]) != comparable_headers(request, set())


@pytest.mark.parametrize("case", REJECTED_CASES, ids=case_id)
def test_h11_disagreement_on_rejected_case_is_documented(case: Any) -> None:
    h11_rejects = run_h11(case).error is not None
    if case.id in H11_ACCEPTS_INVALID:
        assert not h11_rejects, "h11 now rejects this case: drop it from H11_ACCEPTS_INVALID"
    else:
        assert h11_rejects, "h11 accepts this case: document the RFC clause (README + list)"


def test_readme_documents_every_h11_difference() -> None:
    readme = (CONFORMANCE_DIR / "README.md").read_text()
    documented = [*H11_REJECTS_VALID, *H11_HEADER_DIFFERENCES, *H11_ACCEPTS_INVALID]
    assert [case_id for case_id in documented if f"`{case_id}`" not in readme] == []


def test_h11_lists_name_real_cases() -> None:
    documented = [*H11_REJECTS_VALID, *H11_HEADER_DIFFERENCES, *H11_ACCEPTS_INVALID]
    assert [case_id for case_id in documented if case_id not in corpus.BY_ID] == []
