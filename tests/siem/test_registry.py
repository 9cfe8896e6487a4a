"""The parser registry: entry points loaded once, lookup by name, format detection most specific first."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from vigil.core.errors import BadInput
from vigil.siem.parsers import registry
from vigil.siem.parsers.registry import (
    UnknownParser,
    broken_parsers,
    detect_format,
    detection_order,
    load_parsers,
    parser,
)

from .test_suricata_parser import ALERT, DNS_QUERY
from .test_zeek_parser import CONN, DNS
from .windows_samples import SECURITY_4624, SYSMON_1, WINLOGBEAT_4624

MINE = ("json", "windows_json", "winlogbeat", "suricata", "zeek")
TEXT_MODULES = ("syslog", "cef", "leef", "access", "linux_auth")
text_parsers_present = all(
    importlib.util.find_spec(f"vigil.siem.parsers.{module}") is not None for module in TEXT_MODULES
)


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    load_parsers.cache_clear()
    yield
    load_parsers.cache_clear()


def test_json_family_parsers_load_under_their_names() -> None:
    loaded = load_parsers()
    for name in MINE:
        assert loaded.plugins[name].name == name
        assert parser(name) is loaded.plugins[name]
    assert load_parsers() is loaded  # loaded once
    assert not [b for b in broken_parsers() if b.name in MINE]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownParser) as caught:
        parser("jsonn")
    assert isinstance(caught.value, BadInput)
    message = str(caught.value)
    assert message.startswith("unknown log format 'jsonn'; known formats: ")
    for name in MINE:
        assert name in message


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (orjson.dumps(WINLOGBEAT_4624), "winlogbeat"),
        (orjson.dumps(SYSMON_1), "windows_json"),
        (orjson.dumps(SECURITY_4624) + b"\n" + orjson.dumps(SYSMON_1), "windows_json"),
        (orjson.dumps(ALERT), "suricata"),
        (b"\n\n" + orjson.dumps(DNS_QUERY) + b"\n", "suricata"),
        (orjson.dumps(CONN), "zeek"),
        (b"[" + orjson.dumps(DNS) + b",\n" + orjson.dumps(CONN) + b"]", "zeek"),
        (b'{"@timestamp": "2026-01-02T10:00:00Z", "message": "hello"}', "json"),
        (b'[{"a": 1}, {"a": 2}]', "json"),
    ],
)
def test_detects_json_family(sample: bytes, expected: str) -> None:
    found = detect_format(sample)
    assert found is not None
    assert found.name == expected


def test_detection_order_is_specific_first() -> None:
    names = [p.name for p in detection_order()]
    mine = [name for name in names if name in MINE]
    assert mine == ["winlogbeat", "windows_json", "suricata", "zeek", "json"]
    if "syslog" in names:
        assert names[-1] == "syslog"


def test_nothing_detected_for_empty_or_unclaimed_input() -> None:
    only_json = {name: parser(name) for name in MINE}
    assert detect_format(b"") is None
    assert detect_format(b"   \n\n") is None
    assert detect_format(b"plain words", only_json) is None
    assert detect_format(b"\x00\xff binary", only_json) is None


@pytest.mark.skipif(not text_parsers_present, reason="the text-format parsers are not written yet")
@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"<34>1 2026-01-02T10:00:00Z host app 123 ID47 - hello", "syslog"),
        (b"<134>Jan  2 10:00:00 fw CEF:0|Vendor|Product|1.0|100|Port scan|5|src=10.0.0.1", "syslog"),
        (b"CEF:0|Vendor|Product|1.0|100|Port scan|5|src=10.0.0.1", "cef"),
        (b"LEEF:1.0|Vendor|Product|1.0|4625|src=10.0.0.1\tdst=10.0.0.2", "leef"),
        (b"Jan  2 10:00:00 web01 sshd[811]: Failed password for root from 203.0.113.5 port 4022 ssh2", "linux_auth"),
        (b'203.0.113.5 - - [02/Jan/2026:10:00:00 +0800] "GET / HTTP/1.1" 200 512 "-" "curl/8"', "web_access"),
        (orjson.dumps(WINLOGBEAT_4624), "winlogbeat"),
    ],
)
def test_detects_text_formats(sample: bytes, expected: str) -> None:
    found = detect_format(sample)
    assert found is not None
    assert found.name == expected


def test_a_broken_plugin_is_reported_and_the_others_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    dist = tmp_path / "vigil_broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vigil-broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[vigil.parsers]\nbroken_fmt = vigil_no_such_module_xyz:Parser\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = {b.name: b for b in broken_parsers()}
    assert broken["broken_fmt"].reason.startswith("ModuleNotFoundError: No module named 'vigil_no_such_module_xyz'")
    assert parser("json").name == "json"
    with pytest.raises(UnknownParser) as caught:
        parser("broken_fmt")
    assert "'broken_fmt' is installed but failed to load: ModuleNotFoundError" in str(caught.value)
    assert registry.load_parsers.cache_info().currsize == 1
