"""Starlette and FastAPI apps served by a real esg process, checked with httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from utils import run_server, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def starlette() -> Iterator[httpx.Client]:
    pytest.importorskip("starlette")
    with (
        run_server("apps.starlette_app:app") as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def fastapi() -> Iterator[httpx.Client]:
    pytest.importorskip("fastapi")
    with (
        run_server("apps.fastapi_app:app") as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
    ):
        yield client


def test_starlette_json(starlette: httpx.Client) -> None:
    response = starlette.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"framework": "starlette", "path": "/"}


def test_starlette_request_body(starlette: httpx.Client) -> None:
    body = b"0123456789" * 10_000

    def pieces() -> Iterator[bytes]:
        yield body[:30_000]
        yield body[30_000:]

    with_length = starlette.post("/upload", content=body)
    chunked = starlette.post("/upload", content=pieces())
    assert with_length.json() == {"length": 100_000, "head": "0123456789"}
    assert chunked.json() == {"length": 100_000, "head": "0123456789"}


def test_starlette_streaming_response(starlette: httpx.Client) -> None:
    with starlette.stream("GET", "/stream") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        text = b"".join(response.iter_bytes()).decode()
    assert text == "number 0\nnumber 1\nnumber 2\nnumber 3\n"


def test_starlette_background_task_runs(starlette: httpx.Client) -> None:
    response = starlette.get("/background", params={"entry": "after-response"})
    assert response.text == "accepted"
    assert wait_for(lambda: "after-response" in starlette.get("/background-log").json())


def test_starlette_unknown_route_is_404(starlette: httpx.Client) -> None:
    assert starlette.get("/missing").status_code == 404


def test_fastapi_pydantic_post(fastapi: httpx.Client) -> None:
    response = fastapi.post("/items", json={"name": "lamp", "price": 10.0, "tags": ["home"]})
    assert response.status_code == 200
    assert response.json() == {"name": "lamp", "price_with_tax": 12.0, "tags": ["home"]}


def test_fastapi_validation_error(fastapi: httpx.Client) -> None:
    response = fastapi.post("/items", json={"name": "lamp", "price": "not a number"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "price"]


def test_fastapi_path_params(fastapi: httpx.Client) -> None:
    response = fastapi.get("/users/42/orders/a-7")
    assert response.json() == {"user_id": 42, "order_id": "a-7"}
    assert fastapi.get("/users/not-int/orders/x").status_code == 422


def test_fastapi_openapi_schema(fastapi: httpx.Client) -> None:
    schema = fastapi.get("/openapi.json").json()
    assert "/items" in schema["paths"]
