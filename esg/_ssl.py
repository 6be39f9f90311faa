"""Build the server's ``ssl.SSLContext`` from the --ssl-* settings.

Problems the user can fix (a missing file, a wrong password, a key that doesn't match the
certificate) raise ``TLSConfigError`` with one line that names the file involved.

The context advertises ``h2`` then ``http/1.1`` by ALPN (RFC 7301), or ``http/1.1`` alone with
``--no-http2``: a client that offers ``h2`` must learn whether esg speaks it before it sends
an HTTP/2 preface.  ``HttpProtocol.connection_made`` reads the choice.  A client that offers no
protocol esg speaks still completes the handshake, without ALPN.

``tls_extension`` builds the ASGI ``tls`` scope extension of a connection (asgiref's TLS spec,
version 0.2).  The server certificate (the first in ``--ssl-certfile``) and the context's
cipher suite numbers are looked up once per context, the client's certificates once per
connection.  Python's ``ssl`` rejects a client certificate that fails verification during the
handshake, so ``client_cert_error`` is always None.  ``client_cert_chain`` starts with the
client's own certificate; from Python 3.13 on (``get_unverified_chain``) the certificates that
chain it to the CA follow, as OpenSSL saw them (the CA included), before only that one.
"""

from __future__ import annotations

import os
import re
import ssl
import weakref
from typing import Any

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
    _server_certs[context] = _first_certificate(certfile)
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


# -- the ASGI "tls" extension --------------------------------------------------------------

# The PEM server certificate of each context esg made (None: a context from elsewhere).
_server_certs: weakref.WeakKeyDictionary[ssl.SSLContext, str | None] = weakref.WeakKeyDictionary()
# OpenSSL's cipher name -> the IANA cipher suite number, per context.
_cipher_ids: weakref.WeakKeyDictionary[ssl.SSLContext, dict[str, int]] = weakref.WeakKeyDictionary()
_TLS_VERSIONS = {"SSLv3": 0x0300, "TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303}
_TLS_VERSIONS["TLSv1.3"] = 0x0304
_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL
)
# RFC 4514 section 3: the attribute types with a short name; others keep Python's name.
_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_ESCAPED = re.compile(r'(["+,;<>\\])')


def _first_certificate(certfile: str | os.PathLike[str]) -> str | None:
    """The server's own certificate: the first of the chain in ``--ssl-certfile``, as PEM
    (never the key the same file may hold)."""
    try:
        with open(certfile, encoding="ascii", errors="replace") as file:
            found = _PEM_CERTIFICATE.search(file.read())
    except OSError:
        return None
    if found is None:
        return None
    return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(found.group()))


def tls_extension(ssl_object: Any) -> dict[str, Any]:
    """``scope["extensions"]["tls"]`` for a connection (an ``ssl.SSLObject``; what a loop's
    transport offers instead is read as far as it has the same methods)."""
    context = getattr(ssl_object, "context", None)
    cipher = _ask(ssl_object, "cipher")
    return {
        "server_cert": _server_certs.get(context) if context is not None else None,
        "client_cert_chain": _client_chain(ssl_object),
        "client_cert_name": _client_name(ssl_object),
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(_ask(ssl_object, "version") or ""),
        "cipher_suite": _cipher_id(context, cipher[0]) if cipher and context else None,
    }


def _ask(ssl_object: Any, method: str, *args: Any) -> Any:
    found = getattr(ssl_object, method, None)
    return None if found is None else found(*args)


def _client_chain(ssl_object: Any) -> list[str]:
    """The client's certificates as PEM, its own first (empty when it sent none)."""
    leaf = _ask(ssl_object, "getpeercert", True)
    if not leaf:
        return []
    chain_of = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+: DER bytes
    chain = list(chain_of() or ()) if chain_of is not None else []
    if not chain or chain[0] != leaf:
        chain.insert(0, leaf)
    return [ssl.DER_cert_to_PEM_cert(der) for der in chain]


def _client_name(ssl_object: Any) -> str | None:
    """The client certificate's subject, as RFC 4514 writes it (last RDN first)."""
    peer = _ask(ssl_object, "getpeercert")
    subject = peer.get("subject") if peer else None
    if not subject:
        return None
    rdns = []
    for rdn in reversed(subject):
        rdns.append(
            "+".join(f"{_SHORT_NAMES.get(kind, kind)}={_escape(value)}" for kind, value in rdn)
        )
    return ",".join(rdns)


def _escape(value: str) -> str:
    """An attribute value escaped as RFC 4514 section 2.4 asks."""
    value = _ESCAPED.sub(r"\\\1", value).replace("\x00", "\\00")
    if value.startswith((" ", "#")):
        value = "\\" + value
    if value.endswith(" ") and len(value) > 1:
        value = value[:-1] + "\\ "
    return value


def _cipher_id(context: ssl.SSLContext, name: str) -> int | None:
    ids = _cipher_ids.get(context)
    if ids is None:
        # OpenSSL's ids are 0x0300XXXX: the low 16 bits are the two bytes of the RFCs.
        ids = {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}
        _cipher_ids[context] = ids
    return ids.get(name)
