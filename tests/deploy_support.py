"""What the deployment files (deploy/compose, deploy/k8s) are checked against: the environment variables the code
reads, which of them carry secrets, and the HTTP port of each service — all taken from the code, not listed here.

Environment names come from every pydantic-settings class in ``infra/settings.py`` and ``services/**/settings.py``
(its ``env_prefix`` plus the field name, or the field's validation aliases) and from the variables the code reads
directly (``os.environ[...]``, ``os.environ.get(...)``, ``_require_env(...)``, the role password variables and the
gateway's database URL variable).
"""

from __future__ import annotations

import importlib
import re
import typing
from functools import cache
from pathlib import Path

from pydantic import AliasChoices, SecretStr
from pydantic_settings import BaseSettings

from infra.db.roles import GATEWAY_URL_ENV, PASSWORD_ENV
from infra.settings import HttpSettings
from karya.services import SERVICES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CODE_DIRS = ("infra", "services", "karya")
_DIRECT = re.compile(r"""(?:os\.environ(?:\.get)?\s*[\[(]|_require_env\()\s*["']([A-Z][A-Z0-9_]*)["']""")
URLS_WITH_PASSWORDS = frozenset(
    {"DATABASE_URL", "KARYA_DB_URL", GATEWAY_URL_ENV, "KARYA_MIGRATOR_URL", "KARYA_AUDITOR_URL", "KARYA_DB_ADMIN_URL"}
)
"""Variables whose value is a database URL with a role's password in it."""


def _settings_modules() -> list[str]:
    paths = [ROOT / "infra" / "settings.py", *sorted((ROOT / "services").glob("**/settings.py"))]
    return [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in paths]


def _settings_classes() -> list[type[BaseSettings]]:
    found: list[type[BaseSettings]] = []
    for name in _settings_modules():
        module = importlib.import_module(name)
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == name
        ]
    return found


def _field_envs(cls: type[BaseSettings]) -> dict[str, bool]:
    """Env name → whether it holds a secret (a ``SecretStr`` field), for one settings class."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    out: dict[str, bool] = {}
    for field_name, info in cls.model_fields.items():
        secret = SecretStr in {info.annotation, *typing.get_args(info.annotation)}
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):  # upper-case choices are env names, others the field's own name
            names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        else:
            names = [(prefix + field_name).upper()]
        out.update(dict.fromkeys(names, secret))
    return out


@cache
def settings_envs() -> dict[str, bool]:
    """Every environment variable the code reads → whether its value is a secret."""
    out: dict[str, bool] = {}
    for cls in _settings_classes():
        for env, secret in _field_envs(cls).items():
            out[env] = out.get(env, False) or secret  # a secret in any class that reads it
    for directory in CODE_DIRS:
        for path in (ROOT / directory).rglob("*.py"):
            for env in _DIRECT.findall(path.read_text()):
                out.setdefault(env, False)
    out.update(dict.fromkeys(PASSWORD_ENV.values(), True))
    out.update(dict.fromkeys(URLS_WITH_PASSWORDS, True))
    return out


def required_gateway_secrets() -> set[str]:
    """The variables without which the gateway refuses to start."""
    from services.gateway.settings import REQUIRED_SECRETS, env_name

    return {env_name(f) for f in REQUIRED_SECRETS}


def service_ports() -> dict[str, int]:
    """Service name → the HTTP port it listens on by default (/healthz, /readyz, /metrics)."""
    return {name: int(HttpSettings.model_fields[f"{name}_port"].default) for name in SERVICES}
