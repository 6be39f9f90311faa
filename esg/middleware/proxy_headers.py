"""Take the client's address and scheme from ``X-Forwarded-*`` headers set by trusted proxies.

Trust rules (``--forwarded-allow-ips``, default ``127.0.0.1``):

* Entries are IP addresses, CIDR networks (IPv4 or IPv6), or ``*`` (trust every peer).  Any
  other entry is kept as a literal and matches a host string equal to it.  An IPv4-mapped IPv6
  peer (``::ffff:10.0.0.1``, from a dual-stack socket) matches the IPv4 entries too.
* The headers are read only when the *immediate* peer (``scope["client"]``) is trusted.  A peer
  on a UNIX socket has no address (``client`` is None), so it is trusted only with ``*``: behind
  a proxy on a UNIX socket, the socket's file permissions are the trust boundary, and ``*`` says
  so explicitly.
* ``X-Forwarded-For`` is read from the right, skipping trusted proxies; the first untrusted hop is
  the client, ``(host, 0)`` because the client's port is unknown.  If every hop is trusted, the
  leftmost is the client.  A hop that is not an IP address is kept as the host string as it is.
  Empty hops are skipped; a header with no hop at all leaves the peer as the client.
* ``X-Forwarded-Proto``: the rightmost value (the one our trusted peer vouches for) sets
  ``scope["scheme"]`` when it is http/https/ws/wss, mapped to ws/wss for WebSocket scopes.
* ``X-Forwarded-Port``: a valid port (1-65535) replaces the port of ``scope["server"]``: it is the
  port the client connected to on the proxy, which is what ``server`` describes.
* A value these rules can't use (an empty header, an unknown scheme, a port out of range)
  changes nothing: the scope keeps what the connection itself says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from esg._types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class TrustedHosts:
    """A set of trusted peers: ``"*"``, addresses, networks and literal host strings."""

    def __init__(self, trusted_hosts: Iterable[str] | str) -> None:
        entries = trusted_hosts.split(",") if isinstance(trusted_hosts, str) else trusted_hosts
        self.trust_all = False
        self.literals: set[str] = set()  # exact host strings: single IPs and non-IP entries
        self.networks: list[IPNetwork] = []
        for entry in (item.strip() for item in entries):
            self._add(entry)

    def _add(self, entry: str) -> None:
        if entry == "*":
            self.trust_all = True
        elif entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                self.literals.add(entry)
                return
            if network.num_addresses == 1:
                self.literals.add(str(network.network_address))
            else:
                self.networks.append(network)

    def __contains__(self, host: object) -> bool:
        if self.trust_all:
            return True
        if not isinstance(host, str):
            return False  # UNIX socket peers (no address) need "*"
        if host in self.literals:
            return True  # fast path: the usual single-proxy setup needs no parsing
        address = parse_ip(host)
        if address is None:
            return False
        if str(address) in self.literals:
            return True  # same address, different spelling ("::0001" vs "::1")
        return any(address in network for network in self.networks)

    def client_from_forwarded_for(self, value: str) -> str | None:
        """The rightmost untrusted hop of an X-Forwarded-For list (the leftmost if all trusted).

        None when the list names no hop at all (empty, or only empty or blank entries).
        """
        hops = [hop for hop in (item.strip() for item in value.split(",")) if hop]
        if not hops:
            return None
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0]


def parse_ip(host: str) -> IPAddress | None:
    """The IP address in ``host``, with IPv4-mapped IPv6 unwrapped; None for anything else."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ProxyHeadersMiddleware:
    """Rewrite ``client``, ``scheme`` and ``server`` from headers of trusted proxies."""

    def __init__(self, app: ASGIApp, trusted_hosts: list[str] | str = "127.0.0.1") -> None:
        self.app = app
        self.trusted_hosts = TrustedHosts(trusted_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self._peer_is_trusted(scope):
            self._apply_forwarded_headers(scope)
        await self.app(scope, receive, send)

    def _peer_is_trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        return (client[0] if client else None) in self.trusted_hosts

    def _apply_forwarded_headers(self, scope: Scope) -> None:
        apply_forwarded_headers(scope, self.trusted_hosts)


def apply_forwarded_headers(scope: Scope, trusted_hosts: TrustedHosts) -> None:
    """Rewrite ``scope`` from the X-Forwarded-* headers; the peer must already be trusted.

    The server calls this while building each scope of a connection whose peer it found
    trusted once, at accept time; ``ProxyHeadersMiddleware`` calls it for other servers.
    """
    forwarded = read_forwarded_headers(scope["headers"])
    if forwarded:
        _apply_forwarded(scope, forwarded, trusted_hosts)


def _apply_forwarded(
    scope: Scope, forwarded: dict[bytes, str], trusted_hosts: TrustedHosts
) -> None:
    proto = forwarded.get(b"x-forwarded-proto")
    if proto is not None:
        _apply_proto(scope, proto)
    hops = forwarded.get(b"x-forwarded-for")
    if hops is not None:
        client = trusted_hosts.client_from_forwarded_for(hops)
        if client is not None:  # a header naming nobody leaves the peer as the client
            scope["client"] = (client, 0)
    port = forwarded.get(b"x-forwarded-port")
    if port is not None:
        _apply_port(scope, port)


def _apply_proto(scope: Scope, value: str) -> None:
    proto = value.rsplit(",", 1)[-1].strip().lower()
    schemes = WEBSOCKET_SCHEMES if scope["type"] == "websocket" else HTTP_SCHEMES
    if proto in schemes:
        scope["scheme"] = schemes[proto]


def _apply_port(scope: Scope, value: str) -> None:
    text = value.rsplit(",", 1)[-1].strip()
    server = scope.get("server")
    if server and text.isascii() and text.isdigit() and 0 < int(text) < 65536:
        scope["server"] = (server[0], int(text))


def read_forwarded_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """X-Forwarded-* values by lowercase name; repeated fields are joined into one list."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if not name.startswith(b"x-forwarded-"):  # ASGI header names are lowercase
            continue
        text = value.decode("latin-1")
        found[name] = f"{found[name]},{text}" if name in found else text
    return found
