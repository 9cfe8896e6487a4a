"""IOC matching: the indicator index's build time and memory with 1,000,000 indicators, and events per second
through ``IndicatorIndex.match`` for Windows, syslog-parsed and ECS events, with no indicator and with 1M.

The 1M indicators are a deterministic mix as feeds deliver them: IPv4 and IPv6 addresses, IPv4 and IPv6
networks of many prefix lengths, domains, MD5/SHA-1/SHA-256 hashes and URLs, none of them in the events
(the figure is the cost of an event that hits nothing, which is almost every event). Each event set is
matched twice: first with a fresh index (every observed value new to its memo), then again (values seen
before), as a long-running pipeline sees its hosts, addresses and paths recur; then 500 of them over and
over, as a pipeline matches a batch it has just parsed (in the CPU caches: the other figures are mostly
memory latency, 20,000 events being far larger than the caches).

* Windows: the EVTX samples (../shared/data/evtx) parsed as the SIEM parses them, native fields plus ECS;
  where they are absent, generated Sysmon process, network and DNS events;
* syslog: sshd, sudo and cron lines through the syslog parser (auth messages analysed into ECS);
* ECS: the SIEM benchmarks' generated events (logins, processes, connections, DNS, web requests).

Times are this process's CPU time (one core), not wall time: on a shared machine the others' work would
otherwise count. Usage: ``.venv/bin/python benchmarks/bench_intel_match.py``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import gc
import ipaddress
import random
import resource
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from _common import machine, report
from _siem_data import event as ecs_event

from vigil.intel.matcher import Entry, IndicatorIndex
from vigil.siem.parsers.base import ParseContext
from vigil.siem.parsers.evtx import iter_evtx_records
from vigil.siem.parsers.syslog import SyslogParser
from vigil.siem.parsers.windows import WindowsJsonParser

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EVTX = SHARED / "evtx"
INDICATORS = 1_000_000
# Share of each type among the indicators (out of 1,000).
MIX = (("ipv4", 350), ("ipv6", 50), ("cidr4", 12), ("cidr6", 3), ("domain", 300), ("md5", 90), ("sha1", 60),
       ("sha256", 60), ("url", 75))
TLDS = ("com", "net", "org", "ru", "xyz", "top", "info", "cn", "io", "biz")
# First octets no event here uses (the events hold 10/8, 172.16/12, 192.168/16, 192.0.2/24, 203.0.113/24).
PUBLIC_FIRST = [n for n in range(11, 100) if n not in (10, 52, 13, 20, 23, 40, 72)]


def _label(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(6, 14)))


def indicators(count: int) -> Iterator[Entry]:
    rng = random.Random(20261128)
    plan = [kind for kind, share in MIX for _ in range(share)]
    for indicator_id in range(1, count + 1):
        kind = plan[indicator_id % len(plan)]
        if kind == "ipv4":
            yield indicator_id, kind, f"{rng.choice(PUBLIC_FIRST)}.{rng.randrange(256)}.{rng.randrange(256)}." \
                                      f"{rng.randrange(1, 255)}"
        elif kind == "ipv6":
            yield indicator_id, kind, ipaddress.IPv6Address((0x2A0B << 112) | rng.getrandbits(100)).compressed
        elif kind == "cidr4":
            prefix = rng.choice((12, 16, 20, 22, 23, 24, 24, 24, 25, 26, 27, 28, 29, 30))
            network = ipaddress.IPv4Network(((rng.choice(PUBLIC_FIRST) << 24) | rng.getrandbits(24), prefix),
                                            strict=False)
            yield indicator_id, "cidr", network.compressed
        elif kind == "cidr6":
            prefix = rng.choice((29, 32, 36, 40, 44, 48, 56, 64))
            network = ipaddress.IPv6Network(((0x2A0C << 112) | rng.getrandbits(112), prefix), strict=False)
            yield indicator_id, "cidr", network.compressed
        elif kind == "domain":
            yield indicator_id, kind, f"{_label(rng)}.{rng.choice(TLDS)}"
        elif kind in ("md5", "sha1", "sha256"):
            yield indicator_id, kind, f"{rng.getrandbits(4 * {'md5': 32, 'sha1': 40, 'sha256': 64}[kind]):x}".zfill(
                {"md5": 32, "sha1": 40, "sha256": 64}[kind])
        else:
            yield indicator_id, kind, f"http://{_label(rng)}.{rng.choice(TLDS)}/{_label(rng)}/{_label(rng)}.php"


def windows_events() -> tuple[list[dict[str, Any]], str]:
    if EVTX.is_dir():
        parser, ctx = WindowsJsonParser(), ParseContext()
        events = []
        for path in sorted(EVTX.rglob("*.evtx")):
            for raw in iter_evtx_records(path):
                if isinstance(raw, bytes):
                    try:
                        events.append(parser.parse_one(raw, ctx))
                    except ValueError:
                        continue
        return events, "the EVTX samples"
    return [_sysmon(n) for n in range(8000)], "generated Sysmon events (../shared/data absent)"


def _sysmon(n: int) -> dict[str, Any]:
    image = ("C:\\Windows\\System32\\svchost.exe", "C:\\Program Files\\App\\app.exe",
             "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe")[n % 3]
    event: dict[str, Any] = {"Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": f"WS{n % 300:03d}",
                             "Image": image, "ProcessId": 1000 + n % 5000, "User": "CORP\\alice",
                             "process": {"executable": image, "name": image.rsplit("\\", 1)[-1]}}
    if n % 3 == 0:
        event.update(EventID=1, Hashes=f"MD5={n:032X},SHA256={n:064X}", ParentImage="C:\\Windows\\explorer.exe")
    elif n % 3 == 1:
        event.update(EventID=3, SourceIp=f"10.1.{n % 50}.{n % 200}", DestinationIp=f"172.16.{n % 9}.{n % 250}",
                     DestinationHostname=f"srv{n % 40}.corp.example")
        event["source"], event["destination"] = {"ip": event["SourceIp"]}, {"ip": event["DestinationIp"]}
    else:
        event.update(EventID=22, QueryName=f"host{n % 500}.example.org")
        event["dns"] = {"question": {"name": event["QueryName"]}}
    return event


def syslog_events(count: int) -> list[dict[str, Any]]:
    parser, ctx = SyslogParser(), ParseContext()
    lines = []
    for n in range(count):
        kind = n % 4
        if kind == 0:
            text = f"sshd[{2000 + n % 900}]: Accepted publickey for user{n % 40} from 10.2.{n % 30}.{n % 250} " \
                   f"port {40000 + n % 2000} ssh2"
        elif kind == 1:
            text = f"sshd[{2000 + n % 900}]: Failed password for invalid user admin from 192.168.{n % 7}.{n % 250} " \
                   f"port {40000 + n % 2000} ssh2"
        elif kind == 2:
            text = f"sudo: user{n % 40} : TTY=pts/0 ; PWD=/home/user{n % 40} ; USER=root ; COMMAND=/usr/bin/systemctl"
        else:
            text = f"CRON[{3000 + n % 500}]: (root) CMD (/usr/local/bin/job{n % 20}.sh)"
        lines.append(f"<38>Nov 28 10:{n // 60 % 60:02d}:{n % 60:02d} host{n % 50} {text}".encode())
    return [parser.parse_one(line, ctx) for line in lines]


def rss_mb() -> float:
    with Path("/proc/self/statm").open() as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def rate(index: IndicatorIndex, events: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """Events per second of this process's CPU time (the machine may be shared: wall time would count the
    others' work), and the hits found."""
    match = index.match
    started = time.process_time()
    hits = 0
    for event in events:
        hits += len(match(event))
    return len(events) / (time.process_time() - started), hits


def main() -> None:
    windows, windows_from = windows_events()
    sets = {"Windows": (windows, windows_from), "syslog-parsed": (syslog_events(20_000), "sshd, sudo, cron lines"),
            "ECS": ([ecs_event(n) for n in range(20_000)], "generated ECS events")}
    entries = list(indicators(INDICATORS))
    gc.collect()
    before = rss_mb()
    started = time.process_time()
    index = IndicatorIndex.build(entries)
    built = time.process_time() - started
    gc.collect()
    memory = rss_mb() - before
    conditions = f"{len(index):,} indicators ({index.skipped} skipped), one core; {machine()}"
    report("intel index build, 1M indicators", built, "s", conditions)
    report("intel index memory, 1M indicators", memory, "MB", f"resident set growth; {conditions}")
    empty = IndicatorIndex.empty()
    for name, (events, origin) in sets.items():
        figure, _ = rate(empty, events)
        report(f"intel match, {name} events, no indicator", figure, "events/s",
               f"{len(events):,} {origin}; {machine()}")
        for label in ("fresh index", "values seen before"):
            figure, hits = rate(index, events)
            report(f"intel match, {name} events, 1M indicators, {label}", figure, "events/s",
                   f"{1e6 / figure:.2f} us an event; {len(events):,} {origin}, {hits} hits; {conditions}")
        # A pipeline matches a batch it has just parsed: its events are still in the CPU caches.
        figure, _ = rate(index, list(events[:500]) * 20)
        report(f"intel match, {name} events, 1M indicators, batch in cache", figure, "events/s",
               f"{1e6 / figure:.2f} us an event; 500 {origin} matched 20 times; {conditions}")


if __name__ == "__main__":
    main()
