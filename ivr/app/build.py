"""The server: an aiohttp application whose cleanup contexts own every part of the stack.

Order of start (and reverse order of stop): Asterisk (when managed), PostgreSQL (embedded when
DATABASE_URL is unset) with migrations, Redis (embedded when REDIS_URL is unset), the bot
catalog and the business back end (demo data seeded), TTS and the prompt cache (call-flow
prompts pre-rendered, bot prompts in the background), then the ARI event loop that takes
calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from asr.base import ASRError, Recognizer
from asr.factory import build_recognizer
from asterisk.runner import ManagedAsterisk
from campaigns.callbacks import CallbackFeeder, pop_agent_lookup
from dialog.backends.demo import demo_backends
from dialog.backends.seed import seed_demo
from dialog.business import build_actions
from dialog.engine import DialogEngine
from dialog.lifecycle.repository import BotVersions
from dialog.lifecycle.store import CatalogStore
from dialog.prompts import fixed_prompts
from handoff.callback import callback_policy
from handoff.embeddings import intent_embedder
from handoff.live import LiveTranscripts
from handoff.service import HandoffService
from ivr.calls.agi_server import AgiServer
from ivr.calls.ears import tap_listener
from ivr.calls.journal import CallJournal
from ivr.calls.listener import Listener
from ivr.calls.manager import CallManager
from ivr.calls.queue_exit import QUEUE_ANNOUNCE_NAME, QUEUE_ANNOUNCE_TEXT
from ivr.calls.state import CallStateStore
from ivr.core.config import Settings
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import create_engine, session_factory
from ivr.core.storage.migrate import upgrade
from ivr.core.storage.postgres import EmbeddedPostgres, database_url
from ivr.core.storage.redis_server import EmbeddedRedis, connect_redis
from ivr.telephony.ami import AmiClient
from ivr.telephony.ari.client import AriClient
from ivr.web import routes
from ivr.web.keys import (
    ACTIONS,
    AGI,
    AMI,
    ARI,
    ASTERISK,
    BOT_STORE,
    CALLS,
    CATALOG,
    DB_URL,
    HANDOFF,
    PROMPT_CACHE,
    RECOGNIZER,
    REDIS,
    REPO,
    SESSIONS,
    SETTINGS,
)
from tts.base import TTSError
from tts.cache import PromptCache
from tts.factory import build_synthesizer

log = logging.getLogger("ivr.app.build")

Progress = Callable[[str], None]


def build_app(
    settings: Settings, *, progress: Progress | None = None, start_asterisk: bool | None = None
) -> web.Application:
    say = progress or (lambda m: log.info("%s", m))
    app = web.Application()
    app[SETTINGS] = settings
    run_asterisk = settings.asterisk.managed if start_asterisk is None else start_asterisk

    async def asterisk_ctx(app: web.Application) -> AsyncIterator[None]:
        if not run_asterisk:
            yield
            return
        t = time.monotonic()
        ast = ManagedAsterisk(settings, progress=say)
        await ast.start()
        app[ASTERISK] = ast
        say(
            f"Asterisk 22 ready in {time.monotonic() - t:.1f} s (SIP {settings.asterisk.bind_host}:"
            f"{settings.asterisk.sip_port}, ARI {settings.asterisk.ari_url})"
        )
        yield
        await ast.stop()

    async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
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
        repo = CallRepository(app[SESSIONS])
        app[REPO] = repo
        say(
            f"PostgreSQL ready in {time.monotonic() - t:.1f} s "
            f"({'embedded' if pg else 'DATABASE_URL'}, migrations applied)"
        )
        t = time.monotonic()
        embedded_redis: EmbeddedRedis | None = None
        if settings.redis.url is None:
            embedded_redis = EmbeddedRedis(settings.redis)
            await embedded_redis.start()
            redis_url = embedded_redis.url
        else:
            redis_url = settings.redis.url.get_secret_value()
        app[REDIS] = await connect_redis(redis_url)
        say(
            f"Redis ready in {time.monotonic() - t:.1f} s "
            f"({'embedded' if embedded_redis else 'REDIS_URL'})"
        )
        yield
        await app[REDIS].aclose()
        if embedded_redis is not None:
            await embedded_redis.stop()
        await engine.dispose()
        if pg is not None:
            await asyncio.to_thread(pg.stop)

    async def dialog_ctx(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        # the published bot versions (dialog/bots/ seeded as version 1 into an empty database);
        # calls take app[BOT_STORE].catalog when they start, publishes swap it in place
        store = CatalogStore(BotVersions(app[SESSIONS]), embedder=intent_embedder(settings),
                             embedding_floor=settings.nlu.embedding_floor)  # nlu.embedder
        seeded_bots = await store.start()
        catalog = app[CATALOG] = store.catalog  # the catalog at start (prompt pre-rendering)
        app[BOT_STORE] = store
        stale = await asyncio.to_thread(store.stale_files)
        if stale:
            log.warning("bot files differ from the published versions (serve them with `ivr bots "
                        "import` then `ivr bots publish BOT`): %s", ", ".join(stale))
        store.start_watching(settings.dialog.bots_check_interval_s)
        seeded = await seed_demo(app[SESSIONS])
        app[ACTIONS] = build_actions(demo_backends(app[SESSIONS]))
        say(
            f"Bots ready in {time.monotonic() - t:.1f} s ({len(catalog.bots)} published bots"
            f"{' seeded from dialog/bots' if seeded_bots else ''}; demo back "
            f"end, {sum(seeded.values())} seed rows added)"
        )
        yield
        await store.stop()

    async def prompts_ctx(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        synth = await asyncio.to_thread(build_synthesizer, settings.tts, settings.llm, say)
        cache = PromptCache(synth, settings.tts)
        essential, rest = fixed_prompts(app[CATALOG])
        await cache.prerender(essential)
        # the queues' periodic announcement (queues.conf): offered only with callbacks on
        try:
            await cache.publish(QUEUE_ANNOUNCE_NAME, QUEUE_ANNOUNCE_TEXT if
                                settings.handoff.callback_offer else None,
                                "queue_callback_announce")
        except (TTSError, OSError) as exc:  # the queues then play music only
            log.warning("queue announcement not rendered: %s", exc)
        app[PROMPT_CACHE] = cache
        say(
            f"TTS ready in {time.monotonic() - t:.1f} s ({synth.name}, voice {synth.voice}, "
            f"{len(essential)} call-flow prompts cached; {len(rest)} bot prompts rendering in "
            f"the background)"
        )
        # the bots' own fixed texts: rendered while calls run (a prompt asked for first is
        # rendered on demand, then cached)
        background = asyncio.create_task(_render_in_background(cache, rest),
                                         name="prompts-prerender")
        yield
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background
        await synth.close()

    async def asr_ctx(app: web.Application) -> AsyncIterator[None]:
        t = time.monotonic()
        recognizer: Recognizer | None = None
        try:
            recognizer = await asyncio.to_thread(build_recognizer, settings.asr)
        except ASRError as exc:
            log.warning("speech recognition unavailable (%s): calls take keys only", exc)
        if recognizer is not None:
            app[RECOGNIZER] = recognizer
            asr_holder.append(recognizer)
            say(f"ASR ready in {time.monotonic() - t:.1f} s ({recognizer.name}; speech and "
                f"keys, end of speech after {settings.asr.end_silence_ms} ms of silence)")
        yield
        asr_holder.clear()
        if recognizer is not None:
            await recognizer.close()

    asr_holder: list[Recognizer] = []  # the loaded recogniser, typed for ears_for

    def ears_for(ari: AriClient, channel_id: str, *, live: bool = False) -> Listener | None:
        return tap_listener(ari, channel_id, asr_holder[0], settings, live=live) \
            if asr_holder else None

    async def handoff_ctx(app: web.Application) -> AsyncIterator[None]:
        a = settings.asterisk
        ami = AmiClient(a)
        try:
            await ami.connect()
        except OSError as exc:  # panoramisk keeps trying by itself
            log.warning("AMI not reachable yet at %s:%s (%s)", a.ami_host, a.ami_port, exc)
        app[AMI] = ami
        service = HandoffService(app[REDIS], settings.handoff, settings.llm, ami=ami)
        await service.start()
        app[HANDOFF] = service
        say(f"Handoff ready (screen pops on AgentCalled, LLM summary "
            f"{'on' if service.summarizer.enabled else 'off'}; desktop on /agent)")
        yield
        await service.close()
        ami.close()

    async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
        journal = CallJournal(app[REPO])
        journal.start_writer()
        callbacks = CallbackFeeder(app[SESSIONS], settings.ops,  # survey call-backs (issue 7)
                                   agent_lookup=pop_agent_lookup(app[HANDOFF].store))
        journal.on_finish.append(callbacks.offer)
        callbacks.start()
        ari = AriClient(settings.asterisk)
        app[ARI] = ari
        manager = CallManager(
            ari,
            app[PROMPT_CACHE],
            journal,
            lambda: DialogEngine(app[BOT_STORE].catalog, app[ACTIONS]),
            state=CallStateStore(app[REDIS]),
            dialog_restorer=lambda snap: DialogEngine.restore(app[BOT_STORE].catalog,
                                                              app[ACTIONS], snap),
            ears_factory=ears_for,
            handoff=app[HANDOFF],
            sounds_subdir=settings.asterisk.sounds_subdir,
            no_input_timeout_s=settings.dialog.no_input_timeout_s,
            interdigit_timeout_s=settings.dialog.dtmf_interdigit_timeout_s,
            callbacks=callback_policy(app[SESSIONS], settings.handoff),  # handoff/callback.py
        )
        app[CALLS] = manager
        h = settings.handoff
        if h.live_max_calls > 0:  # the caller's words during the agent call (handoff/live.py)
            app[HANDOFF].attach_live(LiveTranscripts(
                lambda channel_id: ears_for(ari, channel_id, live=True),
                app[HANDOFF].add_caller_words, max_calls=h.live_max_calls,
                max_s=h.live_max_s, idle_s=h.live_idle_s))
        agi = AgiServer(
            settings.agi,
            app[PROMPT_CACHE],
            journal,
            lambda: DialogEngine(app[BOT_STORE].catalog, app[ACTIONS]),
            sounds_subdir=settings.asterisk.sounds_subdir,
            no_input_timeout_s=settings.dialog.no_input_timeout_s,
            interdigit_timeout_s=settings.dialog.dtmf_interdigit_timeout_s,
            handoff=app[HANDOFF],
            ears_factory=lambda channel_id: ears_for(ari, channel_id),  # speech over ARI
        )
        await agi.start()
        app[AGI] = agi
        task = asyncio.create_task(
            ari.run(manager.on_event, manager.on_connection), name="ari-events"
        )
        try:
            await asyncio.wait_for(ari.connected.wait(), 15)
            say(
                f"IVR ready: ARI app '{settings.asterisk.ari_app}' registered; "
                f"call 956100 (web on http://{settings.web.host}:{settings.web.port})"
            )
        except TimeoutError:
            log.warning(
                "ARI not reachable yet at %s; will keep retrying", settings.asterisk.ari_url
            )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agi.stop()
        await manager.close()
        live = app[HANDOFF].live
        if live is not None:  # its taps need ARI: closed before the client
            app[HANDOFF].attach_live(None)
            await live.close()
        await journal.close()
        await callbacks.close()
        await ari.close()

    app.cleanup_ctx.extend(
        [asterisk_ctx, storage_ctx, handoff_ctx, dialog_ctx, prompts_ctx, asr_ctx, calls_ctx]
    )
    from campaigns.service import dialer_context  # outbound survey dialer (issue 7)

    app.cleanup_ctx.append(dialer_context(settings))
    routes.setup(app)
    return app


async def _render_in_background(cache: PromptCache, texts: list[str]) -> None:
    t = time.monotonic()
    try:
        await cache.prerender(texts)
    except TTSError as exc:  # each prompt is rendered on demand instead; calls go on
        log.warning("background prompt rendering stopped: %s", exc)
        return
    log.info("%d bot prompts cached in %.1f s", len(texts), time.monotonic() - t)
