"""Kamailio's rendered configuration (asterisk/kamailio.py): every marker filled from the
settings, the dispatcher list one line per box, bad boxes refused with a clear error, the file
accepted by the real ``kamailio -c``, and the rotation read back from ``dispatcher.list``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asterisk.kamailio import (
    BINARY,
    KamailioError,
    check_config,
    parse_rotation,
    render_kamailio,
    write_config,
)
from ivr.core.config import KamailioSettings


def _k(tmp_path: Path, **kw: object) -> KamailioSettings:
    return KamailioSettings(run_dir=tmp_path, boxes=["sip:10.0.0.11:5060", "sip:10.0.0.12:5060"],
                            **kw)


def test_render_fills_every_marker_from_the_settings(tmp_path: Path) -> None:
    files = render_kamailio(_k(tmp_path, listen_host="10.0.0.5", sip_port=5090,
                               probe_interval_s=3, failover_ms=900))
    cfg = files["kamailio.cfg"]
    assert "@@" not in cfg
    assert "listen=udp:10.0.0.5:5090" in cfg and '"ds_ping_interval", 3' in cfg
    assert '"fr_timer", 900' in cfg and f'"unix:{tmp_path}/kamailio_ctl"' in cfg
    assert '"ds_ping_from", "sip:kamailio@10.0.0.5"' in cfg
    lines = [ln for ln in files["dispatcher.list"].splitlines() if not ln.startswith("#")]
    assert lines == ["1 sip:10.0.0.11:5060 0 0 box=1", "1 sip:10.0.0.12:5060 0 0 box=2"]


@pytest.mark.parametrize("boxes", [[], ["10.0.0.11"], ["sip:a b"], ["sip:x;transport=tcp\n1"]])
def test_bad_boxes_are_refused(tmp_path: Path, boxes: list[str]) -> None:
    with pytest.raises(KamailioError, match=r"kamailio\.boxes"):
        render_kamailio(KamailioSettings(run_dir=tmp_path, boxes=boxes))


@pytest.mark.skipif(shutil.which(BINARY) is None, reason="kamailio is not installed "
                    "(scripts/bootstrap.sh installs it)")
async def test_real_kamailio_accepts_the_rendered_file(tmp_path: Path) -> None:
    await check_config(write_config(_k(tmp_path)))


def test_rotation_is_read_from_dispatcher_list() -> None:
    text = """{ NRSETS: 1 RECORDS: { SET: { ID: 1 TARGETS: {
        DEST: { URI: sip:10.78.0.12:5060
                FLAGS: AP
                PRIORITY: 0 }
        DEST: { URI: sip:10.78.0.11:5060
                FLAGS: IP
                PRIORITY: 0 } } } } }"""
    assert parse_rotation(text) == {"sip:10.78.0.12:5060": True, "sip:10.78.0.11:5060": False}


def test_cluster_workers_dial_out_through_their_box_to_one_simulator(tmp_path: Path) -> None:
    """With dialers on, each box's static ``carrier`` trunk points at the host side of the
    link (one customer simulator there serves every box) and each worker dials through it."""
    from asterisk.runner import render_configs
    from ivr.core.config import load_settings
    from ivr.tools.cluster import HOST_IP, worker_settings

    base = load_settings(home=tmp_path)
    plain = worker_settings(base, 1, "ivr-cl-a1", "10.78.0.11")
    assert not plain.dialer.in_server
    assert "contact = sip:10.78.0.11:5070" in render_configs(plain)["pjsip.conf"]
    for n in (1, 2):
        s = worker_settings(base, n, f"ivr-cl-a{n}", f"10.78.0.1{n}", dialers=True)
        assert s.dialer.in_server and s.dialer.endpoint == "carrier"
        pjsip = render_configs(s)["pjsip.conf"]
        assert f"contact = sip:{HOST_IP}:5070" in pjsip and "@@" not in pjsip


def test_cluster_workers_stand_by_for_each_other(tmp_path: Path) -> None:
    """Each worker leases its own box and stands by for every other box, reached at that box's
    ARI, with that box's prompts: what a surviving worker needs to serve it."""
    from ivr.core.config import load_settings
    from ivr.tools.cluster import with_failover, worker_settings

    base = load_settings(home=tmp_path)
    boxes = with_failover([worker_settings(base, n, f"ivr-cl-a{n}", f"10.78.0.1{n}")
                           for n in (1, 2, 3)])
    for n, s in enumerate(boxes, 1):
        f = s.failover
        assert f.box == f"box{n}" and f.renew_s * 2 <= f.lease_s
        others = [b for m, b in enumerate(boxes, 1) if m != n]
        assert [(p.ari_url, p.sounds_subdir) for p in f.standby] == [
            (b.asterisk.ari_url, b.asterisk.sounds_subdir) for b in others]
        assert s.asterisk.ari_url not in {p.ari_url for p in f.standby}
