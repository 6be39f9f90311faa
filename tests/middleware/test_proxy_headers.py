from __future__ import annotations

import asyncio
from typing import Any

import pytest

from esg._types import Message, Receive, Scope, Send
from esg.middleware.proxy_headers import ProxyHeadersMiddleware, TrustedHosts


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    pass


async def no_receive() -> Message:
    raise AssertionError("not used")


async def no_send(message: Message) -> None:
    raise AssertionError("not used")


def call(
    trusted: list[str] | str,
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    scope_type: str = "http",
) -> Scope:
    scheme = "ws" if scope_type == "websocket" else "http"
    scope: dict[str, Any] = {
        "type": scope_type,
        "scheme": scheme,
        "client": client,
        "server": ("127.0.0.1", 8000),
        "headers": headers,
    }
    asyncio.run(ProxyHeadersMiddleware(app, trusted)(scope, no_receive, no_send))
    return scope


FORWARDED = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]


def test_trusted_peer_sets_client_and_scheme() -> None:
    scope = call("127.0.0.1", FORWARDED)
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


def test_untrusted_peer_headers_are_ignored() -> None:
    scope = call("127.0.0.1", FORWARDED, client=("198.51.100.2", 4000))
    assert scope["client"] == ("198.51.100.2", 4000)
    assert scope["scheme"] == "http"


def test_default_trusts_only_loopback() -> None:
    scope: dict[str, Any] = {"type": "http", "scheme": "http", "headers": FORWARDED}
    scope["client"] = ("10.0.0.1", 1)
    asyncio.run(ProxyHeadersMiddleware(app)(scope, no_receive, no_send))
    assert scope["client"] == ("10.0.0.1", 1)


@pytest.mark.parametrize(
    "trusted",
    ["10.0.0.0/8", "192.168.0.1, 10.1.0.0/16", ["10.1.2.3"], ["fd00::/8", "10.1.2.0/24"], "*"],
)
def test_trust_by_ip_cidr_list_or_star(trusted: list[str] | str) -> None:
    scope = call(trusted, FORWARDED, client=("10.1.2.3", 1))
    assert scope["client"] == ("203.0.113.7", 0)


def test_star_trusts_unix_socket_peers() -> None:
    assert call("*", FORWARDED, client=None)["client"] == ("203.0.113.7", 0)


def test_unix_socket_peer_is_not_trusted_without_star() -> None:
    assert call("127.0.0.1", FORWARDED, client=None)["client"] is None


def test_multiple_hops_take_rightmost_untrusted() -> None:
    hops = b"198.51.100.1, 203.0.113.7, 10.0.0.5, 10.0.0.6"
    scope = call("127.0.0.1, 10.0.0.0/24", [(b"x-forwarded-for", hops)])
    assert scope["client"] == ("203.0.113.7", 0)


def test_all_hops_trusted_takes_leftmost() -> None:
    scope = call("*", [(b"x-forwarded-for", b"198.51.100.1, 10.0.0.5")])
    assert scope["client"] == ("198.51.100.1", 0)


def test_repeated_forwarded_for_fields_are_one_list() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-for", b"10.0.0.5")]
    scope = call("127.0.0.1, 10.0.0.5", headers)
    assert scope["client"] == ("203.0.113.7", 0)


def test_ipv6_peer_and_hops() -> None:
    headers = [(b"x-forwarded-for", b"2001:db8::7, fd00::1")]
    scope = call("::1, fd00::/8", headers, client=("::1", 5))
    assert scope["client"] == ("2001:db8::7", 0)


def test_ipv4_mapped_peer_matches_ipv4_entry() -> None:
    scope = call("127.0.0.1", FORWARDED, client=("::ffff:127.0.0.1", 5))
    assert scope["client"] == ("203.0.113.7", 0)


def test_garbage_hop_is_kept_as_string() -> None:
    scope = call("127.0.0.1", [(b"x-forwarded-for", b"not-an-ip, 127.0.0.1")])
    assert scope["client"] == ("not-an-ip", 0)


@pytest.mark.parametrize("value", [b"", b" ", b" , ", b",,", b"\t,  ,"])
def test_forwarded_for_without_a_hop_keeps_the_peer(value: bytes) -> None:
    assert call("127.0.0.1", [(b"x-forwarded-for", value)])["client"] == ("127.0.0.1", 50000)


def test_empty_hops_are_skipped() -> None:
    scope = call("127.0.0.1", [(b"x-forwarded-for", b", 203.0.113.7 ,, ")])
    assert scope["client"] == ("203.0.113.7", 0)


def test_client_from_forwarded_for_without_a_hop_is_none() -> None:
    assert TrustedHosts("127.0.0.1").client_from_forwarded_for(" , ") is None


@pytest.mark.parametrize("scope_type", ["http", "websocket"])
def test_empty_proto_and_port_keep_scheme_and_server(scope_type: str) -> None:
    headers = [(b"x-forwarded-proto", b""), (b"x-forwarded-port", b" ")]
    scope = call("127.0.0.1", headers, scope_type=scope_type)
    assert scope["scheme"] == ("ws" if scope_type == "websocket" else "http")
    assert scope["server"] == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("scope_type", "proto", "scheme"),
    [
        ("http", b"https", "https"),
        ("http", b"HTTP", "http"),
        ("http", b"wss", "https"),
        ("websocket", b"https", "wss"),
        ("websocket", b"http", "ws"),
        ("http", b"http, https", "https"),
        ("http", b"gopher", "http"),
        ("websocket", b"javascript", "ws"),
    ],
)
def test_forwarded_proto(scope_type: str, proto: bytes, scheme: str) -> None:
    scope = call("127.0.0.1", [(b"x-forwarded-proto", proto)], scope_type=scope_type)
    assert scope["scheme"] == scheme


@pytest.mark.parametrize(
    ("port", "server"),
    [(b"443", ("127.0.0.1", 443)), (b"0", ("127.0.0.1", 8000)), (b"x", ("127.0.0.1", 8000))],
)
def test_forwarded_port_sets_server_port(port: bytes, server: tuple[str, int]) -> None:
    assert call("127.0.0.1", [(b"x-forwarded-port", port)])["server"] == server


def test_lifespan_scope_is_passed_through_untouched() -> None:
    scope: dict[str, Any] = {"type": "lifespan"}
    asyncio.run(ProxyHeadersMiddleware(app, "*")(scope, no_receive, no_send))
    assert scope == {"type": "lifespan"}


def test_trusted_hosts_membership() -> None:
    trusted = TrustedHosts("10.0.0.0/8, ::1, proxy.internal")
    assert "10.200.0.1" in trusted
    assert "0:0:0:0:0:0:0:1" in trusted
    assert "proxy.internal" in trusted
    assert "11.0.0.1" not in trusted
    assert None not in trusted
