"""``new_backend``: the one place that turns a config into a backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from .backend import Backend
from .backends import BACKENDS
from .errors import ConfigError


def supported_types() -> list[str]:
    """Return the backend type names ``new_backend`` accepts."""
    return list(BACKENDS)


def backend_class(type_name: str) -> type[Backend]:
    """Return the backend class for a type name; ConfigError lists the supported ones."""
    try:
        return BACKENDS[type_name]
    except KeyError:
        raise ConfigError(
            f"model.type: unknown backend {type_name!r}; supported: {', '.join(BACKENDS)}"
        ) from None


def new_backend(config: Any = None, *, session: requests.Session | None = None,
                **overrides: Any) -> Backend:
    """Build the backend a config describes.

    ``config`` may be a :class:`~pedrollm.config.Config`, a ``ModelConfig``, the dict
    of a ``model`` section, or None (the default config file, else defaults).
    Keyword ``overrides`` use the ``model`` section's field names
    (``server_url="http://127.0.0.1:8081"``, ``type="ollama"``).
    """
    from .config import Config, ModelConfig, load_config

    if config is None:
        model_cfg = load_config(overrides=overrides).model
    elif isinstance(config, Config):
        model_cfg = config.model
    elif isinstance(config, ModelConfig):
        model_cfg = config
    elif isinstance(config, Mapping):
        model_cfg = ModelConfig.from_dict(dict(config), source="new_backend()")
    else:
        raise ConfigError(
            f"new_backend: expected a Config, ModelConfig or dict, got {type(config).__name__}"
        )
    if overrides and config is not None:
        merged = {**model_cfg.to_dict(redact=False), **overrides}
        model_cfg = ModelConfig.from_dict(merged, source="new_backend()")
    return backend_class(model_cfg.type).from_config(model_cfg, session=session)
