"""An app with the health route a load balancer or orchestrator probes.

``esg examples.deploy_app:app --workers 2`` serves:

* ``GET /health``: ``200 ok`` once the app's lifespan startup completed (its database pools,
  caches ... are ready), ``503 starting`` before.  It touches nothing else, so it is cheap
  enough to be probed a few times a second by every load balancer in front of every host
  (``examples/haproxy/haproxy.cfg`` checks it every 250 ms).  A check must not depend on
  other services: a database that is down would mark every host down at once, and the load
  balancer would then have nowhere to send anything.
* anything else: ``Hello, world!``, the same 13 bytes each time (load generators such as
  ``ab`` count a response of another length as failed).

What to probe, and what each probe proves, is in ``examples/haproxy/haproxy.cfg`` and
``tests/deploy/test_health.py``: this route through the app's own port proves that a worker
accepts, runs the app and answers; esg's ``--metrics`` listener (``/metrics`` on a port of its
own) proves that the supervisor is alive and says how many workers serve (``esg_workers``),
but never that the app answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HELLO = b"Hello, world!"
ready = False  # set by the lifespan startup; one value per worker process


async def lifespan(receive: Receive, send: Send) -> None:
    global ready
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Open connection pools, warm caches ... here; /health answers 200 only after.
            ready = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            ready = False
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def health(send: Send) -> None:
    # no-store: a cache between the checker and esg must never answer for esg.
    no_store = (b"cache-control", b"no-store")
    if ready:
        await respond(send, 200, b"ok\n", no_store)
    else:
        await respond(send, 503, b"starting\n", no_store)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    assert scope["type"] == "http"
    if scope["path"] == "/health":
        await health(send)
    else:
        await respond(send, 200, HELLO)
