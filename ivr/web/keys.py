"""Typed aiohttp application state (set by ivr.app.build's cleanup contexts, read by the routes)."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web

from asterisk.runner import ManagedAsterisk
from campaigns.dialer import Dialer
from dialog.catalog import Catalog
from dialog.lifecycle.store import CatalogStore
from handoff.chatdesk import ChatDesk
from handoff.service import HandoffService
from ivr.calls.agi_server import AgiServer
from ivr.calls.chathub import ChatHub
from ivr.calls.factory import CallFactory
from ivr.calls.failover import BoxKeeper
from ivr.calls.journal import CallJournal
from ivr.calls.manager import CallManager
from ivr.core.config import Settings
from ivr.core.looplag import LoopLag
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import SessionFactory
from ivr.telephony.ami import AmiClient
from ivr.telephony.ari.client import AriClient
from tts.cache import PromptCache

SETTINGS = web.AppKey("settings", Settings)
LOOP_LAG = web.AppKey("loop_lag", LoopLag)
ASTERISK = web.AppKey("asterisk", ManagedAsterisk)
CALLS = web.AppKey("calls", CallManager)
BOXES = web.AppKey("boxes", BoxKeeper)  # a cluster worker's box leases (ivr.calls.failover)
REPO = web.AppKey("repo", CallRepository)
PROMPT_CACHE = web.AppKey("prompts", PromptCache)
REDIS = web.AppKey("redis", aioredis.Redis)
ARI = web.AppKey("ari", AriClient)
DB_URL = web.AppKey("db_url", str)
SESSIONS = web.AppKey("sessions", SessionFactory)
CATALOG = web.AppKey("catalog", Catalog)
BOT_STORE = web.AppKey("bot_store", CatalogStore)  # the published catalog now
ACTIONS = web.AppKey("actions", dict)
AGI = web.AppKey("agi", AgiServer)
RECOGNIZER = web.AppKey("recognizer", object)
HANDOFF = web.AppKey("handoff", HandoffService)
AMI = web.AppKey("ami", AmiClient)
CALL_FACTORY = web.AppKey("call_factory", CallFactory)  # the one call assembly
JOURNAL = web.AppKey("journal", CallJournal)
DIALER = web.AppKey("campaign_dialer", Dialer)
CHAT = web.AppKey("chat", ChatHub)  # the web chats of this server
CHAT_DESK = web.AppKey("chat_desk", ChatDesk)  # chats waiting for and with agents
