"""STIX patterns: which are lists of values, and what the others say about one event.

In pySigma's style: an inline pattern, an inline event, the exact result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from vigil.intel.feeds.stix_patterns import ComplexPattern, PatternError, SimplePattern, compile_pattern
from vigil.intel.indicators import IndicatorType as T

SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def simple(text: str) -> SimplePattern:
    compiled = compile_pattern(text)
    assert isinstance(compiled, SimplePattern), compiled
    return compiled


def complex_(text: str) -> ComplexPattern:
    compiled = compile_pattern(text)
    assert isinstance(compiled, ComplexPattern), compiled
    return compiled


# --- simple patterns: one indicator per value -------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "expected"), [
    ("[ipv4-addr:value = '198.51.100.7']", [(T.IPV4, "198.51.100.7")]),
    ("[ipv4-addr:value = '198.51.100.0/24']", [(T.CIDR, "198.51.100.0/24")]),
    ("[ipv6-addr:value = '2001:0db8:0000::0001']", [(T.IPV6, "2001:db8::1")]),
    ("[ipv6-addr:value = '2001:db8::/32']", [(T.CIDR, "2001:db8::/32")]),
    ("[domain-name:value = 'Evil.Example.COM']", [(T.DOMAIN, "evil.example.com")]),
    ("[url:value = 'hxxp://evil[.]example.com/a?b=1']", [(T.URL, "http://evil.example.com/a?b=1")]),
    (f"[file:hashes.MD5 = '{MD5.upper()}']", [(T.MD5, MD5)]),
    (f"[file:hashes.'SHA-1' = '{SHA1}']", [(T.SHA1, SHA1)]),
    (f"[file:hashes.SHA1 = '{SHA1}']", [(T.SHA1, SHA1)]),
    (f"[file:hashes.'SHA-256' = '{SHA256}']", [(T.SHA256, SHA256)]),
    (f"[file:hashes.SHA256 = '{SHA256}']", [(T.SHA256, SHA256)]),
    ("[file:name = 'Invoice.EXE']", [(T.FILENAME, "invoice.exe")]),
    ("[email-addr:value = 'Phish@Example.com']", [(T.EMAIL, "phish@example.com")]),
    ("[email-message:from_ref.value = 'ceo@example.com']", [(T.EMAIL, "ceo@example.com")]),
    ("[network-traffic:dst_ref.value = '203.0.113.9']", [(T.IPV4, "203.0.113.9")]),
    ("[network-traffic:src_ref.value = '2001:db8::2']", [(T.IPV6, "2001:db8::2")]),
    ("[network-traffic:dst_ref.value = 'c2.example.net']", [(T.DOMAIN, "c2.example.net")]),
    ("[ipv4-addr:value IN ('198.51.100.1', '198.51.100.2')]", [(T.IPV4, "198.51.100.1"), (T.IPV4, "198.51.100.2")]),
    ("[domain-name:value = 'a.example.com' OR ipv4-addr:value = '192.0.2.1']",
     [(T.DOMAIN, "a.example.com"), (T.IPV4, "192.0.2.1")]),
    ("[domain-name:value = 'a.example.com'] OR [url:value = 'https://b.example.com/x']",
     [(T.DOMAIN, "a.example.com"), (T.URL, "https://b.example.com/x")]),
    ("[(ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.1')]", [(T.IPV4, "192.0.2.1")]),
    ("[file:name = 'it\\'s.doc']", [(T.FILENAME, "it's.doc")]),
])
def test_a_list_of_values_is_one_indicator_per_value(pattern: str, expected: list[tuple[T, str]]) -> None:
    compiled = simple(pattern)
    assert list(compiled.indicators) == expected
    assert compiled.rejected == ()
    assert compiled.text == pattern


def test_a_value_that_is_not_what_its_path_says_is_rejected_with_the_reason_and_the_others_kept() -> None:
    compiled = simple("[domain-name:value = 'domain autuo.xicp.net' OR ipv4-addr:value = '60.10.1.115']")
    assert compiled.indicators == ((T.IPV4, "60.10.1.115"),)
    assert len(compiled.rejected) == 1
    raw, reason = compiled.rejected[0]
    assert raw == "domain autuo.xicp.net"
    assert reason.startswith("domain-name:value: ") and "is not a domain" in reason


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '198.51.100.7' AND ipv4-addr:value = '198.51.100.8']",
    "[ipv4-addr:value != '198.51.100.7']",
    "[ipv4-addr:value NOT = '198.51.100.7']",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "[domain-name:value LIKE '%.example.com']",
    "[domain-name:value MATCHES '^evil']",
    "[process:command_line = 'whoami']",
    "[ipv4-addr:value = '198.51.100.7'] AND [domain-name:value = 'a.example.com']",
    "[ipv4-addr:value = '198.51.100.7'] FOLLOWEDBY [domain-name:value = 'a.example.com']",
    "[ipv4-addr:value = '198.51.100.7'] WITHIN 60 SECONDS",
    "[ipv4-addr:value = '198.51.100.7'] REPEATS 3 TIMES",
    "[ipv4-addr:value = '198.51.100.7'] START t'2024-01-01T00:00:00Z' STOP t'2024-02-01T00:00:00Z'",
    "[network-traffic:dst_port = 443]",
    "[ipv4-addr:value IN ('198.51.100.7', 3)]",
])
def test_anything_more_than_a_list_of_values_is_a_pattern(pattern: str) -> None:
    assert complex_(pattern).text == pattern


@pytest.mark.parametrize(("pattern", "reason"), [
    ("", "empty"),
    ("   ", "empty"),
    ("ipv4-addr:value = '1.2.3.4'", "not a valid STIX 2.1 pattern"),
    ("[ipv4-addr:value = '1.2.3.4'", "not a valid STIX 2.1 pattern"),
    ("[ipv4-addr:value = 1.2.3.4]", "not a valid STIX 2.1 pattern"),
    ("[ipv4-addr:value = '1.2.3.4'] garbage", "not a valid STIX 2.1 pattern"),
    ("[file:hashes.MD5 = 'not-a-hash']", "is not a valid MD5 hash"),
    ("[file:hashes.'SHA-256' = 'abc']", "is not a valid SHA-256 hash"),
    ("[file:name = 'a'] REPEATS 2 TIMES REPEATS 3 TIMES", "Duplicate qualifier type encountered: REPEATS"),
    ("[process:command_line MATCHES '(unclosed']", "is not a regular expression"),
])
def test_what_is_not_a_valid_pattern_raises_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(PatternError) as raised:
        compile_pattern(pattern)
    assert reason in str(raised.value)


@pytest.mark.parametrize("pattern", [
    "[ipv4-addr:value = '198.51.100.7']",
    "  [ ipv4-addr:value='198.51.100.7' ]  ",
    "[ipv4-addr:value = 'not an address']",
    "[domain-name:value = 'Evil.Example.COM']",
    f"[file:hashes.'SHA-256' = '{SHA256.upper()}']",
    f"[file:hashes.MD5 = '{MD5}']",
    "[file:hashes.MD5 = 'abc']",
    "[network-traffic:dst_ref.value = 'c2.example.net']",
    "[email-message:from_ref.value = 'ceo@example.com']",
    "[file:name = '']",
])
def test_the_shortcut_for_one_value_gives_what_the_full_parse_gives(pattern: str) -> None:
    def outcome(shortcut: bool) -> object:
        try:
            return compile_pattern(pattern, shortcut=shortcut)
        except PatternError as exc:
            return str(exc)
    assert outcome(True) == outcome(False)


def test_stix_2_0_patterns_are_read_with_the_2_0_grammar() -> None:
    assert simple_20("[ipv4-addr:value = '192.0.2.1']").indicators == ((T.IPV4, "192.0.2.1"),)
    with pytest.raises(PatternError, match="has no pattern grammar"):
        compile_pattern("[ipv4-addr:value = '192.0.2.1']", version="1.0")


def simple_20(text: str) -> SimplePattern:
    compiled = compile_pattern(text, version="2.0", shortcut=False)
    assert isinstance(compiled, SimplePattern)
    return compiled


# --- patterns on one event -----------------------------------------------------------------------------------

SYSMON_PROCESS = {
    "EventID": 1, "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "CommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgA", "ProcessId": 4242,
    "ParentImage": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
    "ParentCommandLine": "\"WINWORD.EXE\" /n invoice.docm", "User": "CORP\\alice",
    "Hashes": f"MD5={MD5.upper()},SHA256={SHA256.upper()},IMPHASH=00000000000000000000000000000000",
}
ECS_CONNECTION = {
    "source.ip": "10.1.2.3", "source.port": 51514, "destination.ip": "203.0.113.9", "destination.port": 443,
    "network.transport": "tcp", "user.name": "alice", "@timestamp": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
}


@pytest.mark.parametrize(("pattern", "event", "expected"), [
    # equality, on each family of field names
    ("[ipv4-addr:value = '203.0.113.9']", ECS_CONNECTION, True),
    ("[ipv4-addr:value = '203.0.113.10']", ECS_CONNECTION, False),
    ("[network-traffic:dst_ref.value = '203.0.113.9' AND network-traffic:dst_port = 443]", ECS_CONNECTION, True),
    ("[network-traffic:src_ref.value = '203.0.113.9']", ECS_CONNECTION, False),
    ("[network-traffic:dst_ref.value = '203.0.113.9']", {"DestinationIp": "203.0.113.9"}, True),
    ("[network-traffic:dst_ref.value = '203.0.113.9']", {"id.resp_h": "203.0.113.9", "id.resp_p": 443}, True),
    ("[network-traffic:dst_ref.value = '203.0.113.9']", {"dest_ip": "203.0.113.9", "dest_port": 443}, True),
    ("[network-traffic:dst_port = 443]", {"id.resp_p": "443"}, True),
    ("[ipv6-addr:value = '2001:db8::1']", {"source.ip": "2001:0db8:0:0:0:0:0:1"}, True),
    ("[ipv4-addr:value = '203.0.113.9']", {"related": {"ip": ["10.0.0.1", "203.0.113.9"]}}, True),
    ("[process:command_line = 'whoami']", {"process.command_line": "whoami"}, True),
    ("[process:command_line = 'whoami']", {"process": {"command_line": "whoami"}}, True),
    ("[process:command_line = 'whoami']", {"CommandLine": "WHOAMI"}, False),
    ("[process:name = 'powershell.exe']", SYSMON_PROCESS, True),
    ("[process:parent_ref.name = 'WINWORD.EXE']", SYSMON_PROCESS, True),
    ("[process:parent_ref.name = 'winword.exe']", SYSMON_PROCESS, False),
    ("[process:pid = 4242]", SYSMON_PROCESS, True),
    ("[user-account:account_login = 'CORP\\\\alice']", SYSMON_PROCESS, True),
    ("[user-account:account_login = 'alice']", ECS_CONNECTION, True),
    ("[file:name = 'evil.dll']", {"TargetFilename": "C:\\Users\\alice\\AppData\\evil.dll"}, True),
    ("[file:name = 'evil.dll']", {"file.name": "evil.dll"}, True),
    ("[file:parent_directory_ref.path = 'C:\\\\Users\\\\alice\\\\AppData']",
     {"TargetFilename": "C:\\Users\\alice\\AppData\\evil.dll"}, True),
    ("[windows-registry-key:key = 'HKLM\\\\Software\\\\Run']", {"TargetObject": "HKLM\\Software\\Run"}, True),
    ("[windows-registry-key:key = 'HKLM\\\\Software\\\\Run']", {"registry.path": "HKLM\\Software\\Run"}, True),
    ("[windows-registry-key:values[*].name = 'Updater']", {"TargetObject": "HKLM\\Software\\Run\\Updater"}, True),
    ("[url:value = 'http://evil.example.com/a']", {"url.original": "http://evil.example.com/a"}, True),
    ("[url:value = 'http://evil.example.com/a']", {"http.url": "http://evil.example.com/A"}, False),
    ("[email-message:subject = 'Invoice']", {"email.subject": "Invoice"}, True),
    # hashes and domain names compare without regard to case; everything else with it
    (f"[file:hashes.'SHA-256' = '{SHA256}']", SYSMON_PROCESS, True),
    (f"[file:hashes.MD5 = '{MD5}']", {"file.hash.md5": MD5.upper()}, True),
    (f"[file:hashes.SHA1 = '{SHA1.upper()}']", {"file": {"hash": {"sha1": SHA1}}}, True),
    (f"[file:hashes.'SHA-256' = '{SHA256}']", {"sha256": SHA256}, True),
    (f"[file:hashes.'SHA-256' = '{SHA256}']", {"Hashes": "MD5=00,IMPHASH=11"}, False),
    ("[domain-name:value = 'evil.example.com']", {"dns.question.name": "EVIL.Example.com"}, True),
    ("[domain-name:value = 'evil.example.com']", {"QueryName": "evil.example.com"}, True),
    ("[domain-name:value = 'evil.example.com']", {"query": "evil.example.com"}, True),
    ("[domain-name:value = 'evil.example.com']", {"dns.question.name": "www.evil.example.com"}, False),
    # != and NOT: a property the event does not carry makes the comparison false either way
    ("[process:name != 'cmd.exe']", SYSMON_PROCESS, True),
    ("[process:name != 'powershell.exe']", SYSMON_PROCESS, False),
    ("[process:name NOT = 'cmd.exe']", SYSMON_PROCESS, True),
    ("[process:name NOT = 'cmd.exe']", ECS_CONNECTION, False),
    ("[process:name != 'cmd.exe']", ECS_CONNECTION, False),
    ("[EXISTS process:command_line]", SYSMON_PROCESS, True),
    ("[EXISTS process:command_line]", ECS_CONNECTION, False),
    ("[NOT EXISTS process:command_line]", ECS_CONNECTION, True),
    # ordering: numbers (also written as text by the source), text, timestamps
    ("[network-traffic:dst_port > 442]", ECS_CONNECTION, True),
    ("[network-traffic:dst_port >= 443]", ECS_CONNECTION, True),
    ("[network-traffic:dst_port < 443]", ECS_CONNECTION, False),
    ("[network-traffic:dst_port <= 443]", {"DestinationPort": "443"}, True),
    ("[network-traffic:dst_port < 1024]", {"DestinationPort": "http"}, False),
    ("[user-account:account_login > 'aaron']", ECS_CONNECTION, True),
    ("[network-traffic:dst_port NOT > 1024]", ECS_CONNECTION, True),
    # IN
    ("[network-traffic:dst_port IN (80, 443, 8443)]", ECS_CONNECTION, True),
    ("[network-traffic:dst_port IN (80, 8080)]", ECS_CONNECTION, False),
    ("[network-traffic:dst_port NOT IN (80, 8080)]", ECS_CONNECTION, True),
    ("[process:name IN ('cmd.exe', 'powershell.exe')]", SYSMON_PROCESS, True),
    ("[network-traffic:protocols[*] IN ('udp', 'tcp')]", ECS_CONNECTION, True),
    # LIKE (SQL: % and _, the whole value) and MATCHES (a regular expression anywhere)
    ("[process:command_line LIKE 'powershell.exe %-enc%']", SYSMON_PROCESS, True),
    ("[process:command_line LIKE '%-ENC%']", SYSMON_PROCESS, False),
    ("[process:command_line LIKE 'powershell']", SYSMON_PROCESS, False),
    ("[process:name LIKE 'powershel_.exe']", SYSMON_PROCESS, True),
    ("[domain-name:value LIKE '%.EXAMPLE.com']", {"dns.question.name": "a.example.com"}, True),
    ("[process:command_line MATCHES '-enc [A-Za-z0-9+/=]+$']", SYSMON_PROCESS, True),
    ("[process:command_line MATCHES '^-enc']", SYSMON_PROCESS, False),
    ("[process:command_line NOT MATCHES 'mimikatz']", SYSMON_PROCESS, True),
    ("[domain-name:value MATCHES '^EVIL\\\\.']", {"QueryName": "evil.example.com"}, True),
    # ISSUBSET / ISSUPERSET: networks
    ("[ipv4-addr:value ISSUBSET '203.0.113.0/24']", {"destination.ip": "203.0.113.9"}, True),
    ("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", {"destination.ip": "203.0.113.9"}, False),
    ("[ipv4-addr:value ISSUBSET '2001:db8::/32']", {"destination.ip": "203.0.113.9"}, False),
    ("[ipv6-addr:value ISSUBSET '2001:db8::/32']", {"source.ip": "2001:db8::5"}, True),
    ("[ipv4-addr:value ISSUPERSET '203.0.113.9']", {"destination.ip": "203.0.113.0/24"}, True),
    ("[ipv4-addr:value = '203.0.113.0/24']", {"destination.ip": "203.0.113.9"}, True),  # as its cidr indicator
    ("[ipv4-addr:value = '203.0.113.0/24']", {"destination.ip": "203.0.114.9"}, False),
    ("[ipv4-addr:value = '203.0.113.9']", {"destination.ip": "203.0.113.0/24"}, False),
    ("[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']", {"destination.ip": "203.0.113.9"}, True),
    # AND / OR inside an observation and between observations, on the same event
    ("[process:name = 'powershell.exe' AND process:parent_ref.name = 'WINWORD.EXE']", SYSMON_PROCESS, True),
    ("[process:name = 'powershell.exe' AND process:parent_ref.name = 'explorer.exe']", SYSMON_PROCESS, False),
    ("[process:name = 'cmd.exe' OR process:name = 'powershell.exe']", SYSMON_PROCESS, True),
    ("[process:name = 'cmd.exe' OR (process:pid = 4242 AND process:name = 'powershell.exe')]", SYSMON_PROCESS, True),
    ("[process:name = 'powershell.exe'] AND [process:pid = 4242]", SYSMON_PROCESS, True),
    ("[process:name = 'powershell.exe'] AND [process:pid = 1]", SYSMON_PROCESS, False),
    ("[process:name = 'cmd.exe'] OR [process:pid = 4242]", SYSMON_PROCESS, True),
    # timestamps and booleans
    ("[x509-certificate:serial_number = '01']", {"tls.server.x509.serial_number": "01"}, True),
    ("[email-message:subject = 'true']", {"email.subject": "true"}, True),
])
def test_a_pattern_on_one_event(pattern: str, event: dict[str, Any], expected: bool) -> None:
    assert compile_pattern(pattern).matches(event) is expected


@pytest.mark.parametrize(("pattern", "word"), [
    ("[process:name = 'powershell.exe'] FOLLOWEDBY [process:pid = 4242]", "FOLLOWEDBY"),
    ("[process:name = 'powershell.exe'] WITHIN 300 SECONDS", "WITHIN"),
    ("[process:name = 'powershell.exe'] REPEATS 5 TIMES", "REPEATS"),
    ("[process:name = 'powershell.exe'] START t'2024-01-01T00:00:00Z' STOP t'2030-01-01T00:00:00Z'", "START"),
    ("([process:name = 'powershell.exe'] REPEATS 2 TIMES) OR [process:pid = 1]", "REPEATS"),
])
def test_what_needs_several_events_is_not_live_and_its_comparisons_are_still_evaluated(pattern: str,
                                                                                       word: str) -> None:
    compiled = complex_(pattern)
    assert compiled.live is False
    assert word in compiled.reason
    assert compiled.matches(SYSMON_PROCESS) is True
    assert compiled.matches(ECS_CONNECTION) is False


def test_followedby_on_one_event_needs_both_sides() -> None:
    compiled = complex_("[process:name = 'powershell.exe'] FOLLOWEDBY [process:pid = 1]")
    assert compiled.matches(SYSMON_PROCESS) is False


def test_a_pattern_on_one_event_is_live() -> None:
    compiled = complex_("[process:name = 'powershell.exe' AND process:pid = 4242]")
    assert (compiled.live, compiled.reason) == (True, "")
    assert compiled.paths == ("process:name", "process:pid")
    assert compiled.unmapped == ()


def test_a_path_no_event_field_carries_is_listed_and_never_matches() -> None:
    compiled = complex_("[email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\\\.exe$']")
    assert compiled.unmapped == ("email-message:body_multipart[*].body_raw_ref.name",)
    assert compiled.matches({"email-message:body_multipart[*].body_raw_ref.name": "Final Report.exe"}) is False


def test_a_timestamp_constant_compares_with_the_events_time() -> None:
    compiled = complex_("[file:created > t'2024-01-01T00:00:00Z']")
    assert compiled.matches({"file.created": "2024-05-01T00:00:00Z"}) is False  # file:created maps to no field
    compiled = complex_("[process:command_line = 'x'] START t'2024-01-01T00:00:00Z' STOP t'2024-02-01T00:00:00Z'")
    assert compiled.matches({"CommandLine": "x"}) is True


@pytest.mark.parametrize("event", [
    {},
    {"CommandLine": None},
    {"CommandLine": {"nested": "object"}},
    {"CommandLine": ["powershell", 3, None, {"a": 1}]},
    {"CommandLine": b"\x00\xff"},
    {"CommandLine": float("nan")},
    {"DestinationPort": float("inf")},
    {"Hashes": 12},
    {"TargetFilename": 7},
    {"destination.ip": "not-an-ip"},
    {"source": "not a mapping"},
    {"CommandLine": True},
])
def test_no_exception_escapes_matches_whatever_the_event_holds(event: dict[str, Any]) -> None:
    patterns = [
        "[process:command_line LIKE '%x%' OR process:command_line MATCHES 'x' OR process:command_line > 'a']",
        "[network-traffic:dst_port >= 443 OR network-traffic:dst_port = 443]",
        f"[file:hashes.'SHA-256' = '{SHA256}' OR file:name = 'x' OR file:parent_directory_ref.path = 'x']",
        "[ipv4-addr:value ISSUBSET '10.0.0.0/8' OR ipv4-addr:value ISSUPERSET '10.0.0.1']",
        "[network-traffic:src_ref.value = 'x' AND network-traffic:src_port IN (1, 'a', true)]",
    ]
    for pattern in patterns:
        assert complex_(pattern).matches(event) in (True, False)
