"""Build the server's ``ssl.SSLContext`` from the --ssl-* settings.

Problems the user can fix (a missing file, a wrong password, a key that doesn't match the
certificate) raise ``TLSConfigError`` with one line that names the file involved.

The context advertises ``h2`` then ``http/1.1`` by ALPN (RFC 7301), or ``http/1.1`` alone with
``--no-http2``: a client that offers ``h2`` must learn whether esg speaks it before it sends
an HTTP/2 preface.  ``HttpProtocol.connection_made`` reads the choice.  A client that offers no
protocol esg speaks still completes the handshake, without ALPN.
"""

from __future__ import annotations

import os
import ssl

# What esg serves over TLS, in its order of preference; HTTP/1.1 also carries the WebSocket
# handshake (RFC 6455).
ALPN_PROTOCOLS = ["h2", "http/1.1"]


class TLSConfigError(Exception):
    """The --ssl-* settings can't produce a working TLS context."""


def create_ssl_context(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    password: str | None,
    ssl_version: int,
    cert_reqs: int,
    ca_certs: str | os.PathLike[str] | None,
    ciphers: str | None,
    http2: bool = True,
) -> ssl.SSLContext:
    _require_file(certfile, "SSL certificate file (--ssl-certfile)")
    if keyfile:
        _require_file(keyfile, "SSL key file (--ssl-keyfile)")
    if ca_certs:
        _require_file(ca_certs, "SSL CA certificates file (--ssl-ca-certs)")
    context = ssl.SSLContext(ssl_version)
    _load_cert_chain(context, certfile, keyfile, password)
    context.verify_mode = ssl.VerifyMode(cert_reqs)
    if ca_certs:
        _load_ca_certs(context, ca_certs)
    if ciphers:
        _set_ciphers(context, ciphers)
    if ssl.HAS_ALPN:
        context.set_alpn_protocols(ALPN_PROTOCOLS if http2 else ALPN_PROTOCOLS[1:])
    return context


def _require_file(path: str | os.PathLike[str], what: str) -> None:
    if not os.path.isfile(path):
        raise TLSConfigError(f'{what} "{os.fspath(path)}" does not exist or is not a file.')


def _load_cert_chain(
    context: ssl.SSLContext,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    password: str | None,
) -> None:
    # Always a callable: without one, OpenSSL would prompt on the terminal for an encrypted
    # key, which hangs a server started by a supervisor.  Unencrypted keys never call it.
    def get_password() -> str:
        return password or ""

    try:
        context.load_cert_chain(certfile, keyfile, get_password)
    except (ssl.SSLError, OSError) as exc:
        files = f'"{os.fspath(certfile)}"' + (f' / "{os.fspath(keyfile)}"' if keyfile else "")
        raise TLSConfigError(
            f"Could not load the TLS certificate and key from {files}: {exc}"
            " (check the files, their format, and --ssl-keyfile-password)."
        ) from exc


def _load_ca_certs(context: ssl.SSLContext, ca_certs: str | os.PathLike[str]) -> None:
    try:
        context.load_verify_locations(ca_certs)
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f'Could not load CA certificates from "{os.fspath(ca_certs)}": {exc}'
        ) from exc


def _set_ciphers(context: ssl.SSLContext, ciphers: str) -> None:
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise TLSConfigError(f'Invalid --ssl-ciphers "{ciphers}": {exc}') from exc
