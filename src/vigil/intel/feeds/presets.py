"""Ready-made settings for well-known public feeds: the format, its options and where to download it.

A preset saves an analyst from reading a feed's layout: ``preset("urlhaus")`` gives the ``csv`` format
with the columns of abuse.ch's URLhaus dump already named. The layouts are those the providers publish
(a ``#`` comment header above quoted CSV rows for abuse.ch); the options only name columns, so a feed
that adds a column at the end still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.core.errors import BadInput

_URLHAUS_COLUMNS = ["id", "dateadded", "url", "url_status", "last_online", "threat", "tags", "urlhaus_link",
                    "reporter"]
_FEODO_COLUMNS = ["first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware"]
_THREATFOX_COLUMNS = ["first_seen_utc", "ioc_id", "ioc_value", "ioc_type", "threat_type", "fk_malware",
                      "malware_alias", "malware_printable", "last_seen_utc", "confidence_level", "reference", "tags",
                      "anonymous", "reporter"]


@dataclass(frozen=True)
class Preset:
    """A public feed Vigil knows how to read."""

    name: str
    title: str
    format: str  # a format of the vigil.feeds group
    options: Mapping[str, Any]  # options of that format
    url: str  # where the feed is downloaded (the default; a mirror may be given instead)
    description: str
    api_key_header: str = ""  # the HTTP header that carries an API key, when the provider asks for one


def _catalogue() -> list[Preset]:
    # Built on each call: callers may change the options they get without changing anyone else's.
    return [
        Preset(
            name="urlhaus", title="abuse.ch URLhaus (recent URLs)", format="csv",
            url="https://urlhaus.abuse.ch/downloads/csv_recent/",
            description="Malware distribution URLs reported to URLhaus in the last 30 days, with the threat "
                        "(malware_download, …) and the payload's tags.",
            options={"columns": _URLHAUS_COLUMNS, "value": "url", "default_type": "url",
                     "first_seen": "dateadded", "last_seen": "last_online", "tags": ["threat", "tags"],
                     "description": "urlhaus_link", "tags_all": ["urlhaus"], "tlp": "clear"}),
        Preset(
            name="feodotracker", title="abuse.ch Feodo Tracker (botnet C2 IPs)", format="csv",
            url="https://feodotracker.abuse.ch/downloads/ipblocklist.csv",
            description="IP addresses of botnet command-and-control servers (Dridex, Emotet, QakBot, "
                        "Pikabot, …) with the malware family and when they were last online.",
            options={"columns": _FEODO_COLUMNS, "value": "dst_ip", "default_type": "ipv4",
                     "first_seen": "first_seen_utc", "last_seen": "last_online", "malware": "malware",
                     "tags_all": ["feodotracker", "botnet-c2"], "tlp": "clear"}),
        Preset(
            name="threatfox", title="abuse.ch ThreatFox (recent IOCs)", format="csv",
            url="https://threatfox.abuse.ch/export/csv/recent/",
            description="IOCs shared on ThreatFox in the last 48 hours: C2 addresses (ip:port), domains, URLs "
                        "and payload hashes, with the malware family and the reporter's confidence.",
            options={"columns": _THREATFOX_COLUMNS, "value": "ioc_value", "type": "ioc_type",
                     "type_map": {"ip:port": "ipv4", "domain": "domain", "url": "url", "md5_hash": "md5",
                                  "sha1_hash": "sha1", "sha256_hash": "sha256"},
                     "first_seen": "first_seen_utc", "last_seen": "last_seen_utc",
                     "confidence": "confidence_level", "tags": ["threat_type", "tags"], "description": "reference",
                     "malware": "malware_printable", "tags_all": ["threatfox"], "tlp": "clear"}),
        Preset(
            name="et-compromised-ips", title="Emerging Threats compromised IPs", format="lines",
            url="https://rules.emergingthreats.net/blockrules/compromised-ips.txt",
            description="Proofpoint Emerging Threats' list of IP addresses of known compromised hosts, "
                        "one per line.",
            options={"type": "ipv4", "tags_all": ["emerging-threats", "compromised"], "tlp": "clear"}),
        Preset(
            name="otx", title="AlienVault OTX (subscribed pulses)", format="otx",
            url="https://otx.alienvault.com/api/v1/pulses/subscribed",
            description="The pulses of the OTX users and groups the account follows, a page at a time; needs "
                        "the account's API key.",
            options={}, api_key_header="X-OTX-API-KEY"),
    ]


def presets() -> dict[str, Preset]:
    """Every preset by name."""
    return {entry.name: entry for entry in _catalogue()}


def preset(name: str) -> Preset:
    """The preset called ``name``; ``BadInput`` naming the presets there are when there is none."""
    known = presets()
    found = known.get(name.strip().lower())
    if found is None:
        raise BadInput(f"no feed preset {name!r}; the presets are {', '.join(sorted(known))}",
                       errors=[{"field": "preset", "message": f"one of {', '.join(sorted(known))}"}])
    return found
