"""The published hpack-test-case vectors (http2jp), decoded by both builds of esg.http2.hpack.

vectors/hpack-test-case/README.md says where they come from and what each directory holds.
Each story is decoded case after case by one decoder (the compression context carries over),
after acknowledging the case's ``header_table_size`` when it has one, and every header list
must come out exactly.  The ``raw-data`` stories, which have no wire format, go through esg's
encoder instead, and are decoded by esg's decoder and by the ``hpack`` package.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import hpack as hpack_package
import pytest

VECTORS = Path(__file__).resolve().parent / "vectors" / "hpack-test-case"
STORIES = sorted(path for path in VECTORS.glob("*/story_*.json") if path.parent.name != "raw-data")
RAW_STORIES = sorted((VECTORS / "raw-data").glob("story_*.json"))


def story_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def header_list(case: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """A case's ``headers``: one-entry objects, in order."""
    return [
        (name.encode(), value.encode())
        for field in case["headers"]
        for name, value in field.items()
    ]


def test_the_subset_is_there() -> None:
    encoders = {path.parent.name for path in STORIES}
    assert len(encoders) >= 8 and "nghttp2-change-table-size" in encoders
    assert len(STORIES) >= 50 and RAW_STORIES


@pytest.mark.parametrize("story", STORIES, ids=story_id)
def test_story_decodes(codec: ModuleType, story: Path) -> None:
    cases = json.loads(story.read_text())["cases"]
    decoder = codec.Decoder(max_header_list_size=1 << 20)
    for case in cases:
        if case.get("header_table_size") is not None:  # swift-nio's stories say null
            decoder.set_max_table_size(case["header_table_size"])
        headers = decoder.decode(bytes.fromhex(case["wire"]))
        assert headers == header_list(case), f"{story_id(story)} case {case['seqno']}"


@pytest.mark.parametrize("story", RAW_STORIES, ids=story_id)
@pytest.mark.parametrize("table_size", [4096, 256, 0])
def test_raw_story_round_trips_through_the_encoder(
    codec: ModuleType, story: Path, table_size: int
) -> None:
    cases = json.loads(story.read_text())["cases"]
    encoder = codec.Encoder(max_table_size=table_size)
    decoder = codec.Decoder(max_header_list_size=1 << 20)
    reference = hpack_package.Decoder(max_header_list_size=1 << 20)
    for number, case in enumerate(cases):
        headers = header_list(case)
        encoded = encoder.encode(headers)
        assert decoder.decode(encoded) == headers, f"{story_id(story)} case {number}"
        assert [tuple(field) for field in reference.decode(encoded, raw=True)] == headers
        assert decoder.table_size == encoder.table_size <= table_size
