"""Format detection among the text parsers: each sniff claims its own records and not the others'."""

from __future__ import annotations

import pytest

from vigil.siem.parsers.access import WebAccessParser
from vigil.siem.parsers.base import Parser, detect
from vigil.siem.parsers.cef import CefParser
from vigil.siem.parsers.leef import LeefParser
from vigil.siem.parsers.linux_auth import LinuxAuthParser
from vigil.siem.parsers.syslog import SyslogParser

from . import test_parser_access, test_parser_cef, test_parser_leef, test_parser_linux_auth, test_parser_syslog

PARSERS: list[Parser] = [LinuxAuthParser(), CefParser(), LeefParser(), WebAccessParser(), SyslogParser()]
JSON_LINE = b'{"@timestamp": "2026-03-10T03:58:01Z", "message": "Mar 10 11:58:01 CEF:0|a|b|c|d|e|f|g"}'


def claimed_by(sample: bytes) -> set[str]:
    return {parser.name for parser in PARSERS if parser.sniff(sample)}


@pytest.mark.parametrize("sample", test_parser_cef.SAMPLES + test_parser_leef.SAMPLES + test_parser_access.SAMPLES)
def test_cef_leef_and_access_records_have_one_claimant(sample: bytes) -> None:
    expected = "cef" if sample.startswith(b"CEF:") else "leef" if sample.startswith(b"LEEF:") else "web_access"
    assert claimed_by(sample) == {expected}


@pytest.mark.parametrize("sample", test_parser_linux_auth.SAMPLES)
def test_auth_log_lines_are_auth_log_and_also_valid_syslog(sample: bytes) -> None:
    assert claimed_by(sample) == {"linux_auth", "syslog"}
    assert detect(PARSERS, sample) is PARSERS[0]  # the more specific parser first in the order of preference


def test_syslog_with_a_priority_is_syslog() -> None:
    assert claimed_by(test_parser_syslog.RFC3164) == {"syslog"}
    assert claimed_by(test_parser_syslog.RFC5424_SD) == {"syslog"}
    assert claimed_by(test_parser_syslog.CEF_OVER_SYSLOG) == {"syslog"}


def test_json_and_junk_are_claimed_by_none() -> None:
    assert claimed_by(JSON_LINE) == set()
    assert claimed_by(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") == set()
    assert claimed_by(b"") == set()


def test_leef_inside_json_is_not_leef() -> None:
    assert claimed_by(b'{"message": "host LEEF:1.0|a|b|c|d|src=1.2.3.4"}') == set()
