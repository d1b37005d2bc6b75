"""The one settings object.

Built once at start (``load_settings``) from, in rising priority: defaults, an optional YAML file,
environment variables (``IVR_`` prefix, ``__`` for nesting, plus the conventional ``DATABASE_URL``
and ``REDIS_URL``). It is passed down; no other module reads the environment.
"""

from __future__ import annotations

import os
import secrets
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
    """Speech recognition (asr/): the back end, its decoding, and the endpointer."""

    # "none": keys only (no caller audio is tapped); "funasr-ws" is an alias of "funasr_ws"
    backend: Literal["whisper", "funasr_ws", "funasr-ws", "funasr", "paddlespeech", "none"] = (
        "whisper"
    )
    model_dir: Path = Path("models")  # the Whisper base folder is assembled in here
    # decodes at once (the rest wait their turn: bounded) x CPU threads each. Measured on the
    # 2-core machine: 1 thread x 2 workers gives the same single-call speed as 2 x 1 (RTF 0.21
    # vs 0.24) and 1.5x the throughput with several calls talking (5.6x vs 3.8x real time)
    threads: int = Field(default=1, ge=1)
    workers: int = Field(default=2, ge=1)
    # Whisper decoding. Measured on the shared zh set (2-core CPU): beam 1, 2, 3 and 5 cost the
    # same (CPU RTF 0.21-0.25) and score within noise (8 kHz CER 0.17-0.26 on 42 characters,
    # no prompt); 5 scored best there
    language: str = "zh"
    beam_size: int = Field(default=5, ge=1, le=10)
    # context biasing: a Simplified-Chinese lead-in in the hotline's words (it also nudges
    # Whisper to answer in Simplified); each stream may add its own hints (the words a caller is
    # likely to say at that step). Measured at 8 kHz: on 12 hotline sentences (Kokoro voice) CER
    # 0.237 without it, 0.158 with it; on the general shared set 0.167 without, 0.238 with
    initial_prompt: str = (
        "以下是普通话的客服电话录音，关于加油卡、余额、挂失、发票、燃气、充值、燃气表。"
    )
    # re-decode the growing utterance for partial results at most this often (0: off, CPU economy)
    partial_interval_s: float = Field(default=0.0, ge=0.0)
    # endpointing: Silero VAD (from the faster-whisper wheel) or an energy detector fallback
    vad: Literal["silero", "energy"] = "silero"
    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    start_ms: int = Field(default=200, ge=60, le=1000)  # speech that starts an utterance
    end_silence_ms: int = Field(default=700, ge=200, le=2000)  # silence that ends it
    max_utterance_s: float = Field(default=13.0, gt=1.0, le=30.0)
    funasr_model_path: Path | None = None
    # FunASR runtime websocket server, e.g. ws://127.0.0.1:10095 (wss:// for its TLS default)
    funasr_ws_url: str | None = None
    funasr_ws_mode: Literal["2pass", "offline", "online"] = "2pass"
    funasr_ws_verify_tls: bool = True  # False for the runtime's self-signed certificate
    funasr_ws_timeout_s: float = Field(default=5.0, gt=0.0)  # connect, and final after the end
    funasr_hotword_weight: int = Field(default=20, ge=1, le=100)


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
    # how often a server checks the database for bots published by another process
    bots_check_interval_s: float = 5.0


def _agent_desk_passwords() -> dict[str, SecretStr]:
    # development defaults, like the SIP passwords: set handoff.agent_passwords in production
    return {f"agent{i}": SecretStr(f"agent{i}-desk-dev-secret") for i in (1, 2, 3)}


class HandoffSettings(BaseModel):
    # business line -> dialplan extension in [ivr-queues] (each maps to an app_queue queue)
    queue_max_wait_s: int = 300
    pop_ttl_s: int = 86400  # screen pops kept in Redis
    llm_summary: bool = True  # ask the llm section's endpoint for a summary after each pop
    llm_concurrency: int = 2  # summaries asked for at once
    llm_max_pending: int = 32  # summaries waiting at most (beyond: skipped, counted)
    # agent desktop logins (agent name -> password) and the key that signs their cookies
    agent_passwords: dict[str, SecretStr] = Field(default_factory=_agent_desk_passwords)
    session_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))  # per process unless set
    session_hours: float = 12.0


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
