"""The production profile: with ``env: production`` the server refuses to start on secrets
anyone could know.

A secret is refused when it is the repository's published development default, shorter than
``MIN_SECRET_CHARS``, or one of a few well-known placeholders (``change-me``...). Desk passwords
must be argon2 hashes (``ivr secrets hash``): no plain password is kept in production settings.
Each problem names the setting and the environment variable that sets it, so an operator can fix
them all in one go. In development nothing is
checked (``ivr secrets`` prints the local logins).
"""

from __future__ import annotations

from pydantic import SecretStr

from ivr.core.config import Settings

MIN_SECRET_CHARS = 12
PLACEHOLDERS = ("change-me", "changeme", "password", "secret", "123456", "admin")


def _env_name(path: str) -> str:
    return "IVR_" + path.upper().replace(".", "__")


def _weak(value: SecretStr | None) -> str | None:
    """Why a secret is weak, or None."""
    text = value.get_secret_value() if value is not None else ""
    if not text:
        return "is empty"
    if "dev-secret" in text or "-dev-" in text:
        return "is the published development default"
    if len(text) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    if any(p in text.lower() for p in PLACEHOLDERS):
        return "is a placeholder"
    return None


def production_problems(settings: Settings) -> list[str]:
    """Every secret that may not be used in production, one line each (empty: fine)."""
    a, h = settings.asterisk, settings.handoff
    problems: list[str] = []
    for path, value in (("asterisk.ari_password", a.ari_password),
                        ("asterisk.ami_secret", a.ami_secret),
                        ("asterisk.caller_password", a.caller_password),
                        ("asterisk.agent_password", a.agent_password)):
        if (why := _weak(value)) is not None:
            problems.append(f"{path} {why}: set {_env_name(path)}")
    if (why := _weak(settings.web.metrics_token)) is not None:
        problems.append(f"web.metrics_token {why}: set IVR_WEB__METRICS_TOKEN")
    for name, value in sorted(h.agent_passwords.items()):
        if not value.get_secret_value().startswith("$argon2"):
            problems.append(f"handoff.agent_passwords.{name} is not an argon2 hash: make one "
                            "with `ivr secrets hash` and set IVR_HANDOFF__AGENT_PASSWORDS "
                            f"(JSON: {{\"{name}\": \"$argon2id$...\"}})")
    return problems


class InsecureSettings(RuntimeError):
    """The production profile found secrets anyone could know."""


def check_production(settings: Settings) -> None:
    """Raise ``InsecureSettings`` naming every problem when ``env`` is production."""
    if settings.env != "production":
        return
    problems = production_problems(settings)
    if problems:
        raise InsecureSettings("refusing to start in production:\n  " + "\n  ".join(problems))
