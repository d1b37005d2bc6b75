"""The start-up parts of the stack, one typed function each; ``ivr.app.build`` composes them.

Each part is an aiohttp cleanup context (``Part``): it starts its piece, stores it under its
typed key (``ivr.web.keys``), yields while the stack runs, and stops it. A part reads only the
keys of the parts before it, so a command needing less than the whole server composes fewer
parts in the same order: ``ivr up`` and the benches take them all (``build.stack_parts``),
``ivr campaigns run`` takes storage, prompts, speech, the call assembly and a dialer
(``build.dialer_parts``). Order of start (reverse order of stop): Asterisk (when managed),
PostgreSQL with migrations and Redis, the handoff service, the bots, TTS and prompts, ASR, the
call assembly, then the transports that take calls (ARI, FastAGI), the survey dialer and the
daily retention purge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

from aiohttp import web

from asr.base import ASRError, Recognizer
from asr.factory import build_recognizer
from asterisk.runner import ManagedAsterisk
from campaigns.callbacks import CallbackFeeder, pop_agent_lookup
from campaigns.carrier import Transcriber
from campaigns.dialer import Dialer
from campaigns.service import survey_originator
from dialog.backends.demo import demo_backends
from dialog.backends.locks import LockPolicy
from dialog.backends.seed import seed_demo
from dialog.business import build_actions
from dialog.callback import QUEUE_ANNOUNCE
from dialog.engine import DialogEngine
from dialog.lifecycle.repository import BotVersions
from dialog.lifecycle.store import CatalogStore
from dialog.nlu.llmchoice import intent_adviser
from dialog.prompts import P, fixed_prompts
from handoff.callback import callback_policy
from handoff.embeddings import intent_embedder
from handoff.live import LiveTranscripts
from handoff.service import HandoffService
from ivr.app.retention import run_daily
from ivr.calls.agi_server import AgiServer
from ivr.calls.ears import tap_listener
from ivr.calls.factory import CallFactory
from ivr.calls.failover import box_keeper
from ivr.calls.journal import CallJournal
from ivr.calls.listener import Listener
from ivr.calls.manager import CallManager
from ivr.calls.queue_exit import QUEUE_ANNOUNCE_NAME
from ivr.calls.state import CallStateStore
from ivr.core.config import Settings
from ivr.core.looplag import LoopLag
from ivr.core.sounds import DIALPLAN_PROMPTS
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import create_engine, session_factory
from ivr.core.storage.migrate import upgrade
from ivr.core.storage.postgres import EmbeddedPostgres, database_url
from ivr.core.storage.redis_server import EmbeddedRedis, connect_redis
from ivr.telephony.ami import AmiClient
from ivr.telephony.ari.client import AriClient
from ivr.web.keys import (
    ACTIONS,
    AGI,
    AMI,
    ARI,
    ASTERISK,
    BOT_STORE,
    BOXES,
    CALL_FACTORY,
    CALLS,
    CATALOG,
    DB_URL,
    DIALER,
    HANDOFF,
    JOURNAL,
    LOOP_LAG,
    PROMPT_CACHE,
    RECOGNIZER,
    REDIS,
    REPO,
    SESSIONS,
)
from tts.base import TTSError
from tts.cache import PromptCache
from tts.factory import build_synthesizer

log = logging.getLogger("ivr.app.parts")

Progress = Callable[[str], None]
Part = Callable[[web.Application], AsyncIterator[None]]


def asterisk_part(settings: Settings, say: Progress) -> Part:
    """The managed Asterisk (the Debian sid root): started and stopped with the stack."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        ast = ManagedAsterisk(settings, progress=say)
        await ast.start()
        app[ASTERISK] = ast
        say(f"Asterisk 22 ready in {time.monotonic() - t:.1f} s (SIP {settings.asterisk.bind_host}"
            f":{settings.asterisk.sip_port}, ARI {settings.asterisk.ari_url})")
        yield
        await ast.stop()
    return part


def storage_part(settings: Settings, say: Progress, *, redis: bool = True) -> Part:
    """PostgreSQL (``DATABASE_URL``, else embedded) migrated to head; Redis (``REDIS_URL``,
    else embedded) unless ``redis`` is off."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        pg: EmbeddedPostgres | None = None
        url = database_url(settings)
        if url is None:
            pg = EmbeddedPostgres(settings.database)
            url = await asyncio.to_thread(pg.start)
        await upgrade(url)
        engine = create_engine(url)
        app[DB_URL] = url
        app[SESSIONS] = session_factory(engine)
        app[REPO] = CallRepository(app[SESSIONS])
        say(f"PostgreSQL ready in {time.monotonic() - t:.1f} s "
            f"({'embedded' if pg else 'DATABASE_URL'}, migrations applied)")
        embedded_redis: EmbeddedRedis | None = None
        if redis:
            t = time.monotonic()
            if settings.redis.url is None:
                embedded_redis = EmbeddedRedis(settings.redis)
                await embedded_redis.start()
                redis_url = embedded_redis.url
            else:
                redis_url = settings.redis.url.get_secret_value()
            app[REDIS] = await connect_redis(redis_url)
            say(f"Redis ready in {time.monotonic() - t:.1f} s "
                f"({'embedded' if embedded_redis else 'REDIS_URL'})")
        yield
        if redis:
            await app[REDIS].aclose()
        if embedded_redis is not None:
            await embedded_redis.stop()
        await engine.dispose()
        if pg is not None:
            await asyncio.to_thread(pg.stop)
    return part


def handoff_part(settings: Settings, say: Progress, *, ami: bool = True) -> Part:
    """AMI (queue events) and the handoff service (screen pops, summaries, live words);
    ``ami=False``: web chats only (their queue events come from the chat desk)."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        a = settings.asterisk
        client: AmiClient | None = None
        if ami:
            client = AmiClient(a)
            try:
                await client.connect()
            except OSError as exc:  # panoramisk keeps trying by itself
                log.warning("AMI not reachable yet at %s:%s (%s)", a.ami_host, a.ami_port, exc)
            app[AMI] = client
        service = HandoffService(app[REDIS], settings.handoff, settings.llm, ami=client)
        await service.start()
        app[HANDOFF] = service
        say(f"Handoff ready (screen pops on AgentCalled, LLM summary "
            f"{'on' if service.summarizer.enabled else 'off'}; desktop on /agent)")
        yield
        await service.close()
        if client is not None:
            client.close()
    return part


def bots_part(settings: Settings, say: Progress) -> Part:
    """The published bot versions (``dialog/bots`` seeded as version 1 into an empty database;
    calls take ``app[BOT_STORE].catalog`` when they start, publishes swap it in place) and the
    business back end (demo data seeded)."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        store = CatalogStore(BotVersions(app[SESSIONS]), embedder=intent_embedder(settings))
        seeded_bots = await store.start()
        catalog = app[CATALOG] = store.catalog  # the catalog at start (prompt pre-rendering)
        app[BOT_STORE] = store
        stale = await asyncio.to_thread(store.stale_files)
        if stale:
            log.warning("bot files differ from the published versions (serve them with `ivr bots "
                        "import` then `ivr bots publish BOT`): %s", ", ".join(stale))
        store.start_watching(settings.dialog.bots_check_interval_s)
        seeded = await seed_demo(app[SESSIONS])
        app[ACTIONS] = build_actions(demo_backends(
            app[SESSIONS], lock_policy=LockPolicy.from_settings(settings.dialog)),
            deadline_s=settings.dialog.action_deadline_s)
        say(f"Bots ready in {time.monotonic() - t:.1f} s ({len(catalog.bots)} published bots"
            f"{' seeded from dialog/bots' if seeded_bots else ''}; demo back "
            f"end, {sum(seeded.values())} seed rows added)")
        yield
        await store.stop()
    return part


def prompts_part(settings: Settings, say: Progress) -> Part:
    """TTS and the prompt cache: call-flow prompts pre-rendered (with bots: theirs in the
    background while calls run; a prompt asked for first is rendered on demand, then cached)."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        synth = await asyncio.to_thread(build_synthesizer, settings.tts, settings.llm, say)
        cache = PromptCache(synth, settings.tts)
        essential, rest = fixed_prompts(app[CATALOG]) if CATALOG in app else ({}, [])
        if settings.dialog.privacy_notice:
            essential["privacy_notice"] = settings.dialog.privacy_notice
        await cache.prerender(essential)
        # the queues' periodic announcement (queues.conf): offered only with callbacks on
        try:
            await cache.publish(QUEUE_ANNOUNCE_NAME, QUEUE_ANNOUNCE if
                                settings.handoff.callback_offer else None,
                                "queue_callback_announce")
        except (TTSError, OSError) as exc:  # the queues then play music only
            log.warning("queue announcement not rendered: %s", exc)
        for prompt_id, name in DIALPLAN_PROMPTS.items():  # the failsafe's, server down
            try:
                await cache.publish(name, P[prompt_id], prompt_id)
            except (TTSError, OSError) as exc:  # the dialplan then goes on without it
                log.warning("dialplan prompt %s not rendered: %s", name, exc)
        app[PROMPT_CACHE] = cache
        say(f"TTS ready in {time.monotonic() - t:.1f} s ({synth.name}, voice {synth.voice}, "
            f"{len(essential)} call-flow prompts cached; {len(rest)} bot prompts rendering in "
            f"the background)")
        background = asyncio.create_task(_render_in_background(cache, rest),
                                         name="prompts-prerender")
        yield
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
        await synth.close()
    return part


def asr_part(settings: Settings, say: Progress) -> Part:
    """The recogniser, loaded once and shared by every call; without one, calls take keys."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        recognizer: Recognizer | None = None
        try:
            recognizer = await asyncio.to_thread(build_recognizer, settings.asr)
        except ASRError as exc:
            log.warning("speech recognition unavailable (%s): calls take keys only", exc)
        if recognizer is not None:
            app[RECOGNIZER] = recognizer
            say(f"ASR ready in {time.monotonic() - t:.1f} s ({recognizer.name}; speech and "
                f"keys, end of speech after {settings.asr.end_silence_ms} ms of silence)")
        yield
        if recognizer is not None:
            await recognizer.close()
    return part


def ears_of(app: web.Application, settings: Settings,
            *, live: bool = False) -> Callable[[AriClient, str], Listener | None]:
    """The caller's speech on a channel, through the loaded recogniser (None: keys only)."""
    def ears(ari: AriClient, channel_id: str) -> Listener | None:
        recognizer = cast(Recognizer | None, app.get(RECOGNIZER))
        if recognizer is None:
            return None
        return tap_listener(ari, channel_id, recognizer, settings, live=live)
    return ears


class _TextOnly:
    """The prompts of a server without TTS (``ivr up --chat-only``): chats show text."""

    async def get(self, text: str, prompt_id: str | None = None) -> Path:
        raise RuntimeError("this server has no TTS: it serves web chats only")


TEXT_ONLY = _TextOnly()


def call_factory_part(settings: Settings, *, inbound: bool = True) -> Part:
    """The call journal and the one call assembly (``ivr.calls.factory``). ``inbound``: with
    the bots, call state in Redis, the screen pop, the callback offer and survey call-backs."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        journal = CallJournal(app[REPO])
        journal.start_writer()
        app[JOURNAL] = journal
        feeder: CallbackFeeder | None = None
        adviser = intent_adviser(settings.nlu, settings.llm) if inbound else None
        factory = CallFactory(
            app[PROMPT_CACHE] if PROMPT_CACHE in app else TEXT_ONLY, journal,
            no_input_timeout_s=settings.dialog.no_input_timeout_s,
            interdigit_timeout_s=settings.dialog.dtmf_interdigit_timeout_s,
            ears_factory=ears_of(app, settings))
        if inbound:
            feeder = CallbackFeeder(app[SESSIONS], settings.ops,  # survey call-backs
                                    agent_lookup=pop_agent_lookup(app[HANDOFF].store))
            journal.on_finish.append(feeder.offer)
            feeder.start()
            factory.state = CallStateStore(app[REDIS])
            factory.handoff = app[HANDOFF]
            app[HANDOFF].queue_results = journal.queue_result  # waits into the call records
            factory.callbacks = callback_policy(app[SESSIONS], settings.handoff)
            notice = settings.dialog.privacy_notice
            factory.dialog_factory = lambda: DialogEngine(app[BOT_STORE].catalog, app[ACTIONS],
                                                          notice=notice, adviser=adviser)
            factory.dialog_restorer = lambda snap: DialogEngine.restore(
                app[BOT_STORE].catalog, app[ACTIONS], snap, adviser=adviser)
        app[CALL_FACTORY] = factory
        yield
        if adviser is not None:
            await adviser.close()
        await journal.close()
        if feeder is not None:
            await feeder.close()
    return part


def calls_part(settings: Settings, say: Progress) -> Part:
    """The transports that take inbound calls: ARI (Stasis) and FastAGI, both on the one call
    assembly; live caller words during agent calls."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        ari = AriClient(settings.asterisk)
        app[ARI] = ari
        factory = app[CALL_FACTORY]
        manager = CallManager(ari, factory, sounds_subdir=settings.asterisk.sounds_subdir,
                              outage_s=settings.asterisk.ari_outage_s,
                              capacity=settings.calls.capacity)
        app[CALLS] = manager
        h = settings.handoff
        if h.live_max_calls > 0:  # the caller's words during the agent call (handoff/live.py)
            live_ears = ears_of(app, settings, live=True)
            app[HANDOFF].attach_live(LiveTranscripts(
                lambda channel_id: live_ears(ari, channel_id),
                app[HANDOFF].add_caller_words, max_calls=h.live_max_calls,
                max_s=h.live_max_s, idle_s=h.live_idle_s))
        agi = AgiServer(settings.agi, factory, sounds_subdir=settings.asterisk.sounds_subdir,
                        ari=ari)  # speech over AGI: the caller's audio tapped through ARI
        await agi.start()
        app[AGI] = agi
        keeper = box_keeper(settings, app[REDIS], manager, factory) \
            if settings.failover.box else None
        if keeper is not None:  # a cluster worker: boxes served while their lease is held
            app[BOXES] = keeper
            task = asyncio.create_task(keeper.run(), name="box-keeper")
            await keeper.looked.wait()
        else:
            task = asyncio.create_task(ari.run(manager.on_event, manager.on_connection),
                                       name="ari-events")
        try:
            if keeper is None or not keeper.standing_by:
                await asyncio.wait_for(ari.connected.wait(), 15)
                say(f"IVR ready: ARI app '{settings.asterisk.ari_app}' registered; "
                    f"call 956100 (web on http://{settings.web.host}:{settings.web.port})")
            else:
                say(f"IVR standing by: box {settings.failover.box} is served by "
                    f"{await keeper.leases.holder(settings.failover.box)} until it is idle")
        except TimeoutError:
            log.warning("ARI not reachable yet at %s; will keep retrying",
                        settings.asterisk.ari_url)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if keeper is not None:
            await keeper.close()
        await agi.stop()
        await manager.close()
        live = app[HANDOFF].live
        if live is not None:  # its taps need ARI: closed before the client
            app[HANDOFF].attach_live(None)
            await live.close()
        await ari.close()
    return part


def dialer_part(settings: Settings, say: Progress, *, endpoint: str | None = None,
                tick_s: float | None = None, name: str = "server-dialer",
                enabled: bool | None = None) -> Part:
    """The outbound survey dialer on the call assembly (prompts, journal, ears shared with the
    inbound calls when there are any). ``enabled`` defaults to ``dialer.in_server``."""
    on = settings.dialer.in_server if enabled is None else enabled

    async def part(app: web.Application) -> AsyncIterator[None]:
        if not on:
            yield
            return
        recognizer = app.get(RECOGNIZER)
        originator = survey_originator(app[CALL_FACTORY], app[SESSIONS], settings,
                                       endpoint=endpoint,
                                       recognizer=cast(Transcriber, recognizer)
                                       if recognizer is not None else None)
        try:
            await originator.start()
        except TimeoutError:
            log.warning("survey dialer: ARI not reachable yet; it keeps trying")
        dialer = Dialer(app[SESSIONS], originator, tick_s=tick_s or settings.dialer.tick_s,
                        name=name)
        app[DIALER] = dialer
        say(f"dialer running (ARI app {originator.ari.app}; answers by keys"
            f"{' and voice' if RECOGNIZER in app else ''})")
        task = asyncio.create_task(dialer.run(), name="campaign-dialer")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await originator.close()
    return part


def loop_lag_part() -> Part:
    """The event loop's lateness, sampled all the time (``ivr.core.looplag``) for /metrics;
    an owned task, cancelled on stop."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        lag = app[LOOP_LAG] = LoopLag()
        task = asyncio.create_task(lag.run(), name="loop-lag")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return part


def retention_part(settings: Settings) -> Part:
    """The daily purge of personal data past its retention (``ivr.app.retention``): first
    run ``retention.first_run_s`` after start, then every ``retention.interval_s``; an owned
    task, cancelled on stop. Off with ``retention.enabled`` false."""
    async def part(app: web.Application) -> AsyncIterator[None]:
        if not settings.retention.enabled:
            yield
            return
        task = asyncio.create_task(
            run_daily(app[SESSIONS], settings, settings.tts.cache_dir), name="retention-purge")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return part


async def _render_in_background(cache: PromptCache, texts: list[str]) -> None:
    t = time.monotonic()
    try:
        await cache.prerender(texts)
    except TTSError as exc:  # each prompt is rendered on demand instead; calls go on
        log.warning("background prompt rendering stopped: %s", exc)
        return
    log.info("%d bot prompts cached in %.1f s", len(texts), time.monotonic() - t)
