from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import stat
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from esg._types import Receive, Scope, Send
from esg.config import Config
from esg.log_config import LOGGER_NAMES
from esg.logging import LOGGING_CONFIG, TRACE_LOG_LEVEL

pytestmark = pytest.mark.usefixtures("isolated_esg_loggers")


@pytest.fixture
def clean_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))


async def asgi3_app(scope: Scope, receive: Receive, send: Send) -> None:
    pass


class ASGI3Instance:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pass


class ASGI2Class:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        pass


class AwaitableASGI3Class:
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pass

    def __await__(self) -> Any:
        yield from ()


def asgi2_function(scope: Scope) -> Any:
    return ASGI2Class(scope)


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


def make_config(**settings: Any) -> Config:
    """A Config for a do-nothing app that leaves logging alone unless told otherwise."""
    return Config(asgi3_app, **{"log_config": None, **settings})


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def load_fails(config: Config, caplog: pytest.LogCaptureFixture) -> str:
    """Runs config.load(), which must exit 1 after logging exactly one error line."""
    with pytest.raises(SystemExit) as info:
        config.load()
    assert info.value.code == 1
    [message] = error_messages(caplog)
    assert "\n" not in message
    return message


# -- settings ------------------------------------------------------------------------------


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    config = make_config()
    assert (config.host, config.port, config.uds, config.fd) == ("127.0.0.1", 8000, None, None)
    assert (config.workers, config.backlog, config.timeout_keep_alive) == (1, 2048, 5)
    assert (config.timeout_header, config.timeout_body) == (30.0, 60.0)
    assert (config.limit_request_line, config.limit_request_fields) == (8190, 100)
    assert (config.limit_request_field_size, config.limit_request_body) == (8190, None)
    assert (config.ws_max_size, config.ws_max_queue, config.ws_per_message_deflate) == (
        16777216,
        32,
        True,
    )
    assert config.forwarded_allow_ips == ["127.0.0.1"]
    assert config.ssl_version == int(ssl.PROTOCOL_TLS_SERVER) == 17
    assert config.ssl_cert_reqs == ssl.CERT_NONE
    assert config.encoded_headers == []
    assert config.log_level is None
    assert not config.is_ssl and not config.loaded
    assert config.asgi_version == "3.0"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, ["10.0.0.1", "10.0.0.0/8"]),  # from the environment
        ("192.168.0.1, ::1", ["192.168.0.1", "::1"]),
        (["172.16.0.1", "*"], ["172.16.0.1", "*"]),
    ],
)
def test_forwarded_allow_ips(
    monkeypatch: pytest.MonkeyPatch, setting: Any, expected: list[str]
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1,10.0.0.0/8")
    config = make_config(forwarded_allow_ips=setting)
    assert config.forwarded_allow_ips == expected


def test_workers_from_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert make_config().workers == 3
    assert make_config(workers=2).workers == 2


def test_bad_web_concurrency_is_one_line_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(SystemExit):
        make_config()
    assert error_messages(caplog) == [
        "WEB_CONCURRENCY must be a whole number of worker processes; got 'many'."
    ]


def test_headers_are_encoded_with_lowercase_names() -> None:
    config = make_config(headers=[("X-Served-By", "Edge 1")])
    assert config.encoded_headers == [(b"x-served-by", b"Edge 1")]


@pytest.mark.parametrize(
    "header", [("Bad Name", "v"), ("", "v"), ("X-Ok", "a\r\nSet-Cookie: x"), ("X-Ok", "\0")]
)
def test_headers_that_would_break_responses_are_refused(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        make_config(headers=[header])


@pytest.mark.parametrize(
    ("setting", "value"),
    [("loop", "trio"), ("interface", "asgi4"), ("lifespan", "maybe"), ("ws", "socketio")],
)
def test_unknown_choices_are_refused(setting: str, value: str) -> None:
    with pytest.raises(ValueError, match=setting):
        make_config(**{setting: value})


def test_env_file_sets_missing_variables_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ESG_TEST_FROM_FILE=file\nESG_TEST_PRESET=file\nWEB_CONCURRENCY=4\n")
    # setenv first so teardown removes what the env file adds.
    for name in ("ESG_TEST_FROM_FILE", "WEB_CONCURRENCY"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("ESG_TEST_PRESET", "shell")
    config = make_config(env_file=str(env_file))
    assert os.environ["ESG_TEST_FROM_FILE"] == "file"
    assert os.environ["ESG_TEST_PRESET"] == "shell"
    assert config.workers == 4  # read after the env file


def test_missing_env_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SystemExit):
        make_config(env_file=str(tmp_path / "missing.env"))
    [message] = error_messages(caplog)
    assert "missing.env" in message and "does not exist" in message


# -- logging -------------------------------------------------------------------------------


def test_log_level_applies_to_every_esg_logger() -> None:
    config = Config(asgi3_app, log_level="trace")
    assert config.log_level == TRACE_LOG_LEVEL
    for name in LOGGER_NAMES:
        assert logging.getLogger(name).level == TRACE_LOG_LEVEL
    assert make_config(log_level=logging.WARNING).log_level == 30


def test_unknown_log_level() -> None:
    with pytest.raises(ValueError, match="log_level"):
        make_config(log_level="loud")


def test_default_logging_config(capsys: pytest.CaptureFixture[str]) -> None:
    Config(asgi3_app, use_colors=False)
    logging.getLogger("esg.error").info("ready")
    logging.getLogger("esg.access").info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/", "1.1", 200
    )
    captured = capsys.readouterr()
    assert captured.err == "INFO:     ready\n"
    assert captured.out == 'INFO:     1.2.3.4:5 - "GET / HTTP/1.1" 200 OK\n'


def test_use_colors_reaches_the_formatters(capsys: pytest.CaptureFixture[str]) -> None:
    Config(asgi3_app, use_colors=True)
    logging.getLogger("esg.error").warning("careful")
    assert capsys.readouterr().err == "\033[33mWARNING\033[0m:  careful\n"
    assert LOGGING_CONFIG["formatters"]["default"]["use_colors"] is None  # not mutated


def test_no_access_log_silences_the_access_logger(capsys: pytest.CaptureFixture[str]) -> None:
    Config(asgi3_app, access_log=False)
    access = logging.getLogger("esg.access")
    assert access.handlers == [] and access.propagate is False
    access.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/", "1.1", 200)
    assert capsys.readouterr().out == ""


def custom_dict_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"custom": {"format": "CUSTOM %(name)s %(message)s"}},
        "handlers": {
            "out": {
                "class": "logging.StreamHandler",
                "formatter": "custom",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {"esg.error": {"handlers": ["out"], "level": "INFO", "propagate": False}},
    }


def test_log_config_from_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(custom_dict_config()))
    Config(asgi3_app, log_config=str(path))
    logging.getLogger("esg.error").info("from json")
    assert capsys.readouterr().out == "CUSTOM esg.error from json\n"


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_log_config_from_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / f"logging{suffix}"
    path.write_text(yaml.safe_dump(custom_dict_config()))
    Config(asgi3_app, log_config=path)
    logging.getLogger("esg.error").info("from yaml")
    assert capsys.readouterr().out == "CUSTOM esg.error from yaml\n"


def test_log_config_from_ini(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logging.ini"
    path.write_text(
        textwrap.dedent(
            """\
            [loggers]
            keys=root,esgerror

            [handlers]
            keys=out

            [formatters]
            keys=custom

            [logger_root]
            level=WARNING
            handlers=

            [logger_esgerror]
            level=INFO
            handlers=out
            propagate=0
            qualname=esg.error

            [handler_out]
            class=StreamHandler
            formatter=custom
            args=(sys.stdout,)

            [formatter_custom]
            format=INI %(levelname)s %(message)s
            """
        )
    )
    Config(asgi3_app, log_config=str(path))
    logging.getLogger("esg.error").info("from ini")
    assert capsys.readouterr().out == "INI INFO from ini\n"


def test_yaml_config_without_pyyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "logging.yaml"
    path.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    with pytest.raises(SystemExit):
        Config(asgi3_app, log_config=str(path))
    [message] = error_messages(caplog)
    assert "PyYAML" in message and "pip install" in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.json", None, "does not exist"),
        ("broken.json", "{not json", "not valid JSON"),
        ("list.json", "[1, 2]", "must be a mapping"),
        (
            "schema.json",
            '{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}',
            "Invalid logging configuration",
        ),
        ("broken.ini", "[loggers]\nkeys=root\n", "Invalid logging configuration"),
    ],
)
def test_bad_log_config_is_one_line_error(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    content: str | None,
    expected: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit):
        Config(asgi3_app, log_config=str(path))
    [message] = error_messages(caplog)
    assert expected in message and "\n" not in message


# -- loading the app -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (asgi3_app, "asgi3"),
        (ASGI3Instance(), "asgi3"),
        (AwaitableASGI3Class, "asgi3"),
        (ASGI2Class, "asgi2"),
        (asgi2_function, "asgi2"),
    ],
)
def test_interface_detection(app: Any, interface: str) -> None:
    config = Config(app, log_config=None, proxy_headers=False)
    config.load()
    assert config.interface == interface
    assert config.asgi_version == ("2.0" if interface == "asgi2" else "3.0")
    if interface == "asgi3":
        assert config.loaded_app is app


def test_middleware_order() -> None:
    from esg.middleware.message_logger import MessageLoggerMiddleware
    from esg.middleware.wsgi import WSGIMiddleware

    config = Config(wsgi_app, log_config=None, interface="wsgi", log_level="trace")
    config.load()
    message_logger = config.loaded_app
    assert isinstance(message_logger, MessageLoggerMiddleware)
    assert isinstance(message_logger.app, WSGIMiddleware)


def test_proxy_headers_trust_is_loaded_for_the_connections() -> None:
    from esg.middleware.proxy_headers import TrustedHosts

    config = Config(asgi3_app, log_config=None, forwarded_allow_ips="10.0.0.0/8")
    config.load()
    assert isinstance(config.proxy_trust, TrustedHosts)
    assert "10.1.2.3" in config.proxy_trust and "127.0.0.1" not in config.proxy_trust
    config = Config(asgi3_app, log_config=None, proxy_headers=False)
    config.load()
    assert config.proxy_trust is None


def test_asgi2_is_adapted() -> None:
    from esg.middleware.asgi2 import ASGI2Middleware

    config = Config(asgi2_function, log_config=None, proxy_headers=False, log_level="info")
    config.load()
    assert isinstance(config.loaded_app, ASGI2Middleware)


@pytest.mark.parametrize(
    ("lifespan", "class_name"),
    [("auto", "LifespanOn"), ("on", "LifespanOn"), ("off", "LifespanOff")],
)
def test_lifespan_class(lifespan: str, class_name: str) -> None:
    config = make_config(lifespan=lifespan)
    config.load()
    assert config.lifespan_class.__name__ == class_name


def test_load_is_idempotent() -> None:
    config = make_config()
    config.load()
    first = config.loaded_app
    config.load()
    assert config.loaded_app is first and config.loaded


@pytest.fixture
def app_module(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"esg_config_app_{os.getpid()}_{id(tmp_path)}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """\
            async def app(scope, receive, send):
                pass

            def create_app():
                return app

            def broken_factory(required):
                return app

            async def async_factory():
                return app

            def returns_text():
                return "not an app"

            text = "not callable"
            """
        )
    )
    yield tmp_path, name
    sys.modules.pop(name, None)


@pytest.mark.usefixtures("clean_sys_path")
def test_app_dir_is_put_on_sys_path(app_module: tuple[Path, str]) -> None:
    directory, name = app_module
    config = Config(f"{name}:app", log_config=None, app_dir=str(directory), proxy_headers=False)
    config.load()
    assert sys.path[0] == str(directory)
    assert config.loaded_app is sys.modules[name].app


@pytest.mark.usefixtures("clean_sys_path")
def test_factory(app_module: tuple[Path, str]) -> None:
    directory, name = app_module
    config = Config(
        f"{name}:create_app",
        log_config=None,
        app_dir=str(directory),
        factory=True,
        proxy_headers=False,
    )
    config.load()
    assert config.loaded_app is sys.modules[name].app


@pytest.mark.usefixtures("clean_sys_path")
def test_factory_without_flag_is_called_with_a_warning(
    app_module: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    directory, name = app_module
    config = Config(
        f"{name}:create_app", log_config=None, app_dir=str(directory), proxy_headers=False
    )
    config.load()
    assert config.loaded_app is sys.modules[name].app
    assert any("looks like an application factory" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("clean_sys_path")
@pytest.mark.parametrize(
    ("attribute", "factory", "expected"),
    [
        ("broken_factory", True, "Error loading ASGI app factory"),
        ("async_factory", True, "is async"),
        ("returns_text", True, "returned a str"),
        ("text", False, "is a str, not a callable"),
        ("nope", False, 'Attribute "nope" not found in module'),
    ],
)
def test_bad_app_is_one_line_error(
    app_module: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
    attribute: str,
    factory: bool,
    expected: str,
) -> None:
    directory, name = app_module
    config = Config(f"{name}:{attribute}", log_config=None, app_dir=str(directory), factory=factory)
    assert expected in load_fails(config, caplog)


def test_import_error_is_one_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    config = Config("esg_no_such_module_xyz:app", log_config=None)
    message = load_fails(config, caplog)
    assert message == (
        'Error loading ASGI app. Could not import module "esg_no_such_module_xyz": '
        "No module named 'esg_no_such_module_xyz'"
    )
    assert caplog.records[-1].exc_info is None


def test_import_error_has_traceback_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    config = Config("esg_no_such_module_xyz:app", log_config=None, log_level="debug")
    load_fails(config, caplog)
    assert caplog.records[-1].exc_info is not None


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("localhost", "127.0.0.1")
    paths = {
        "cert": directory / "cert.pem",
        "key": directory / "key.pem",
        "ca": directory / "ca.pem",
        "encrypted_key": directory / "encrypted_key.pem",
    }
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    tls_ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["encrypted_key"].write_bytes(_encrypt_key(cert.private_key_pem.bytes(), b"s3cret"))
    return {name: str(path) for name, path in paths.items()}


def _encrypt_key(key_pem: bytes, password: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> str:
    """Runs a TLS handshake in memory and returns the negotiated protocol version."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname="localhost")
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            return str(client.version())
    raise AssertionError("TLS handshake did not finish")


def test_ssl_context_serves_a_verifiable_certificate(
    tls_ca: trustme.CA, tls_files: dict[str, str]
) -> None:
    config = make_config(ssl_certfile=tls_files["cert"], ssl_keyfile=tls_files["key"])
    assert config.is_ssl
    config.load()
    assert isinstance(config.ssl, ssl.SSLContext)
    assert config.ssl.verify_mode == ssl.CERT_NONE
    client_context = ssl.create_default_context()
    tls_ca.configure_trust(client_context)
    assert _handshake(config.ssl, client_context).startswith("TLS")


@pytest.mark.parametrize(("http2", "chosen"), [(True, "h2"), (False, "http/1.1")])
def test_ssl_context_advertises_h2_and_http11_by_alpn(
    tls_ca: trustme.CA, tls_files: dict[str, str], http2: bool, chosen: str
) -> None:
    config = make_config(ssl_certfile=tls_files["cert"], ssl_keyfile=tls_files["key"], http2=http2)
    config.load()
    assert config.ssl is not None
    client_context = ssl.create_default_context()
    tls_ca.configure_trust(client_context)
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = config.ssl.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname="localhost")
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    assert client.selected_alpn_protocol() == chosen
    assert server.selected_alpn_protocol() == chosen


@pytest.mark.parametrize(
    ("timeout_header", "handshake_timeout"), [(30.0, 30.0), (2, 2.0), (0, None), (-1, None)]
)
def test_tls_handshake_timeout_is_the_header_timeout(
    timeout_header: float, handshake_timeout: float | None
) -> None:
    from esg.server import ssl_handshake_timeout

    config = make_config(timeout_header=timeout_header)
    assert ssl_handshake_timeout(config) == handshake_timeout


def test_ssl_encrypted_key_with_password(tls_files: dict[str, str]) -> None:
    config = make_config(
        ssl_certfile=tls_files["cert"],
        ssl_keyfile=tls_files["encrypted_key"],
        ssl_keyfile_password="s3cret",
    )
    config.load()
    assert config.ssl is not None


def test_ssl_wrong_password_is_one_line_error(
    tls_files: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        ssl_certfile=tls_files["cert"],
        ssl_keyfile=tls_files["encrypted_key"],
        ssl_keyfile_password="wrong",
    )
    assert "Could not load the TLS certificate" in load_fails(config, caplog)


def test_ssl_client_certificates(tls_files: dict[str, str]) -> None:
    config = make_config(
        ssl_certfile=tls_files["cert"],
        ssl_keyfile=tls_files["key"],
        ssl_ca_certs=tls_files["ca"],
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        ssl_ciphers="ECDHE+AESGCM",
    )
    config.load()
    assert config.ssl is not None
    assert config.ssl.verify_mode == ssl.CERT_REQUIRED
    assert config.ssl.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize("missing", ["ssl_certfile", "ssl_keyfile", "ssl_ca_certs"])
def test_missing_tls_file_is_one_line_error(
    tls_files: dict[str, str], caplog: pytest.LogCaptureFixture, tmp_path: Path, missing: str
) -> None:
    settings: dict[str, Any] = {
        "ssl_certfile": tls_files["cert"],
        "ssl_keyfile": tls_files["key"],
        "ssl_ca_certs": tls_files["ca"],
    }
    settings[missing] = str(tmp_path / "absent.pem")
    config = make_config(**settings)
    message = load_fails(config, caplog)
    assert "absent.pem" in message and "does not exist" in message


def test_keyfile_without_certfile(
    tls_files: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(ssl_keyfile=tls_files["key"])
    assert "--ssl-certfile" in load_fails(config, caplog)


# -- sockets -------------------------------------------------------------------------------


def test_bind_free_port() -> None:
    sock = make_config(host="127.0.0.1", port=0).bind_socket()
    with sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert sock.family == socket.AF_INET
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.get_inheritable()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_bind_ipv6() -> None:
    try:
        sock = make_config(host="[::1]", port=0).bind_socket()
    except SystemExit:
        pytest.skip("::1 is not configured on this machine")
    with sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockname()[0] == "::1"


def test_port_in_use_is_one_line_error(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(port=port)
        with pytest.raises(SystemExit) as info:
            config.bind_socket()
    assert info.value.code == 1
    assert error_messages(caplog) == [
        f"[Errno 98] Could not bind to 127.0.0.1:{port}: address already in use"
    ]


@pytest.fixture
def uds_path() -> Iterator[str]:
    # AF_UNIX paths are limited to ~108 bytes, so keep the directory short.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="esg-") as directory:
        yield os.path.join(directory, "esg.sock")


def test_bind_uds(uds_path: str) -> None:
    with make_config(uds=uds_path).bind_socket() as sock:
        assert sock.family == socket.AF_UNIX
        assert sock.getsockname() == uds_path
        assert stat.S_ISSOCK(os.stat(uds_path).st_mode)
        assert stat.S_IMODE(os.stat(uds_path).st_mode) == 0o666
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(uds_path)  # already listening
        probe.close()
        assert os.stat(uds_path).st_mode & 0o777 == 0o666


def test_bind_uds_removes_stale_socket_file(uds_path: str) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(uds_path)
    stale.close()  # the file stays behind, as after a crash
    assert os.path.exists(uds_path)
    with make_config(uds=uds_path).bind_socket() as sock:
        sock.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(uds_path)


def test_bind_uds_refuses_a_live_socket(uds_path: str, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(uds_path)
        live.listen()
        with pytest.raises(SystemExit):
            make_config(uds=uds_path).bind_socket()
        assert os.path.exists(uds_path)
    [message] = error_messages(caplog)
    assert "address already in use" in message


def test_bind_uds_never_deletes_a_regular_file(
    uds_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    Path(uds_path).write_text("precious")
    with pytest.raises(SystemExit):
        make_config(uds=uds_path).bind_socket()
    assert Path(uds_path).read_text() == "precious"
    assert "not a socket" in error_messages(caplog)[0]


def test_bind_fd_uses_a_duplicate() -> None:
    with socket.socket() as original:
        original.bind(("127.0.0.1", 0))
        sock = make_config(fd=original.fileno()).bind_socket()
        assert sock.fileno() != original.fileno()
        assert sock.family == socket.AF_INET
        assert sock.getsockname() == original.getsockname()
        sock.close()
        assert original.getsockname()[1] > 0  # still open


def test_bind_bad_fd_is_one_line_error(caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryFile() as not_a_socket, pytest.raises(SystemExit):
        make_config(fd=not_a_socket.fileno()).bind_socket()
    assert "as a socket" in error_messages(caplog)[0]


# -- event loop ----------------------------------------------------------------------------


@pytest.fixture
def restore_loop_policy() -> Iterator[None]:
    yield
    asyncio.set_event_loop_policy(None)


@pytest.mark.usefixtures("restore_loop_policy")
def test_setup_event_loop_asyncio() -> None:
    make_config(loop="asyncio").setup_event_loop()
    policy = asyncio.get_event_loop_policy()
    assert type(policy) is asyncio.DefaultEventLoopPolicy


@pytest.mark.usefixtures("restore_loop_policy")
@pytest.mark.parametrize("loop", ["auto", "uvloop"])
def test_setup_event_loop_uvloop(loop: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    make_config(loop=loop).setup_event_loop()
    assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)


@pytest.mark.usefixtures("restore_loop_policy")
def test_setup_event_loop_none_leaves_the_policy_alone() -> None:
    policy = asyncio.DefaultEventLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    make_config(loop="none").setup_event_loop()
    assert asyncio.get_event_loop_policy() is policy


def test_uvloop_missing_is_one_line_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    config = make_config(loop="uvloop")
    with pytest.raises(SystemExit):
        config.setup_event_loop()
    assert "uvloop" in error_messages(caplog)[0]
    assert make_config(loop="auto").loop_factory() is None


# -- settings written for uvicorn ------------------------------------------------------------


def warning_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_host_none_binds_every_interface_on_one_port() -> None:
    sockets = make_config(host=None, port=0).bind_sockets()
    try:
        families = [sock.family for sock in sockets]
        assert families[0] == socket.AF_INET
        assert sockets[0].getsockname()[0] == "0.0.0.0"
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1 and ports != {0}  # port 0: the later sockets share the first's
        for sock in sockets:
            assert sock.get_inheritable()
            if sock.family == socket.AF_INET6:
                assert sock.getsockname()[0] == "::"
                # IPv6 only: IPv4 clients come in through the IPv4 socket, as plain addresses.
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        if socket.has_ipv6:
            assert socket.AF_INET6 in families
    finally:
        for sock in sockets:
            sock.close()


def test_host_none_bind_socket_points_to_bind_sockets() -> None:
    with pytest.raises(ValueError, match="bind_sockets"):
        make_config(host=None, port=0).bind_socket()


def test_host_none_port_in_use_is_one_line_error(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit):
            make_config(host=None, port=port).bind_sockets()
    assert error_messages(caplog) == [
        f"[Errno 98] Could not bind to 0.0.0.0:{port}: address already in use"
    ]


class CustomProtocol:
    pass


@pytest.mark.parametrize(
    ("http", "shown"),
    [("h11", "h11"), ("httptools", "httptools"), (CustomProtocol, "CustomProtocol")],
)
def test_http_other_than_auto_is_one_warning(
    caplog: pytest.LogCaptureFixture, http: Any, shown: str
) -> None:
    config = make_config(http=http)
    assert config.http is http
    assert warning_messages(caplog) == [
        f"--http {shown} is ignored: esg has a single HTTP/1.1 implementation, its own parser."
    ]


def test_http_auto_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    make_config(http="auto")
    assert warning_messages(caplog) == []


def test_h11_max_incomplete_event_size_is_the_head_limit(caplog: pytest.LogCaptureFixture) -> None:
    assert make_config().limit_request_head == 65536
    assert make_config(h11_max_incomplete_event_size=16384).limit_request_head == 16384
    assert warning_messages(caplog) == []
    assert make_config(h11_max_incomplete_event_size=100_000).limit_request_head == 65536
    [warning] = warning_messages(caplog)
    assert "heads stay limited to 65536 bytes" in warning


def test_h11_max_incomplete_event_size_below_one_is_one_line_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(SystemExit):
        make_config(h11_max_incomplete_event_size=0)
    assert error_messages(caplog) == [
        "--h11-max-incomplete-event-size must be at least 1 byte; got 0"
    ]


def test_notify_settings_are_kept() -> None:
    async def heartbeat() -> None:
        pass

    assert (make_config().timeout_notify, make_config().callback_notify) == (30, None)
    config = make_config(timeout_notify=2, callback_notify=heartbeat)
    assert (config.timeout_notify, config.callback_notify) == (2, heartbeat)


def uvicorn_dict_config() -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "UV %(levelprefix)s %(message)s",
            },
            "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": "UVA %(status_code)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def test_uvicorn_log_config_dict_configures_esg_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No "disable_existing_loggers": False, as in many hand-written configs: the esg loggers
    # that take the uvicorn loggers' settings are switched back on.
    Config(asgi3_app, log_config=uvicorn_dict_config(), use_colors=False)
    logging.getLogger("esg.error").info("from uvicorn's config")
    logging.getLogger("esg.access").info('%s - "%s %s HTTP/%s" %d', "c", "GET", "/", "1.1", 204)
    assert capsys.readouterr().out == "UV INFO:     from uvicorn's config\nUVA 204 No Content\n"
    assert logging.getLogger("esg.access").propagate is False


def test_uvicorn_log_config_keeps_the_log_level_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Config(asgi3_app, log_config=uvicorn_dict_config(), log_level="warning", use_colors=False)
    logging.getLogger("esg.error").info("hidden")
    logging.getLogger("esg.error").warning("shown")
    assert capsys.readouterr().out == "UV WARNING:  shown\n"


@pytest.mark.parametrize(
    ("setting", "value", "option"),
    [
        ("http2_max_concurrent_streams", 0, "--http2-max-concurrent-streams"),
        ("http2_initial_stream_window_size", 1 << 31, "--http2-initial-stream-window-size"),
        ("http2_initial_connection_window_size", 1000, "--http2-initial-connection-window-size"),
        ("http2_max_frame_size", 1000, "--http2-max-frame-size"),
        ("http2_max_header_list_size", 0, "--http2-max-header-list-size"),
        ("http2_keep_alive_interval", -1.0, "--http2-keep-alive-interval"),
    ],
)
def test_bad_http2_settings_fail_in_one_line(
    caplog: pytest.LogCaptureFixture, setting: str, value: float, option: str
) -> None:
    assert option in load_fails(make_config(**{setting: value}), caplog)
