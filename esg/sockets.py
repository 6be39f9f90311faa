"""The listening sockets: TCP on one address or on every interface, a UNIX socket, or an
inherited file descriptor.

``listening_sockets()`` binds and listens at once, not when the event loop's server starts, so
connections wait in the backlog while the app starts up (or while a worker is being replaced)
instead of being refused; the sockets are inheritable, for worker processes.  A socket that
can't be had is a mistake the user can fix: one line and exit 1 (``esg.user_errors.fail``).
``Config.bind_sockets()`` calls this with its settings.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from esg.user_errors import fail

__all__ = ["listening_sockets", "remove_unix_socket"]


def listening_sockets(
    host: str | None,
    port: int,
    *,
    uds: str | None = None,
    uds_mode: int = 0o666,
    fd: int | None = None,
    backlog: int = 2048,
) -> list[socket.socket]:
    """The sockets to serve on, already listening: on ``uds`` if set, else on ``fd`` if set,
    else TCP on ``host`` and ``port``.

    One socket, except with ``host=None``: all interfaces, one socket per address family (IPv4
    and IPv6), as asyncio's ``create_server(host=None)`` binds them.
    """
    if uds:
        sockets = [_bind_unix_socket(uds, uds_mode)]
    elif fd is not None:
        sockets = [_socket_from_fd(fd)]
    elif host is None:
        sockets = _bind_all_interfaces(port)
    else:
        sockets = [_bind_tcp_socket(host, port)]
    try:
        for sock in sockets:
            sock.listen(backlog)
    except OSError as exc:
        _close_all(sockets)
        fail(f"Cannot listen on the socket: {exc}", exc)
    for sock in sockets:
        sock.set_inheritable(True)  # worker processes inherit the sockets
    return sockets


def _bind_tcp_socket(host: str, port: int) -> socket.socket:
    host = host.strip("[]")  # accept "[::1]" as well as "::1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        fail(_bind_error(exc, shown), exc)
    return sock


def _bind_all_interfaces(port: int) -> list[socket.socket]:
    """``host=None``: a socket on every interface for each address family the machine has.

    Separate IPv4 and IPv6 sockets (the IPv6 one IPv6-only), not one dual-stack socket, so
    that IPv4 clients appear as plain IPv4 addresses in ``scope["client"]``, as under asyncio's
    ``create_server(host=None)``.  With port 0 the later sockets take the port the first got.
    """
    infos = socket.getaddrinfo(
        None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            host = address[0]
            if not isinstance(host, str) or any(sock.family == family for sock in sockets):
                continue  # (a str for every IPv4 and IPv6 address)
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:
                continue  # a family this kernel was built or configured without
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # Else, where the kernel defaults to dual-stack, it would claim the IPv4 port too
                # and the IPv4 socket's bind would fail.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            bound_port = sockets[0].getsockname()[1] if port == 0 and len(sockets) > 1 else port
            try:
                sock.bind((host, bound_port, *address[2:]))
            except OSError as exc:
                shown = f"[{host}]" if family == socket.AF_INET6 else host
                fail(_bind_error(exc, f"{shown}:{bound_port}"), exc)
    except BaseException:
        _close_all(sockets)
        raise
    if not sockets:
        fail(f"Could not bind to port {port} on any interface: no IPv4 or IPv6 support.")
    return sockets


def _close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _bind_unix_socket(path: str, mode: int) -> socket.socket:
    """Listen on ``path`` with permissions ``mode``.

    A stale socket file (its server died) is replaced; a file that is not a socket, or a
    socket a server still listens on, is not.  The file is created with ``mode`` already in
    place (through the umask), so there is no moment when it has looser permissions.
    """
    if _unix_socket_is_stale(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
        os.chmod(path, mode)  # bits the umask can't grant (none today; kept explicit)
    except OSError as exc:
        sock.close()
        fail(_bind_error(exc, f"unix socket {path}"), exc)
    finally:
        os.umask(previous_umask)
    return sock


def remove_unix_socket(path: str, inode: int | None) -> None:
    """Remove the socket file at exit, unless another server has replaced it with its own."""
    try:
        if inode is None or os.stat(path).st_ino != inode:
            return
        os.unlink(path)
    except OSError:
        return


def _unix_socket_is_stale(path: str) -> bool:
    """True for a socket file nobody listens on; fails for one in use or for another file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        fail(f'Cannot bind unix socket "{path}": a file that is not a socket is in the way.')
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return True  # left by a server that died
    finally:
        probe.close()
    fail(f'Cannot bind unix socket "{path}": address already in use (a server is listening).')


def _socket_from_fd(fd: int) -> socket.socket:
    # A duplicate, so closing our socket object leaves the inherited descriptor alone;
    # family and type are read from the descriptor itself.
    try:
        duplicate = os.dup(fd)
    except OSError as exc:
        fail(f"Cannot use file descriptor {fd} as a socket: {exc}", exc)
    try:
        return socket.socket(fileno=duplicate)
    except OSError as exc:
        os.close(duplicate)
        fail(f"Cannot use file descriptor {fd} as a socket: {exc}", exc)


def _bind_error(exc: OSError, where: str) -> str:
    reason = (exc.strerror or str(exc)).lower()
    errno_part = f"[Errno {exc.errno}] " if exc.errno is not None else ""
    return f"{errno_part}Could not bind to {where}: {reason}"
