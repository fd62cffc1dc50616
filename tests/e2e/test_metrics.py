"""Every process of a real ``starwrs serve`` serves Prometheus metrics that move with traffic.

Issue 10 item 11: the endpoints named in ``deployment.json``'s ``metrics`` map are
read with ``prometheus_client.parser``; a logon, a GRTL, a bad message and an echo go
through the web server, and the request counters of the web server, the dispatcher
and the proxies move by hop, target, acronym and status; TLS handshakes are counted
at every listener (a failed one too), a peer the peer table refuses is counted as
refused; ``starwrs status`` shows the figures.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starwrs.protocol import FrameWriter
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism

from .system import System, start

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
#: a report template list the demo user jeanvnet2 may read
GRTL = b"GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start(tmp_path_factory.mktemp("state"))
    yield running
    running.stop()


def scrape(address: dict[str, object]) -> Samples:
    """Every sample of one metrics endpoint, parsed by prometheus_client."""
    url = f"http://{address['host']}:{address['port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        text = answer.read().decode("utf-8")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape_all(system: System) -> dict[str, Samples]:
    return {label: scrape(address) for label, address in system.deployment()["metrics"].items()}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of *name* whose labels include *labels*."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_every_process_serves_its_metrics(system: System) -> None:
    labels = system.deployment()["metrics"]
    assert {"web", "dispatcher0", "oe", "rm", "serve"} <= set(labels)
    for label, samples in scrape_all(system).items():
        assert value(samples, "process_resident_memory_bytes") > 0, label


def test_counters_move_with_traffic(system: System) -> None:
    before = scrape_all(system)
    cookie = system.logon("jeanvnet2")  # web DSP/LON; dispatcher LON; OE VU and GUA
    status, (grtl,) = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "RM", GRTL))
    assert status == 200
    assert grtl.header.status == 0
    status, (bad,) = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "RM", b"GRTL<<<"))
    assert status == 200
    assert bad.header.status != 0  # the proxy's error code, relayed
    status, (echo,) = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "OE", echo=1))
    assert status == 200
    assert echo.header.echo
    after = scrape_all(system)

    requests = "starwrs_requests_total"
    web_before, web_after = before["web"], after["web"]
    dsp, dsp_after = before["dispatcher0"], after["dispatcher0"]
    # the web server: one per HTTP request, with the HTTP status
    assert moved(web_before, web_after, requests, target="DSP", acronym="LON", status="200") == 1
    assert moved(web_before, web_after, requests, target="RM", acronym="GRTL", status="200") == 2
    assert moved(web_before, web_after, requests, target="OE", acronym="none", status="200") == 1
    assert moved(web_before, web_after, "starwrs_request_seconds_count", target="RM") == 2
    assert moved(web_before, web_after, "starwrs_tls_handshakes_total", result="ok") >= 4
    # the dispatcher: one per frame, with the frame's status
    assert moved(dsp, dsp_after, requests, target="DSP", acronym="LON") == 1
    assert moved(dsp, dsp_after, requests, target="RM", acronym="GRTL", status="0") == 1
    bad_status = str(bad.header.status)
    assert moved(dsp, dsp_after, requests, target="RM", acronym="GRTL", status=bad_status) == 1
    assert moved(dsp, dsp_after, requests, target="OE", acronym="none", status="0") == 1
    assert value(dsp_after, "starwrs_active_sessions") >= 1
    # the proxies: one per request
    oe_before, oe_after = before["oe"], after["oe"]
    assert moved(oe_before, oe_after, requests, service="oe", acronym="VU", status="0") == 1
    assert moved(oe_before, oe_after, requests, service="oe", acronym="GUA", status="0") == 1
    rm_before, rm_after = before["rm"], after["rm"]
    assert moved(rm_before, rm_after, requests, service="rm", acronym="GRTL", status="0") == 1
    assert moved(rm_before, rm_after, requests, service="rm", status=bad_status) == 1
    assert moved(rm_before, rm_after, "starwrs_request_seconds_count", service="rm") == 2


def test_failed_handshakes_and_refused_peers_are_counted(system: System) -> None:
    before = scrape_all(system)
    # not TLS at all: a failed handshake at the web server
    with socket.create_connection((system.host, system.port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(10)
        try:
            while raw.recv(4096):
                pass
        except OSError:
            pass
    # the web server's certificate may not call order entry (runtime/peers.py)
    oe = system.deployment()["proxies"]["OE"]
    context = ssl.create_default_context(cafile=str(system.ca))
    internal = system.state / "internal"
    context.load_cert_chain(internal / "web.pem", internal / "web-key.pem")
    frame = FrameWriter().send(Frame.build(Mechanism.SYNC, "OE", b"GUA<USERID=jeanvnet2>"))
    with (
        socket.create_connection((oe["host"], oe["port"]), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="oe") as tls,
    ):
        tls.sendall(frame)
        while tls.recv(65536):
            pass
    after = scrape_all(system)
    handshakes = "starwrs_tls_handshakes_total"
    assert moved(before["web"], after["web"], handshakes, service="web", result="failed") == 1
    assert moved(before["oe"], after["oe"], handshakes, service="oe", result="ok") == 1
    refused = "starwrs_connections_refused_total"
    assert moved(before["oe"], after["oe"], refused, service="oe", reason="peer") == 1


def test_status_shows_the_figures(system: System) -> None:
    system.logon("jeanvnet2")
    result = subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "status", "--state", str(system.state), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["service"]: row for row in map(json.loads, result.stdout.splitlines())}
    for service in ("web", "dispatcher[0]", "oe"):
        assert rows[service]["requests"] >= 1, rows[service]
    assert rows["dispatcher[0]"]["sessions"] >= 1
    table = subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "status", "--state", str(Path(system.state))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "REQUESTS" in table.stdout
