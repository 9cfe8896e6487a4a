"""Sigma values: case, wildcards and their escapes, null and empty, numbers, booleans, lists, nested
fields, keywords and very long values, in pySigma's style (inline rule, events, which ones match).

Escapes follow the specification ("Escaping"): ``\\*`` and ``\\?`` are literal wildcard characters, a
backslash not followed by a wildcard is a plain backslash, and ``\\\\`` before a wildcard is a backslash
followed by a real wildcard. Keywords (values without a field) are a full-text search: a keyword
matches when any value of the event contains it.
"""

from __future__ import annotations

import pytest
from tests.detection.sigma_support import hits, sigma

from vigil.detection.sigma import Engine

# --- case ------------------------------------------------------------------------------------------


def test_plain_value_matches_whole_value_ignoring_ascii_case() -> None:
    detection = r"""
        selection:
            Image: 'C:\Windows\System32\cmd.exe'
        condition: selection
    """
    events = {
        "same": {"Image": r"C:\Windows\System32\cmd.exe"},
        "lower": {"Image": r"c:\windows\system32\cmd.exe"},
        "upper": {"Image": r"C:\WINDOWS\SYSTEM32\CMD.EXE"},
        "longer": {"Image": r"C:\Windows\System32\cmd.exe2"},
        "shorter": {"Image": r"C:\Windows\System32\cmd.ex"},
    }
    assert hits(detection, events) == {"same", "lower", "upper"}


def test_case_is_ignored_beyond_ascii() -> None:
    detection = """
        selection:
            TargetUserName:
                - 'ÉLODIE'
                - 'привет'
        condition: selection
    """
    events = {
        "accented_lower": {"TargetUserName": "élodie"},
        "accented_same": {"TargetUserName": "ÉLODIE"},
        "cyrillic_upper": {"TargetUserName": "ПРИВЕТ"},
        "unaccented": {"TargetUserName": "elodie"},
    }
    assert hits(detection, events) == {"accented_lower", "accented_same", "cyrillic_upper"}


def test_a_value_found_verbatim_always_matches() -> None:
    # Greek capital sigma lower-cases to final "ς" at the end of a word and to "σ" inside one: folding the
    # rule value and the event value separately must not make a verbatim occurrence miss.
    detection = """
        selection:
            Description|contains: 'ΟΔΟΣ'
        condition: selection
    """
    events = {
        "word": {"Description": "ΟΔΟΣ"},
        "inside_a_longer_word": {"Description": "ΟΔΟΣΤΡΩΤΗΡΑΣ"},
        "lower_inside": {"Description": "οδοστρωτηρας"},
        "other": {"Description": "ΔΡΟΜΟΣ"},
    }
    assert hits(detection, events) == {"word", "inside_a_longer_word", "lower_inside"}


def test_chinese_values_match_exactly_and_by_contains() -> None:
    detection = """
        exact:
            GroupName: '管理员'
        inside:
            Message|contains: '登录失败'
        condition: exact or inside
    """
    events = {
        "exact": {"GroupName": "管理员"},
        "exact_prefix_only": {"GroupName": "管理"},
        "inside": {"Message": "用户 张三 登录失败 3 次"},
        "other_message": {"Message": "用户 张三 登录成功"},
    }
    assert hits(detection, events) == {"exact", "inside"}


def test_text_event_id_ignores_case() -> None:
    # EventID is no special field to Sigma: a text value compares case-insensitively like any other.
    detection = """
        selection:
            EventID: 'LoginFailed'
        condition: selection
    """
    events = {"same": {"EventID": "LoginFailed"}, "lower": {"EventID": "loginfailed"}, "other": {"EventID": "Login"}}
    assert hits(detection, events) == {"same", "lower"}


# --- wildcards and escapes -------------------------------------------------------------------------


def test_star_matches_any_run_of_characters_including_none() -> None:
    detection = """
        selection:
            Image: '*\\psexe*.exe'
        condition: selection
    """
    events = {
        "psexec": {"Image": r"C:\Tools\PsExec.exe"},
        "psexesvc": {"Image": r"C:\Windows\PSEXESVC.exe"},
        "nothing_between": {"Image": r"C:\Tools\psexe.exe"},
        "no_backslash": {"Image": "psexec.exe"},
        "other_extension": {"Image": r"C:\Tools\psexec.dll"},
    }
    assert hits(detection, events) == {"psexec", "psexesvc", "nothing_between"}


def test_star_spans_newlines() -> None:
    detection = """
        selection:
            ScriptBlockText: 'begin*end'
        condition: selection
    """
    events = {"lines": {"ScriptBlockText": "begin\nmiddle\nend"}, "no_end": {"ScriptBlockText": "begin\n"}}
    assert hits(detection, events) == {"lines"}


def test_question_mark_matches_exactly_one_character() -> None:
    detection = """
        selection:
            Image|endswith: '\\cmd?.exe'
        condition: selection
    """
    events = {
        "one": {"Image": r"C:\x\cmd1.exe"},
        "none": {"Image": r"C:\x\cmd.exe"},
        "two": {"Image": r"C:\x\cmd12.exe"},
    }
    assert hits(detection, events) == {"one"}


def test_escaped_wildcards_are_literal_characters() -> None:
    detection = r"""
        star:
            Comment: 'price\*2'
        question:
            Title: 'really\?'
        condition: star or question
    """
    events = {
        "star": {"Comment": "price*2"},
        "star_as_wildcard": {"Comment": "price x 2"},
        "question": {"Title": "really?"},
        "question_as_wildcard": {"Title": "really!"},
    }
    assert hits(detection, events) == {"star", "question"}


def test_regex_characters_in_plain_values_are_literal() -> None:
    detection = """
        selection:
            Query:
                - 'a.b'
                - '(x)+[y]{2}'
                - '^start$'
                - 'c:\\d+'
        condition: selection
    """
    events = {
        "dot": {"Query": "a.b"},
        "dot_as_any": {"Query": "axb"},
        "group": {"Query": "(x)+[y]{2}"},
        "group_as_regex": {"Query": "xyy"},
        "anchors": {"Query": "^start$"},
        "anchors_as_regex": {"Query": "start"},
        "class": {"Query": "c:\\d+"},
        "class_as_regex": {"Query": "c:12"},
    }
    assert hits(detection, events) == {"dot", "group", "anchors", "class"}


def test_windows_paths_single_and_double_backslashes() -> None:
    # A backslash not followed by a wildcard is plain, written once or twice.
    detection = r"""
        single:
            Image: 'C:\Windows\System32\cmd.exe'
        double:
            ParentImage: 'C:\\Windows\\explorer.exe'
        condition: single or double
    """
    events = {
        "single": {"Image": r"C:\Windows\System32\cmd.exe"},
        "double": {"ParentImage": r"C:\Windows\explorer.exe"},
        "double_not_doubled": {"ParentImage": r"C:\\Windows\\explorer.exe"},
    }
    assert hits(detection, events) == {"single", "double"}


def test_backslash_before_a_star_escapes_it() -> None:
    # 'C:\Windows\*' is the literal text "C:\Windows*": the backslash escapes the star (a classic mistake).
    detection = r"""
        selection:
            Image: 'C:\Windows\*'
        condition: selection
    """
    events = {
        "literal_star": {"Image": "C:\\Windows*"},
        "file_below": {"Image": r"C:\Windows\System32\cmd.exe"},
    }
    assert hits(detection, events) == {"literal_star"}


def test_escaped_backslash_before_a_star_keeps_the_wildcard() -> None:
    detection = r"""
        selection:
            Image: 'C:\Windows\\*'
        condition: selection
    """
    events = {
        "file_below": {"Image": r"C:\Windows\System32\cmd.exe"},
        "sibling": {"Image": r"C:\WindowsApps\x.exe"},
    }
    assert hits(detection, events) == {"file_below"}


def test_three_backslashes_are_a_backslash_and_a_literal_star() -> None:
    detection = r"""
        selection:
            Image: 'C:\Windows\\\*'
        condition: selection
    """
    events = {
        "literal": {"Image": "C:\\Windows\\*"},
        "file_below": {"Image": r"C:\Windows\System32\cmd.exe"},
    }
    assert hits(detection, events) == {"literal"}


# --- null and empty --------------------------------------------------------------------------------


def test_null_matches_an_absent_or_null_field() -> None:
    # pySigma emits "field IS NULL" (SQLite backend): a missing field and a null one, not an empty string.
    detection = """
        selection:
            EventID: 4738
        filter:
            PasswordLastSet: null
        condition: selection and filter
    """
    events = {
        "absent": {"EventID": 4738},
        "null": {"EventID": 4738, "PasswordLastSet": None},
        "empty": {"EventID": 4738, "PasswordLastSet": ""},
        "value": {"EventID": 4738, "PasswordLastSet": "2026-01-02"},
    }
    assert hits(detection, events) == {"absent", "null"}


def test_empty_string_matches_only_an_empty_value() -> None:
    detection = """
        selection:
            CommandLine: ''
        condition: selection
    """
    events = {
        "empty": {"CommandLine": ""},
        "absent": {},
        "null": {"CommandLine": None},
        "space": {"CommandLine": " "},
    }
    assert hits(detection, events) == {"empty"}


def test_not_null_is_written_as_a_negated_filter() -> None:
    detection = """
        selection:
            EventID: 4738
        filter:
            PasswordLastSet: null
        condition: selection and not filter
    """
    events = {
        "value": {"EventID": 4738, "PasswordLastSet": "2026-01-02"},
        "absent": {"EventID": 4738},
        "null": {"EventID": 4738, "PasswordLastSet": None},
    }
    assert hits(detection, events) == {"value"}


# --- numbers and booleans --------------------------------------------------------------------------


def test_integer_rule_value_matches_integer_and_string_events() -> None:
    detection = """
        selection:
            EventID: 4688
        condition: selection
    """
    events = {
        "int": {"EventID": 4688},
        "str": {"EventID": "4688"},
        "other_int": {"EventID": 4689},
        "other_str": {"EventID": "46880"},
    }
    assert hits(detection, events) == {"int", "str"}


def test_string_rule_value_matches_an_integer_event() -> None:
    detection = """
        selection:
            EventID: '4688'
        condition: selection
    """
    assert hits(detection, {"int": {"EventID": 4688}, "other": {"EventID": 4624}}) == {"int"}


def test_float_value() -> None:
    detection = """
        selection:
            Version: 1.5
        condition: selection
    """
    events = {"float": {"Version": 1.5}, "str": {"Version": "1.5"}, "other": {"Version": 1.25}}
    assert hits(detection, events) == {"float", "str"}


def test_boolean_value() -> None:
    detection = """
        selection:
            Elevated: true
        condition: selection
    """
    events = {
        "true": {"Elevated": True},
        "true_text": {"Elevated": "true"},
        "false": {"Elevated": False},
        "false_text": {"Elevated": "false"},
        "absent": {},
    }
    assert hits(detection, events) == {"true", "true_text"}


def test_boolean_and_number_are_not_confused_whatever_came_before() -> None:
    # Values compare by their text: true is "true", 1 is "1" (pySigma's SQLite backend also takes 1 for
    # true, for tables that store booleans as 1/0; Vigil's events keep booleans as booleans). And since
    # True == 1 in Python, the answer for one event must not depend on the events seen before it.
    detection = """
        selection:
            Elevated: true
        condition: selection
    """
    for order in (["bool", "number"], ["number", "bool"]):
        engine = Engine([sigma(detection)])
        events = {"bool": {"Elevated": True}, "number": {"Elevated": 1}}
        matched = {name for name in order if engine.match(events[name])}
        assert matched == {"bool"}, order


def test_event_id_as_boolean_number_or_text_whatever_came_before() -> None:
    # EventID (and Channel) choose the rules an event meets (the engine's buckets): true is not 1 there either,
    # while 1, 1.0 and "1" are the same EventID.
    detection = """
        selection:
            EventID: 1
        condition: selection
    """
    names = ["int", "bool", "float", "text", "false", "zero"]
    events = {"int": {"EventID": 1}, "bool": {"EventID": True}, "float": {"EventID": 1.0}, "text": {"EventID": "1"},
              "false": {"EventID": False}, "zero": {"EventID": 0}}
    for order in (names, names[::-1]):
        engine = Engine([sigma(detection)])
        matched = {name for name in order if engine.match(events[name])}
        assert matched == {"int", "float", "text"}, order


def test_boolean_false_value() -> None:
    detection = """
        selection:
            Enabled: false
        condition: selection
    """
    events = {"false": {"Enabled": False}, "true": {"Enabled": True}, "absent": {}}
    assert hits(detection, events) == {"false"}


# --- lists -----------------------------------------------------------------------------------------


def test_list_of_values_is_an_or() -> None:
    detection = """
        selection:
            EventID:
                - 4624
                - 4625
        condition: selection
    """
    events = {"first": {"EventID": 4624}, "second": {"EventID": 4625}, "neither": {"EventID": 4634}}
    assert hits(detection, events) == {"first", "second"}


def test_list_value_in_the_event_matches_when_any_element_does() -> None:
    detection = """
        selection:
            Tags: 'ransomware'
            Ports: 445
        condition: selection
    """
    events = {
        "both_in_lists": {"Tags": ["benign", "Ransomware"], "Ports": [139, 445]},
        "tag_missing": {"Tags": ["benign", "worm"], "Ports": [445]},
        "empty_list": {"Tags": [], "Ports": [445]},
    }
    assert hits(detection, events) == {"both_in_lists"}


def test_event_id_list_in_the_event() -> None:
    detection = """
        selection:
            EventID: 4625
        condition: selection
    """
    events = {"list": {"EventID": [4625, 1]}, "other_list": {"EventID": [4624, 1]}}
    assert hits(detection, events) == {"list"}


def test_list_event_value_with_contains() -> None:
    detection = """
        selection:
            Recipients|contains: '@evil.example'
        condition: selection
    """
    events = {
        "one_of_many": {"Recipients": ["a@corp.example", "x@evil.example"]},
        "none": {"Recipients": ["a@corp.example", "b@corp.example"]},
    }
    assert hits(detection, events) == {"one_of_many"}


# --- nested fields ---------------------------------------------------------------------------------


def test_dotted_field_reads_nested_maps() -> None:
    detection = """
        selection:
            url.original|contains: '/wp-admin/'
            http.response.status_code: 200
        condition: selection
    """
    events = {
        "nested": {"url": {"original": "/blog/wp-admin/setup.php"}, "http": {"response": {"status_code": 200}}},
        "wrong_status": {"url": {"original": "/wp-admin/"}, "http": {"response": {"status_code": 404}}},
        "not_a_map": {"url": "/wp-admin/", "http": {"response": {"status_code": 200}}},
        "other_nesting": {"url": {"path": "/wp-admin/"}, "http": {"response": {"status_code": 200}}},
    }
    assert hits(detection, events) == {"nested"}


def test_dotted_field_as_a_top_level_key() -> None:
    detection = """
        selection:
            url.original|contains: '/wp-admin/'
        condition: selection
    """
    events = {"flat_key": {"url.original": "/wp-admin/x"}, "flat_other": {"url.original": "/index.html"}}
    assert hits(detection, events) == {"flat_key"}


# --- keywords (values without a field) -------------------------------------------------------------


def test_keyword_matches_text_in_any_field() -> None:
    # Specification: keywords search "across an entire event". SigmaHQ relies on it, e.g.
    # lnx_vsftpd_susp_error_messages.yml has the keyword 'weird status:' for a longer syslog message.
    detection = """
        keywords:
            - 'weird status:'
        condition: keywords
    """
    events = {
        "in_message": {"program": "vsftpd", "message": "Jan  2 10:00:00 host vsftpd[42]: weird status: 77"},
        "in_other_field": {"program": "vsftpd", "detail": "WEIRD STATUS: 77", "message": "x"},
        "whole_value": {"message": "weird status:"},
        "absent": {"program": "vsftpd", "message": "OK LOGIN: Client 10.0.0.1"},
    }
    assert hits(detection, events) == {"in_message", "in_other_field", "whole_value"}


def test_keyword_list_is_an_or() -> None:
    detection = """
        keywords:
            - 'event::clear'
            - 'event::drop'
        condition: keywords
    """
    events = {
        "first": {"CommandLine": "mimikatz.exe event::clear exit"},
        "second": {"ScriptBlockText": "Invoke-Mimikatz -Command 'event::drop'"},
        "neither": {"CommandLine": "mimikatz.exe sekurlsa::logonpasswords"},
    }
    assert hits(detection, events) == {"first", "second"}


def test_keyword_with_wildcards() -> None:
    detection = """
        keywords:
            - 'rm *sh_history'
        condition: keywords
    """
    events = {
        "bash": {"message": "user ran: rm /home/u/.bash_history"},
        "zsh": {"message": "rm ~/.zsh_history"},
        "other": {"message": "rm /tmp/x"},
    }
    assert hits(detection, events) == {"bash", "zsh"}


def test_keywords_with_all_need_every_keyword() -> None:
    detection = """
        keywords:
            '|all':
                - 'OabVirtualDirectory'
                - ' -ExternalUrl '
        condition: keywords
    """
    events = {
        "both": {"Payload": "Set-OabVirtualDirectory -Identity x -ExternalUrl 'http://e'"},
        "only_one": {"Payload": "Get-OabVirtualDirectory -Identity x"},
    }
    assert hits(detection, events) == {"both"}


def test_keyword_searches_nested_values() -> None:
    detection = """
        keywords:
            - 'attempt to access beyond end of device'
        condition: keywords
    """
    events = {
        "nested": {"log": {"syslog": {"message": "kernel: attempt to access beyond end of device sda1"}}},
        "nested_other": {"log": {"syslog": {"message": "kernel: eth0 up"}}},
    }
    assert hits(detection, events) == {"nested"}


def test_numeric_keyword() -> None:
    detection = """
        keywords:
            - 4688
        condition: keywords
    """
    events = {"int": {"EventID": 4688}, "text": {"EventID": "4688"}, "other": {"EventID": 4624}}
    assert hits(detection, events) == {"int", "text"}


def test_keywords_in_short_values_numbers_and_values_that_fold_longer() -> None:
    """The engine skips values no keyword fits in (short ASCII texts; integers when no keyword is digits):
    a value that folds to a longer text, and digits inside a bigger number, are still found."""
    detection = """
        keywords:
            - 'strasse'
            - '46881'
        condition: keywords
    """
    events = {
        "folds_longer": {"City": "STRAßE", "EventID": 1},  # 6 characters, "strasse" once folded
        "digits_in_a_number": {"EventID": 1, "ProcessId": 946881},
        "short_ascii": {"City": "str", "EventID": 4688},
        "nested_short": {"EventData": {"ProcessId": 46881}},  # not a flat event: every value walked
        "none": {"City": None, "EventID": 4688},
    }
    assert hits(detection, events) == {"folds_longer", "digits_in_a_number", "nested_short"}


def test_keywords_over_many_events() -> None:
    """The engine remembers, from one event to the next, values that hold no keyword: a value equal to one of
    them in Python (True == 1) is still searched as its own text, and a list is searched element by element."""
    detection = """
        keywords:
            - 'mimikatz'
            - 'true'
        condition: keywords
    """
    events = {
        "clean": {"Flag": 1, "Tool": "procdump", "Level": 4.0, "Note": None},
        "boolean": {"Flag": True, "Tool": "procdump"},
        "clean_again": {"Flag": 1, "Tool": "procdump"},
        "tool": {"Flag": 1, "Tool": "C:\\Tools\\MIMIKATZ.exe"},
        "in_a_list": {"Flag": 1, "Tool": ["procdump", "mimikatz"]},
        "after_the_list": {"Flag": 1, "Tool": "procdump"},
    }
    assert hits(detection, events) == {"boolean", "tool", "in_a_list"}


def test_keywords_over_many_events_with_numbers_and_booleans() -> None:
    """No keyword can be in a number's or a boolean's text here: those values are passed over, texts are not."""
    detection = """
        keywords:
            - 'mimikatz'
        condition: keywords
    """
    events = {
        "clean": {"EventID": 1, "Flag": True, "Level": 4.5, "Image": "C:\\Windows\\explorer.exe"},
        "same_values": {"EventID": 1, "Flag": True, "Level": 4.5, "Image": "C:\\Windows\\explorer.exe"},
        "new_value": {"EventID": 1, "Flag": True, "Image": "C:\\Windows\\explorer.exe", "Cmd": "mimikatz.exe"},
        "bytes": {"EventID": 1, "Data": b"mimikatz"},
        "nested": {"EventID": 1, "EventData": {"Cmd": "Mimikatz"}},
    }
    assert hits(detection, events) == {"new_value", "bytes", "nested"}


def test_keyword_and_field_selection_together() -> None:
    detection = """
        selection:
            program: 'sshd'
        keywords:
            - 'Failed password for root'
        condition: selection and keywords
    """
    events = {
        "sshd": {"program": "sshd", "message": "Failed password for root from 203.0.113.9 port 22"},
        "other_program": {"program": "su", "message": "Failed password for root"},
        "other_message": {"program": "sshd", "message": "Accepted password for root"},
    }
    assert hits(detection, events) == {"sshd"}


# --- very long values ------------------------------------------------------------------------------

ONE_MEGABYTE = 1_000_000


@pytest.mark.parametrize(
    "modifier_and_value",
    ["|contains: 'needle-at-the-end'", "|endswith: 'needle-at-the-end'", "|re: 'needle-at-the-[a-z]+$'"],
)
def test_a_one_megabyte_value_is_matched(modifier_and_value: str) -> None:
    detection = f"""
        selection:
            Payload{modifier_and_value}
        condition: selection
    """
    events = {
        "needle": {"Payload": "A" * ONE_MEGABYTE + "needle-at-the-end"},
        "haystack": {"Payload": "A" * ONE_MEGABYTE + "no-needle"},
    }
    assert hits(detection, events) == {"needle"}


def test_a_one_megabyte_keyword_search() -> None:
    detection = """
        keywords:
            - 'needle-at-the-end'
        condition: keywords
    """
    events = {
        "needle": {"Payload": "A" * ONE_MEGABYTE + " needle-at-the-end"},
        "haystack": {"Payload": "A" * ONE_MEGABYTE},
    }
    assert hits(detection, events) == {"needle"}


# --- more edges ------------------------------------------------------------------------------------


def test_star_alone_matches_any_present_value() -> None:
    detection = """
        selection:
            Description: '*'
        condition: selection
    """
    events = {"text": {"Description": "x"}, "empty": {"Description": ""}, "absent": {}, "null": {"Description": None}}
    assert hits(detection, events) == {"text", "empty"}


def test_null_in_a_list_of_values() -> None:
    detection = """
        selection:
            Signature:
                - null
                - 'Unsigned'
        condition: selection
    """
    events = {
        "absent": {},
        "unsigned": {"Signature": "unsigned"},
        "signed": {"Signature": "Microsoft Windows"},
        "empty": {"Signature": ""},
    }
    assert hits(detection, events) == {"absent", "unsigned"}


def test_contains_with_a_wildcard_inside() -> None:
    detection = """
        selection:
            CommandLine|contains: 'reg* add *\\Run'
        condition: selection
    """
    events = {
        "reg_exe": {"CommandLine": r"cmd /c reg.exe add HKCU\Software\Microsoft\Windows\CurrentVersion\Run /v x"},
        "no_run": {"CommandLine": r"cmd /c reg.exe add HKCU\Software\Classes"},
    }
    assert hits(detection, events) == {"reg_exe"}


def test_keywords_with_all_may_be_found_in_different_fields() -> None:
    # Each keyword is its own full-text search over the event (pySigma: AND of value-only expressions).
    detection = """
        keywords:
            '|all':
                - 'mimikatz'
                - 'lsass'
        condition: keywords
    """
    events = {
        "split": {"Image": r"C:\t\mimikatz.exe", "TargetImage": r"C:\Windows\System32\lsass.exe"},
        "one": {"Image": r"C:\t\mimikatz.exe", "TargetImage": r"C:\Windows\System32\svchost.exe"},
    }
    assert hits(detection, events) == {"split"}
