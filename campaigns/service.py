"""The survey dialer's parts: the originator on the one call assembly, and the low-score
follow-ups. ``ivr.app.parts.dialer_part`` runs them inside the server (``ivr up``) or alone
(``ivr campaigns run``)."""

from __future__ import annotations

from collections.abc import Callable

from campaigns.ariorigin import AriOriginator
from campaigns.carrier import Transcriber
from campaigns.earlymedia import EarlyMedia
from campaigns.followup import SurveyFollowups
from dialog.backends.demo import demo_backends
from ivr.calls.factory import CallFactory
from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory


def survey_originator(calls: CallFactory, sessions: SessionFactory, settings: Settings, *,
                      endpoint: str | None = None,
                      recognizer: Transcriber | None = None) -> AriOriginator:
    """An originator whose sessions come from ``calls`` (prompts, journal, ears). With a
    ``recognizer`` and ``dialer.early_media`` on, each dial's early media is listened to
    (``campaigns.earlymedia``)."""
    early: Callable[[], EarlyMedia] | None = None
    if recognizer is not None and settings.dialer.early_media:
        def early() -> EarlyMedia:
            return EarlyMedia(recognizer, settings.asterisk)
    return AriOriginator(
        settings.asterisk, sessions, calls,
        endpoint=endpoint or settings.dialer.endpoint,
        ring_timeout_s=settings.dialer.ring_timeout_s,
        on_survey_end=survey_followups(sessions, settings), early=early)


def survey_followups(sessions: SessionFactory, settings: Settings) -> SurveyFollowups:
    """Low-score follow-up orders through the work-order adapter (the demo back end's table,
    as the inbound bots use)."""
    return SurveyFollowups(sessions, demo_backends(sessions).work_orders, settings.ops)
