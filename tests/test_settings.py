"""``ConnectionSettings`` is what connections read of the settings, for the real and the fake.

mypy checks ``Config`` against the Protocol (``Server.startup`` hands it over as one); the
fake transport's ``FakeConfig`` is held to it here: a setting a connection starts to read must
be declared, and then the fake must have it too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import fake_transport as fake

from esg.config import Config
from esg.settings import ConnectionSettings

MEMBERS = {name for name in dir(ConnectionSettings) if not name.startswith("_")}


async def app(scope: Any, receive: Any, send: Any) -> None:
    pass


def test_the_fake_config_has_exactly_the_declared_settings() -> None:
    assert {field.name for field in dataclasses.fields(fake.FakeConfig)} == MEMBERS


def test_a_loaded_config_has_every_declared_setting() -> None:
    config = Config(app, log_config=None, lifespan="off")
    config.load()
    missing = [name for name in sorted(MEMBERS) if not hasattr(config, name)]
    assert not missing


def test_the_declared_settings_are_read_only() -> None:
    # Connections never change a setting; properties also let Config's int timeouts pass for
    # the float the connection reads.
    for name in MEMBERS:
        assert isinstance(getattr(ConnectionSettings, name), property), name
