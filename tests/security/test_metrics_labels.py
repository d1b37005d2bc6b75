"""/metrics label values come from fixed vocabularies and are escaped: data cannot add lines."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from handoff.metrics import HandoffMetrics
from ivr.core.promtext import counter_lines, escape_label_value, label
from ivr.web.keys import CALLS
from ivr.web.routes import metrics

EVIL = ['x"} 1\nevil_metric 1', 'a\\"b', "ok\r\nevil_metric 2", "line\u2028evil"]


def _sample_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def test_escape_label_value() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert label("ok", ("ok",)) == "ok"
    assert label('x"} 1\nevil_metric 1', ("ok",)) == "other"


@pytest.mark.parametrize("key", EVIL)
def test_unknown_values_are_other(key: str) -> None:
    lines = counter_lines("m_total", "outcome", Counter({key: 3, "ok": 1}), ("ok",))
    assert lines == ['m_total{outcome="ok"} 1', 'm_total{outcome="other"} 3']


@pytest.mark.parametrize("key", EVIL)
def test_handoff_metrics_cannot_be_injected(key: str) -> None:
    m = HandoffMetrics()
    m.ticket_fields_dropped[key] += 1
    m.llm[key] += 1
    m.tickets[key] += 1
    text = "\n".join(m.lines(0))
    assert "evil" not in text
    assert all(n.startswith("ivr_handoff_") for n in _sample_names(text))
    assert 'ivr_handoff_llm_ticket_fields_dropped_total{field="other"} 1' in text


async def test_call_outcomes_on_metrics_page() -> None:
    app_calls = SimpleNamespace(active=0, total_calls=2,
                                outcomes={"completed": 1, EVIL[0]: 1},
                                ari_blips={"calls_kept": 1, EVIL[0]: 1}, shed_calls=0,
                                resumed_calls=0)
    app = web.Application()
    app[CALLS] = app_calls  # type: ignore[misc]
    req = make_mocked_request("GET", "/metrics", app=app)
    resp = await metrics(req)
    text = resp.text or ""
    assert "evil_metric" not in text
    assert 'ivr_call_outcomes_total{outcome="completed"} 1' in text
    assert 'ivr_call_outcomes_total{outcome="other"} 1' in text
    assert 'ivr_ari_blip_calls_total{result="calls_kept"} 1' in text
