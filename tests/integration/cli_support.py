"""A ``karya`` command's root as a test builds it (``obj=`` of ``CliRunner.invoke``), instead of pointing the
command at a database or a topic prefix through the environment."""

from __future__ import annotations

from infra.cli_root import CliRoot, Role
from infra.db.roles import RoleUrls
from infra.settings import KafkaSettings
from karya.services import SERVICES


def cli_root(urls: RoleUrls, prefix: str = "", roles: tuple[Role, ...] = ("service", "gateway", "auditor")) -> CliRoot:
    """The root of one invocation on ``urls``' database as ``roles`` (each role its own user), the topics under
    ``prefix`` (this deployment's brokers otherwise) and the services' topology."""
    return CliRoot(KafkaSettings(topic_prefix=prefix), {role: getattr(urls, role) for role in roles}, SERVICES)
