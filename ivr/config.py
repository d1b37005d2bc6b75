"""The one settings object.

Built once at start (``load_settings``) from, in rising priority: defaults, an optional YAML file,
environment variables (``IVR_`` prefix, ``__`` for nesting, plus the conventional ``DATABASE_URL``
and ``REDIS_URL``). It is passed down; no other module reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".cache" / "ivr"


class AsteriskSettings(BaseModel):
    """The Asterisk we talk to, and (in development) the one we run."""

    managed: bool = True  # run a private Asterisk from the Debian sid root (development, CI)
    # several managed Asterisks may share one root (dev server and tests): each instance has its
    # own /etc/asterisk-<instance>, run, spool, log and astdb directories inside the root
    instance: str = "ivr"
    root_dir: Path = Path("sid-root")
    run_dir: Path = Path("asterisk-run")
    bind_host: str = "127.0.0.1"  # SIP transport address (and where the test caller dials)
    http_bind: str = "127.0.0.1"  # ARI/HTTP listen address inside Asterisk
    ami_bind: str = "127.0.0.1"
    ami_permit: str = "127.0.0.1/255.255.255.255"  # AMI clients allowed (network/mask)
    sip_port: int = 5060
    rtp_start: int = 10000
    rtp_end: int = 10999
    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "ivr"
    ari_password: SecretStr = SecretStr("ivr-dev-ari-secret")
    ari_app: str = "ivr"
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "ivr"
    ami_secret: SecretStr = SecretStr("ivr-dev-ami-secret")
    # where Asterisk reads our rendered prompts: sound:ivr/<name>
    sounds_subdir: str = "ivr"
    caller_password: SecretStr = SecretStr("caller-dev-secret")
    agent_password: SecretStr = SecretStr("agent-dev-secret")
    start_timeout_s: float = 60.0
    debian_mirror: str = "http://deb.debian.org/debian"


class DatabaseSettings(BaseModel):
    url: SecretStr | None = None  # DATABASE_URL; None -> embedded pgserver
    embedded_dir: Path = Path("pgdata")


class RedisSettings(BaseModel):
    url: SecretStr | None = None  # REDIS_URL; None -> private redis-server on a unix socket
    embedded_dir: Path = Path("redis")


class TTSSettings(BaseModel):
    backend: Literal["kokoro", "espeak", "openai"] = "kokoro"
    fallback: Literal["espeak", "none"] = "espeak"
    voice: str = "jm_kumo"
    speed: float = (
        0.9  # measured: Whisper base reads jm_kumo back with CER 0.235 at 0.9, 0.28 at 1.0
    )
    cache_dir: Path = Path("prompts")
    # operator recordings <prompt_id>.wav override synthesised prompts (relative: beside cache_dir)
    recordings_dir: Path = Path("recordings")
    model_dir: Path = Path("models")
    espeak_voice: str = "cmn-latn-pinyin"
    espeak_rate: int = 150
    openai_model: str = "tts-1"
    openai_voice: str = "alloy"


class ASRSettings(BaseModel):
    backend: Literal["whisper", "funasr", "funasr-ws", "paddlespeech"] = "whisper"
    model_dir: Path = Path("models")
    funasr_model_path: Path | None = None
    funasr_ws_url: str | None = None


class LLMSettings(BaseModel):
    base_url: str | None = None
    api_key: SecretStr = SecretStr("")
    model: str = "gpt-4o-mini"
    embedding_model: str = "text-embedding-3-small"
    timeout_s: float = 8.0


class DialogSettings(BaseModel):
    no_input_timeout_s: float = 5.0
    max_reprompts: int = 2
    dtmf_interdigit_timeout_s: float = 3.0


class HandoffSettings(BaseModel):
    # business line -> dialplan extension in [ivr-queues] (each maps to an app_queue queue)
    queue_max_wait_s: int = 300


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8700


class AGISettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 4573


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IVR_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    home: Path = Field(default_factory=_default_home)
    asterisk: AsteriskSettings = Field(default_factory=AsteriskSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    asr: ASRSettings = Field(default_factory=ASRSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    dialog: DialogSettings = Field(default_factory=DialogSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    agi: AGISettings = Field(default_factory=AGISettings)
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "IVR_DATABASE_URL")
    )
    redis_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "IVR_REDIS_URL")
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env beats init (YAML values are passed as init kwargs)
        return (env_settings, init_settings, dotenv_settings, file_secret_settings)

    def model_post_init(self, __context: Any) -> None:
        # relative directories live under ``home`` (IVR_HOME), so one setting moves them all
        for section in (self.asterisk, self.database, self.redis, self.tts, self.asr):
            for name, value in list(section.__dict__.items()):
                if isinstance(value, Path) and not value.is_absolute():
                    setattr(section, name, self.home / value)
        if self.database_url is not None and self.database.url is None:
            self.database.url = self.database_url
        if self.redis_url is not None and self.redis.url is None:
            self.redis.url = self.redis_url

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain data, secrets shown as '********'."""
        data = self.model_dump(mode="json", exclude={"database_url", "redis_url"})
        return _mask(data, self)


def _mask(data: Any, model: Any) -> Any:
    if isinstance(model, BaseModel):
        out: dict[str, Any] = {}
        for name in data:
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                out[name] = "********" if value.get_secret_value() else ""
            else:
                out[name] = _mask(data[name], value)
        return out
    return data


class ConfigError(ValueError):
    """A settings file that cannot be used."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings. ``config_file`` defaults to $IVR_CONFIG when set."""
    path = config_file or os.environ.get("IVR_CONFIG")
    values: dict[str, Any] = {}
    if path:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read settings file {p}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"settings file {p} must hold a mapping at top level")
        values.update(loaded)
    values.update(overrides)
    return Settings(**values)
