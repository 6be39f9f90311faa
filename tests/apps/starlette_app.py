"""A Starlette app: JSON, streaming, request.body() and a background task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

# What the background tasks did, readable through /background-log.
BACKGROUND_LOG: list[str] = []


async def index(request: Request) -> Response:
    return JSONResponse({"framework": "starlette", "path": request.url.path})


async def upload(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"length": len(body), "head": body[:10].decode("latin-1")})


async def numbers() -> AsyncIterator[bytes]:
    for number in range(4):
        yield b"number %d\n" % number
        await asyncio.sleep(0.01)


async def stream(request: Request) -> Response:
    return StreamingResponse(numbers(), media_type="text/plain")


async def record(entry: str) -> None:
    BACKGROUND_LOG.append(entry)


async def with_background(request: Request) -> Response:
    entry = request.query_params.get("entry", "default")
    return PlainTextResponse("accepted", background=BackgroundTask(record, entry))


async def background_log(request: Request) -> Response:
    return JSONResponse(BACKGROUND_LOG)


app = Starlette(
    routes=[
        Route("/", index),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/background", with_background),
        Route("/background-log", background_log),
    ]
)
