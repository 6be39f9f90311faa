"""Applying a logging configuration: esg's own (with ``--log-format`` and
``--access-log-format``) or the user's (``--log-config`` file, ``log_config`` dict).

A configuration written for uvicorn works unchanged: its ``uvicorn.*`` loggers are applied to
their ``esg.*`` twins and uvicorn's formatter classes are replaced by esg's, which take the same
settings and fields.  A configuration that can't be applied is a mistake the user can fix: one
line and exit 1 (``esg.user_errors.fail``).  ``Config.configure_logging()`` calls
``configure_logging()`` with its settings.
"""

from __future__ import annotations

import configparser
import copy
import json
import logging
import logging.config
import os
from typing import Any

from esg.access_format import check_access_log_format
from esg.logging import LOGGING_CONFIG, TRACE_LOG_LEVEL, DefaultFormatter, logging_config
from esg.user_errors import fail

__all__ = [
    "LOGGER_NAMES",
    "UVICORN_FORMATTER_ALIASES",
    "UVICORN_LOGGER_ALIASES",
    "LogConfig",
    "apply_log_config",
    "configure_logging",
]

LOGGER_NAMES = ("esg", "esg.error", "esg.access")
# A logging configuration written for uvicorn configures its loggers; esg's play the same parts.
UVICORN_LOGGER_ALIASES = {
    "uvicorn": "esg",
    "uvicorn.error": "esg.error",
    "uvicorn.access": "esg.access",
}
# ... and names uvicorn's formatters, whose fields (levelprefix, client_addr, request_line,
# status_code) and arguments esg's formatters share.  uvicorn is usually not installed any more.
UVICORN_FORMATTER_ALIASES = {
    "uvicorn.logging.DefaultFormatter": "esg.logging.DefaultFormatter",
    "uvicorn.logging.AccessFormatter": "esg.logging.AccessFormatter",
}

LogConfig = dict[str, Any] | str | os.PathLike[str] | None

logger = logging.getLogger("esg.error")


def configure_logging(
    log_config: LogConfig,
    *,
    log_format: str = "text",
    access_log_format: str | None = None,
    use_colors: bool | None = None,
    log_level: int | None = None,
    access_log: bool = True,
) -> None:
    """Apply ``log_config``; ``log_format`` and ``access_log_format`` choose the formatters of
    esg's own configuration (``LOGGING_CONFIG``), and are left out when the user gave one (it
    wins).  ``log_level`` sets esg's loggers' level; ``access_log=False`` silences the access
    logger."""
    logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")
    format_error = None
    try:
        check_access_log_format(access_log_format)
    except ValueError as exc:
        format_error = str(exc)
    uses_esg_config = log_config is LOGGING_CONFIG
    if uses_esg_config and format_error is None:
        log_config = logging_config(log_format, access_log_format)
    if log_config is not None:
        apply_log_config(log_config, use_colors)
    if log_level is not None:
        for name in LOGGER_NAMES:
            logging.getLogger(name).setLevel(log_level)
    if not access_log:
        access_logger = logging.getLogger("esg.access")
        access_logger.handlers.clear()
        access_logger.propagate = False
    if format_error is not None:
        fail(f"Invalid --access-log-format: {format_error}")
    if not uses_esg_config and (access_log_format or log_format != "text"):
        logger.warning(
            "--log-format and --access-log-format are not applied: the logging "
            "configuration given (--log-config, or log_config) chooses the formatters."
        )


def apply_log_config(
    log_config: dict[str, Any] | str | os.PathLike[str], colors: bool | None
) -> None:
    """Apply a logging configuration; one written for uvicorn configures esg's loggers too.

    Its ``uvicorn``, ``uvicorn.error`` and ``uvicorn.access`` loggers are applied to ``esg``,
    ``esg.error`` and ``esg.access`` (unless it configures those itself), and uvicorn's
    formatter classes are replaced by esg's, which take the same settings and fields: a
    config file kept from uvicorn then works as it did, with uvicorn uninstalled.
    """
    if isinstance(log_config, dict):
        config = _with_colors(_with_esg_formatters(log_config), colors)
        _apply_dict_config(config, "the log_config dict")
        _alias_uvicorn_loggers(_dict_logger_names(config))
        return
    path = os.fspath(log_config)
    if not os.path.isfile(path):
        fail(f'Log config file "{path}" does not exist or is not a file.')
    if path.endswith((".json", ".yaml", ".yml")):
        data = _read_json(path) if path.endswith(".json") else _read_yaml(path)
        data = _with_esg_formatters(data)
        _apply_dict_config(data, f'"{path}"')
        _alias_uvicorn_loggers(_dict_logger_names(data))
    else:
        _alias_uvicorn_loggers(_apply_ini_config(path))


def _with_esg_formatters(config: Any) -> Any:
    """``config`` (a dictConfig mapping) with uvicorn's formatter classes replaced by esg's."""
    formatters = config.get("formatters") if isinstance(config, dict) else None
    if not isinstance(formatters, dict):
        return config
    replaced = {}
    for name, formatter in formatters.items():
        if isinstance(formatter, dict):
            formatter = {
                key: _esg_formatter_name(value) if key in ("()", "class") else value
                for key, value in formatter.items()
            }
        replaced[name] = formatter
    return {**config, "formatters": replaced}


def _esg_formatter_name(value: Any) -> Any:
    return UVICORN_FORMATTER_ALIASES.get(value, value) if isinstance(value, str) else value


def _dict_logger_names(config: Any) -> set[str]:
    loggers = config.get("loggers") if isinstance(config, dict) else None
    return set(loggers) if isinstance(loggers, dict) else set()


def _alias_uvicorn_loggers(configured: set[str]) -> None:
    """Give each esg logger what the configuration set on its uvicorn twin.

    Only where the configuration doesn't name the esg logger itself (then that one wins).  The
    esg logger takes the twin's handlers, filters, level and propagation, so the hierarchy
    (``esg.error`` propagating to ``esg``'s handlers) is the one the file describes.
    """
    for uvicorn_name, esg_name in UVICORN_LOGGER_ALIASES.items():
        if uvicorn_name not in configured or esg_name in configured:
            continue
        source = logging.getLogger(uvicorn_name)
        target = logging.getLogger(esg_name)
        target.handlers[:] = source.handlers
        target.filters[:] = source.filters
        target.setLevel(source.level)
        target.propagate = source.propagate
        target.disabled = False  # disable_existing_loggers may have switched it off


def _with_colors(log_config: dict[str, Any], colors: bool | None) -> dict[str, Any]:
    """A copy of ``log_config`` whose esg formatters use ``colors`` when it is set."""
    config = copy.deepcopy(log_config)
    if colors is None:
        return config
    for formatter in config.get("formatters", {}).values():
        if isinstance(formatter, dict) and _is_esg_formatter(formatter.get("()")):
            formatter["use_colors"] = colors
    return config


def _is_esg_formatter(factory: object) -> bool:
    if isinstance(factory, str):
        return factory.startswith("esg.logging.")
    return isinstance(factory, type) and issubclass(factory, DefaultFormatter)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as exc:
        fail(f'Log config file "{path}" is not valid JSON: {exc}', exc)


def _read_yaml(path: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        fail(f'Reading "{path}" needs the PyYAML package: pip install PyYAML')
    try:
        with open(path, encoding="utf-8") as file:
            return yaml.safe_load(file)
    except yaml.YAMLError as exc:
        message = str(exc).replace("\n", " ")
        fail(f'Log config file "{path}" is not valid YAML: {message}', exc)


def _apply_dict_config(config: Any, source: str) -> None:
    if not isinstance(config, dict):
        fail(f"Logging configuration in {source} must be a mapping (dictConfig schema).")
    try:
        logging.config.dictConfig(config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        fail(f"Invalid logging configuration in {source}: {_one_line(exc)}", exc)


def _apply_ini_config(path: str) -> set[str]:
    """Apply an .ini (fileConfig) file; returns the names of the loggers it configures."""
    # Read here, as fileConfig would, to see the logger names and formatter classes first.
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        names = set()
        for key in parser.get("loggers", "keys", fallback="").split(","):
            section = f"logger_{key.strip()}"
            if parser.has_option(section, "qualname"):
                names.add(parser.get(section, "qualname", raw=True).strip())
        for section in parser.sections():
            if section.startswith("formatter_") and parser.has_option(section, "class"):
                name = parser.get(section, "class", raw=True).strip()
                parser.set(section, "class", UVICORN_FORMATTER_ALIASES.get(name, name))
        logging.config.fileConfig(parser, disable_existing_loggers=False)
    except (KeyError, ValueError, RuntimeError, ImportError, configparser.Error) as exc:
        fail(f'Invalid logging configuration in "{path}": {_one_line(exc)}', exc)
    return names


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
