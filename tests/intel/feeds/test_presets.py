"""Feed presets: each public feed's published layout, as the provider writes it (comment header and
all), reads into the right values, types, tags and dates."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.presets import preset, presets
from vigil.intel.indicators import IndicatorType, ItemError, ParsedIndicator, ParsedItem, Related

URLHAUS = """\
################################################################
# abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #
# Last updated: 2024-01-15 10:06:03 (UTC)                      #
#                                                              #
# Terms Of Use: https://urlhaus.abuse.ch/api/                  #
# For questions please contact urlhaus [at] abuse.ch           #
################################################################
#
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
"2788345","2024-01-15 10:05:09","http://117.211.211.208:43130/i","online","2024-01-15 10:05:09",\
"malware_download","32-bit,elf,mips,Mozi","https://urlhaus.abuse.ch/url/2788345/","geenensp"
"2788344","2024-01-15 10:04:55","https://cdn-files.example/load/setup.zip","offline","",\
"malware_download","None","https://urlhaus.abuse.ch/url/2788344/","abuse_ch"
"""

FEODO = """\
################################################################
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #
# Last updated: 2024-01-15 10:04:07 UTC                        #
#                                                              #
# Terms Of Use: https://feodotracker.abuse.ch/blocklist/       #
# For questions please contact feodotracker [at] abuse.ch      #
################################################################
#
# "first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
"2021-01-17 07:44:46","51.178.161.32","4643","online","2024-01-15","Dridex"
"2023-12-20 14:12:03","162.243.103.246","8080","offline","2024-01-10","Pikabot"
# Number of entries: 2
"""

THREATFOX = """\
################################################################
# ThreatFox IOCs: Recent                                       #
# Last updated: 2024-01-15 10:05:11 UTC                        #
#                                                              #
# Terms Of Use: https://threatfox.abuse.ch/faq/#tos            #
# For questions please contact threatfox [at] abuse.ch         #
################################################################
#
# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias","malware_printable",\
"last_seen_utc","confidence_level","reference","tags","anonymous","reporter"
"2024-01-15 10:00:25", "1223456", "45.95.147.236:4444", "ip:port", "botnet_cc", "win.asyncrat", "None", \
"AsyncRAT", "", "100", "None", "AsyncRAT,RAT", "0", "abuse_ch"
"2024-01-15 09:58:10", "1223455", "update-check.example", "domain", "botnet_cc", "win.cobalt_strike", \
"Agentemis,BEACON,CobaltStrike", "Cobalt Strike", "2024-01-15 10:02:00", "75", \
"https://example.org/cs-beacon-analysis", "CobaltStrike,cs-watermark-987654321", "0", "drb_ra"
"2024-01-15 09:55:01", "1223454", "http://update-check.example/pixel.gif", "url", "botnet_cc", \
"win.cobalt_strike", "None", "Cobalt Strike", "", "50", "None", "None", "0", "drb_ra"
"2024-01-15 09:50:00", "1223453", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", \
"sha256_hash", "payload", "win.asyncrat", "None", "AsyncRAT", "", "80", "None", "exe", "0", "abuse_ch"
"2024-01-15 09:49:00", "1223452", "a1b2c3", "md5_hash", "payload", "win.asyncrat", "None", "AsyncRAT", "", \
"80", "None", "None", "0", "abuse_ch"
"""

ET_COMPROMISED = """\
1.34.49.210
2.56.57.211
5.181.80.120
"""


def read(name: str, text: str) -> list[ParsedItem]:
    chosen = preset(name)
    return list(feed_parsers()[chosen.format].parse(io.BytesIO(text.encode()), chosen.options))


def indicators(items: list[ParsedItem]) -> list[ParsedIndicator]:
    return [item for item in items if isinstance(item, ParsedIndicator)]


def test_every_preset_names_an_installed_format_that_accepts_its_options() -> None:
    parsers = feed_parsers()
    for name, entry in presets().items():
        assert entry.name == name and entry.url.startswith("https://") and entry.description
        parser = parsers[entry.format]
        empty = b"{}" if entry.format == "otx" else b""
        if entry.format == "otx":
            with pytest.raises(BadInput, match="OTX"):  # its options are fine; an empty object is no pulse
                list(parser.parse(io.BytesIO(empty), entry.options))
        else:
            assert list(parser.parse(io.BytesIO(empty), entry.options)) == []


def test_urlhaus() -> None:
    items = read("urlhaus", URLHAUS)
    first, second = indicators(items)
    assert (first.type, first.value) == (IndicatorType.URL, "http://117.211.211.208:43130/i")
    assert first.first_seen == datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)
    assert first.last_seen == datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)
    assert first.tags == ("urlhaus", "malware_download", "32-bit", "elf", "mips", "Mozi")
    assert first.description == "https://urlhaus.abuse.ch/url/2788345/"
    assert first.tlp == "clear"
    assert first.position == "line 10"
    assert second.value == "https://cdn-files.example/load/setup.zip"
    assert second.last_seen is None and second.tags == ("urlhaus", "malware_download")


def test_feodo_tracker() -> None:
    items = read("feodotracker", FEODO)
    assert not [item for item in items if isinstance(item, ItemError)]
    first, second = indicators(items)
    assert (first.type, first.value) == (IndicatorType.IPV4, "51.178.161.32")
    assert first.first_seen == datetime(2021, 1, 17, 7, 44, 46, tzinfo=UTC)
    assert first.last_seen == datetime(2024, 1, 15, tzinfo=UTC)
    assert first.related == (Related("malware", "Dridex"),)
    assert first.tags == ("feodotracker", "botnet-c2")
    assert second.related == (Related("malware", "Pikabot"),)


def test_threatfox() -> None:
    items = read("threatfox", THREATFOX)
    found = indicators(items)
    assert [(item.type, item.value) for item in found] == [
        (IndicatorType.IPV4, "45.95.147.236"), (IndicatorType.DOMAIN, "update-check.example"),
        (IndicatorType.URL, "http://update-check.example/pixel.gif"),
        (IndicatorType.SHA256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    ip, domain, url, payload = found
    assert ip.tags == ("threatfox", "botnet_cc", "AsyncRAT", "RAT")
    assert ip.confidence == 100 and ip.last_seen is None and ip.description == ""
    assert ip.related == (Related("malware", "AsyncRAT"),)
    assert domain.first_seen == datetime(2024, 1, 15, 9, 58, 10, tzinfo=UTC)
    assert domain.last_seen == datetime(2024, 1, 15, 10, 2, tzinfo=UTC)
    assert domain.confidence == 75
    assert domain.description == "https://example.org/cs-beacon-analysis"
    assert domain.related == (Related("malware", "Cobalt Strike"),)
    assert url.tags == ("threatfox", "botnet_cc")
    assert payload.tags == ("threatfox", "payload", "exe")
    [error] = [item for item in items if isinstance(item, ItemError)]
    assert error.position == "line 14" and "MD5" in error.reason


def test_emerging_threats_compromised_ips() -> None:
    found = indicators(read("et-compromised-ips", ET_COMPROMISED))
    assert [item.value for item in found] == ["1.34.49.210", "2.56.57.211", "5.181.80.120"]
    assert all(item.type is IndicatorType.IPV4 and item.tags == ("emerging-threats", "compromised") for item in found)


def test_otx_preset() -> None:
    entry = preset("otx")
    assert entry.api_key_header == "X-OTX-API-KEY"
    page = {"results": [{"id": "1", "name": "pulse", "tags": ["t"], "indicators": [
        {"id": 1, "indicator": "203.0.113.8", "type": "IPv4", "is_active": 1}]}]}
    [item] = indicators(read("otx", json.dumps(page)))
    assert (item.value, item.tags) == ("203.0.113.8", ("t",))


def test_an_unknown_preset_lists_those_there_are() -> None:
    with pytest.raises(BadInput) as refused:
        preset("spamhaus-drop")
    assert "urlhaus" in refused.value.detail and "threatfox" in refused.value.detail


def test_presets_given_out_are_not_shared() -> None:
    preset("threatfox").options["type_map"]["ip:port"] = "ipv6"
    assert preset("threatfox").options["type_map"]["ip:port"] == "ipv4"
