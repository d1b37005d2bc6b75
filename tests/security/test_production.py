"""The production profile (security issue, item 1): with ``env: production`` the server
refuses to start while any secret is a published default or weak, naming each and how to set
it; the docker-compose file gives no secret a working default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.core.config import load_settings
from ivr.core.production import InsecureSettings, check_production, production_problems
from ivr.web.auth import hash_password
from tests.paths import REPO

STRONG = "Kq8v-3nW7x-Lp2z"


def test_development_starts_with_the_published_logins(tmp_path: Path) -> None:
    check_production(load_settings(home=tmp_path))  # nothing checked in development


def test_production_refuses_every_default_and_names_how_to_set_it(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, env="production")
    with pytest.raises(InsecureSettings) as err:
        check_production(settings)
    text = str(err.value)
    for setting in ("asterisk.ari_password", "asterisk.ami_secret", "asterisk.caller_password",
                    "asterisk.agent_password", "handoff.agent_passwords.agent1",
                    "handoff.agent_passwords.ops1", "web.metrics_token"):
        assert setting in text, setting
    assert "IVR_ASTERISK__ARI_PASSWORD" in text and "IVR_WEB__METRICS_TOKEN" in text
    assert "ivr secrets hash" in text  # how to make a password hash


def test_production_starts_with_strong_secrets_only(tmp_path: Path) -> None:
    strong = {
        "asterisk": {"ari_password": STRONG + "a", "ami_secret": STRONG + "b",
                     "caller_password": STRONG + "c", "agent_password": STRONG + "d"},
        "handoff": {"agent_passwords": {"agent1": hash_password(STRONG + "e")}},
        "web": {"metrics_token": STRONG * 2},
    }
    assert production_problems(load_settings(home=tmp_path, env="production", **strong)) == []
    # a strong password in plain text is refused too: production keeps only hashes
    plain = {**strong, "handoff": {"agent_passwords": {"agent1": STRONG + "e"}}}
    (problem,) = production_problems(load_settings(home=tmp_path, env="production", **plain))
    assert "agent1" in problem and "argon2" in problem
    weak = {**strong, "web": {"metrics_token": "change-me-please"}}
    (problem,) = production_problems(load_settings(home=tmp_path, env="production", **weak))
    assert "metrics_token" in problem and "placeholder" in problem


def test_compose_gives_no_secret_a_default() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    refs = re.findall(r"\$\{(\w+)(?:(:?-)([^}]*)|:?\?[^}]*)?\}", compose)
    secrets = [(name, sep, default) for name, sep, default in refs
               if re.search(r"PASSWORD|SECRET|KEY|TOKEN", name)]
    assert len(secrets) >= 8, "the compose file takes its secrets from .env"
    defaulted = [name for name, _, default in secrets if default.strip()]
    assert not defaulted, f"secrets with a working default in docker-compose.yml: {defaulted}"
    optional = {name for name, sep, _ in secrets if sep}
    assert optional <= {"LLM_API_KEY"}, optional  # everything else is required
    assert '"127.0.0.1:8700:8700"' in compose  # the web only behind a proxy on the host
