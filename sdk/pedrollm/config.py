"""The configuration file: the ``model`` section, defaults, validation and loading.

A config file is JSON in the ``.pedrocli.json`` style::

    {
      "model": {"type": "llamacpp", "server_url": "http://localhost:8081", ...},
      "project": {...},
      "database": {...}
    }

Only ``model`` belongs to pedrollm; every other top-level section is kept untouched in
:attr:`Config.other` and written back unchanged.

This module is the one import a user needs; the work is done in four others:
:mod:`pedrollm.config_schema` (each field declared once, the one validation),
:mod:`pedrollm.config_checks` (the validators),
:mod:`pedrollm.config_files` (where :func:`load_config` looks, first match wins: the
``path`` argument, the file named by ``PEDROLLM_CONFIG``, ``.pedrocli.json`` in the
working directory, then in the home directory, else the defaults) and
:mod:`pedrollm.config_migrate` (old llama-cli configs). None of them imports this
module, so there is no import cycle.

Environment variables override the file, and ``overrides`` (command-line flags) override
both. An empty variable counts as unset. docs/configuration.md has the full table of
fields; the variables and the fields they set (generated from the schema):

"""

from __future__ import annotations

from .config_checks import BACKEND_TYPES, DEFAULT_SERVER_URLS
from .config_files import (
    CONFIG_FILENAME,
    CONFIG_PATH_ENV,
    find_config_file,
    load_config,
    read_config_file,
)
from .config_migrate import Migration, migrate_config, write_migrated
from .config_schema import ENV_VARS, LEGACY_FIELDS, Config, ModelConfig, env_vars_text

__doc__ = (
    (__doc__ or "")
    + env_vars_text()
    + f"- ``{CONFIG_PATH_ENV}``: the config file to read (see above)\n\n"
    "Fields of the old llama-cli configs (``llamacpp_path``, ``model_path``, ``threads``,\n"
    "``n_gpu_layers``, ``enable_grammar``) still load, each with a ``DeprecationWarning``\n"
    "saying what replaces it; :func:`migrate_config` rewrites such a file.\n"
)

__all__ = [
    "BACKEND_TYPES",
    "CONFIG_FILENAME",
    "CONFIG_PATH_ENV",
    "DEFAULT_SERVER_URLS",
    "ENV_VARS",
    "LEGACY_FIELDS",
    "Config",
    "Migration",
    "ModelConfig",
    "find_config_file",
    "load_config",
    "migrate_config",
    "read_config_file",
    "write_migrated",
]
