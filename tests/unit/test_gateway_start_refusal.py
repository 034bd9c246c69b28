"""`karya serve gateway` without its secrets refuses once, naming every missing variable (issue 18, item 7).

Before, the webhook secrets were named first and the API clients' credentials (``KARYA_TOKOPEDIA_API_TOKEN``,
``KARYA_TOKEN_KEY``, the Blibli API client id and key) only on the next attempt. The process is started as an
operator starts it, in an environment with nothing else set; it stops before it connects anywhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from services.gateway.clients.settings import REQUIRED
from services.gateway.settings import REQUIRED_SECRETS, env_name

ROOT = Path(__file__).resolve().parents[2]
EVERY_SECRET = {env_name(f) for f in REQUIRED_SECRETS} | set(REQUIRED.values())


def _serve_gateway(extra: dict[str, str]) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "KARYA_GATEWAY_DATABASE_URL": "postgresql+asyncpg://nobody:none@127.0.0.1:1/none",
        "DATABASE_URL": "postgresql+asyncpg://nobody:none@127.0.0.1:1/none",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-m", "karya.cli", "serve", "gateway", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    return done.stdout + done.stderr


def test_one_refusal_names_every_missing_secret() -> None:
    assert {"KARYA_TOKOPEDIA_API_TOKEN", "KARYA_TOKEN_KEY", "KARYA_BLIBLI_API_CLIENT_ID"} <= EVERY_SECRET
    lines = [line for line in _serve_gateway({}).splitlines() if "refuses to start" in line]
    assert len(lines) == 1, lines
    named = set(re.findall(r"KARYA_[A-Z_]+", lines[0]))
    assert named == EVERY_SECRET


def test_with_the_webhook_secrets_set_the_clients_missing_credentials_are_all_named() -> None:
    webhook = {env_name(f): f"value-{f}-0123456789" for f in REQUIRED_SECRETS} | {"KARYA_SHOPEE_PARTNER_ID": "2000001"}
    output = _serve_gateway(webhook)
    assert "refuses to start" in output
    for name in set(REQUIRED.values()) - set(webhook):
        assert name in output, name
    for name in webhook:
        assert name not in output, name  # set, and strong enough
