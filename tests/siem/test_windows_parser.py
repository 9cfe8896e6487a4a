"""Windows events as JSON: evtx_dump's shape and Winlogbeat's, to ECS plus the native fields Sigma rules name."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from vigil.siem.parsers.base import ParseContext, ParseError, ParseFailure, run_batch
from vigil.siem.parsers.windows import WindowsJsonParser, WinlogbeatParser

from .json_fuzz import fuzz_parser
from .windows_samples import SECURITY_4624, SYSMON_1, WINLOGBEAT_4624

CTX = ParseContext(source="dc01")
WINDOWS = WindowsJsonParser()
WINLOGBEAT = WinlogbeatParser()
STAMP = datetime(2026, 1, 2, 10, 11, 12, 123456, tzinfo=UTC)


def parse(document: dict[str, Any]) -> dict[str, Any]:
    return WINDOWS.parse_one(orjson.dumps(document), CTX)


def test_sysmon_process_creation() -> None:
    event = parse(SYSMON_1)
    assert event["@timestamp"] == STAMP
    native = {name: event[name] for name in (
        "Channel", "EventID", "Provider_Name", "Computer", "EventRecordID", "Level", "Task", "Keywords",
        "Image", "CommandLine", "ParentImage", "OriginalFileName", "User", "Execution_ProcessID", "Security_UserID",
    )}
    assert native == {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "EventID": 1,
        "Provider_Name": "Microsoft-Windows-Sysmon",
        "Computer": "WS01.corp.example",
        "EventRecordID": 48213,
        "Level": 4,
        "Task": 1,
        "Keywords": "0x8000000000000000",
        "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "CommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgA",
        "ParentImage": "C:\\Windows\\System32\\cmd.exe",
        "OriginalFileName": "PowerShell.EXE",
        "User": "CORP\\alice",
        "Execution_ProcessID": 3044,
        "Security_UserID": "S-1-5-18",
    }
    assert {k: v for k, v in event["event"].items() if k != "original"} == {
        "kind": "event",
        "module": "windows",
        "dataset": "windows.sysmon_operational",
        "code": "1",
        "provider": "Microsoft-Windows-Sysmon",
        "category": ["process"],
        "type": ["start"],
    }
    assert orjson.loads(event["event"]["original"]) == SYSMON_1
    assert event["host"] == {"hostname": "WS01.corp.example", "name": "WS01.corp.example"}
    assert event["user"] == {"name": "alice", "domain": "CORP"}
    assert event["process"] == {
        "executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "name": "powershell.exe",
        "pid": 6120,
        "entity_id": "{9A3F1C2E-5B10-6958-2A01-000000000E00}",
        "command_line": "powershell.exe -nop -w hidden -enc SQBFAFgA",
        "working_directory": "C:\\Users\\alice\\",
        "parent": {
            "executable": "C:\\Windows\\System32\\cmd.exe",
            "name": "cmd.exe",
            "pid": 4412,
            "entity_id": "{9A3F1C2E-5B0F-6958-1F01-000000000E00}",
            "command_line": "\"C:\\Windows\\system32\\cmd.exe\" /c run.bat",
        },
        "pe": {"original_file_name": "PowerShell.EXE"},
    }
    assert event["log"] == {"level": "information"}


def test_security_logon() -> None:
    event = parse(SECURITY_4624)
    assert event["EventID"] == 4624
    assert event["Channel"] == "Security"
    assert event["LogonType"] == 10
    assert event["TargetUserName"] == "bob"
    assert event["IpAddress"] == "198.51.100.23"
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["type"] == ["start"]
    assert event["event"]["outcome"] == "success"
    assert event["event"]["dataset"] == "windows.security"
    assert event["user"] == {"name": "bob", "domain": "CORP", "id": "S-1-5-21-1004336348-1177238915-682003330-1108"}
    assert event["source"] == {"ip": "198.51.100.23", "port": 52144, "domain": "WS01"}
    assert event["process"] == {"executable": "C:\\Windows\\System32\\svchost.exe", "name": "svchost.exe", "pid": 692}


def test_failed_logon_and_sysmon_file_dns_registry_network() -> None:
    failed = copy.deepcopy(SECURITY_4624)
    failed["Event"]["System"]["EventID"] = 4625
    failed["Event"]["System"]["Keywords"] = "0x8010000000000000"
    assert parse(failed)["event"]["outcome"] == "failure"

    def sysmon(event_id: int, data: dict[str, Any]) -> dict[str, Any]:
        document = copy.deepcopy(SYSMON_1)
        document["Event"]["System"]["EventID"] = event_id
        document["Event"]["EventData"] = {"ProcessId": 6120, "Image": "C:\\Tools\\x.exe", **data}
        return parse(document)

    created = sysmon(11, {"TargetFilename": "C:\\Users\\alice\\AppData\\Local\\Temp\\drop.dll"})
    assert created["file"] == {"path": "C:\\Users\\alice\\AppData\\Local\\Temp\\drop.dll", "name": "drop.dll"}
    assert created["event"]["category"] == ["file"]
    assert created["process"]["pid"] == 6120
    dns = sysmon(22, {"QueryName": "evil.example.net", "QueryResults": "type:  5 x;"})
    assert dns["dns"] == {"question": {"name": "evil.example.net"}}
    assert dns["QueryName"] == "evil.example.net"
    registry = sysmon(13, {"TargetObject": "HKLM\\SOFTWARE\\Run\\x", "Details": "C:\\x.exe", "EventType": "SetValue"})
    assert registry["registry"] == {"path": "HKLM\\SOFTWARE\\Run\\x", "data": {"strings": ["C:\\x.exe"]}}
    network = sysmon(3, {
        "Protocol": "tcp", "SourceIp": "10.1.2.3", "SourcePort": 49711,
        "DestinationIp": "203.0.113.50", "DestinationPort": 443, "DestinationHostname": "-",
    })
    assert network["source"] == {"ip": "10.1.2.3", "port": 49711}
    assert network["destination"] == {"ip": "203.0.113.50", "port": 443}
    assert network["network"] == {"transport": "tcp"}


def test_service_install_user_creation_log_cleared() -> None:
    service = copy.deepcopy(SECURITY_4624)
    service["Event"]["System"].update(
        EventID={"#text": 7045, "#attributes": {"Qualifiers": 16384}},
        Channel="System",
        Provider={"#attributes": {"Name": "Service Control Manager", "EventSourceName": "Service Control Manager"}},
    )
    service["Event"]["EventData"] = {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe"}
    event = parse(service)
    assert (event["EventID"], event["EventID_Qualifiers"]) == (7045, 16384)
    assert event["service"] == {"name": "PSEXESVC"}
    assert event["event"]["category"] == ["configuration"]
    created = copy.deepcopy(SECURITY_4624)
    created["Event"]["System"]["EventID"] = 4720
    event = parse(created)
    assert event["user"]["name"] == "WS01$"
    assert event["user"]["target"] == {"name": "bob", "domain": "CORP"}
    assert event["event"]["type"] == ["user", "creation"]
    cleared = copy.deepcopy(SECURITY_4624)
    cleared["Event"]["System"].update(EventID=1102, Security=None)
    del cleared["Event"]["EventData"]
    cleared["Event"]["UserData"] = {"LogFileCleared": {
        "#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
        "SubjectUserSid": "S-1-5-21-1-2-3-500", "SubjectUserName": "admin", "SubjectDomainName": "CORP",
    }}
    event = parse(cleared)
    assert event["SubjectUserName"] == "admin"
    assert "xmlns" not in event
    assert "Security" not in event
    assert event["event"]["type"] == ["deletion"]


def test_unnamed_data_and_separate_attributes() -> None:
    document = copy.deepcopy(SECURITY_4624)
    document["Event"]["System"].update(Channel="Windows PowerShell", EventID=400)
    document["Event"]["EventData"] = {"Data": {"#text": ["Available", "None", "HostApplication=powershell -enc"]}}
    event = parse(document)
    assert event["Data"] == ["Available", "None", "HostApplication=powershell -enc"]
    assert (event["Data1"], event["Data3"]) == ("Available", "HostApplication=powershell -enc")
    assert event["event"]["dataset"] == "windows.windows_powershell"
    document["Event"]["EventData"] = {"Data": "only one"}
    assert parse(document)["Data"] == "only one"
    document["Event"]["EventData"] = {"Data": [{"#attributes": {"Name": "Image"}, "#text": "C:\\a.exe"}]}
    assert parse(document)["Image"] == "C:\\a.exe"
    separate = copy.deepcopy(SECURITY_4624)
    system = separate["Event"]["System"]
    system["Provider_attributes"] = system.pop("Provider")["#attributes"]
    system["TimeCreated_attributes"] = system.pop("TimeCreated")["#attributes"]
    system["Provider"] = None
    system["TimeCreated"] = None
    event = parse(separate)
    assert event["Provider_Name"] == "Microsoft-Windows-Security-Auditing"
    assert event["@timestamp"] == STAMP


def test_colliding_names_are_kept_aside() -> None:
    document = copy.deepcopy(SECURITY_4624)
    document["Event"]["EventData"] = {"event": "x", "Channel": "fake", "@timestamp": "y"}
    event = parse(document)
    assert event["Channel"] == "Security"
    assert (event["EventData_Channel"], event["EventData_event"], event["EventData_@timestamp"]) == ("fake", "x", "y")
    assert isinstance(event["event"], dict)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"a": 1}, "not a Windows event: no Event.System object"),
        ({"Event": {"System": {"EventID": "x"}}}, "System.EventID is 'x', not a number"),
        ({"Event": {"System": {"EventID": 4624}}}, "not a Windows event: no System.TimeCreated SystemTime"),
        (
            {"Event": {"System": {"EventID": 1, "TimeCreated": {"#attributes": {"SystemTime": "soon"}}}}},
            "not a Windows event time: unreadable timestamp 'soon': Invalid isoformat string: 'soon'",
        ),
    ],
)
def test_not_windows_is_a_parse_error(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(document)
    assert str(caught.value) == reason


def test_winlogbeat_document() -> None:
    event = WINLOGBEAT.parse_one(orjson.dumps(WINLOGBEAT_4624), CTX)
    assert event["@timestamp"] == datetime(2026, 1, 2, 10, 11, 12, 123000, tzinfo=UTC)
    native = {name: event[name] for name in (
        "Channel", "EventID", "Provider_Name", "Computer", "EventRecordID", "Level", "Task", "Keywords",
        "TargetUserName", "LogonType", "IpAddress", "Execution_ProcessID",
    )}
    assert native == {
        "Channel": "Security",
        "EventID": 4624,
        "Provider_Name": "Microsoft-Windows-Security-Auditing",
        "Computer": "WS01.corp.example",
        "EventRecordID": 902115,
        "Level": 4,
        "Task": "Logon",
        "Keywords": ["Audit Success"],
        "TargetUserName": "bob",
        "LogonType": "10",
        "IpAddress": "198.51.100.23",
        "Execution_ProcessID": 700,
    }
    assert event["event"]["code"] == "4624"
    assert event["event"]["action"] == "logged-in"
    assert (event["event"]["module"], event["event"]["dataset"]) == ("windows", "windows.security")
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["outcome"] == "success"
    assert event["host"] == {"name": "ws01.corp.example", "hostname": "WS01.corp.example"}
    assert event["user"] == {"name": "bob", "domain": "CORP"}
    assert event["source"] == {"ip": "198.51.100.23", "port": 52144}
    assert event["winlog"]["logon"] == {"type": "RemoteInteractive", "id": "0x8dcf12"}
    assert orjson.loads(event["event"]["original"]) == WINLOGBEAT_4624


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"@timestamp": "2026-01-02T00:00:00Z"}, "not a Winlogbeat event: winlog is null, not an object"),
        ({"winlog": {"event_id": "abc"}}, "not a Winlogbeat event: winlog.event_id is 'abc'"),
        ({"winlog": {"event_id": 1}}, "not a Winlogbeat event: no @timestamp"),
    ],
)
def test_not_winlogbeat_is_a_parse_error(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        WINLOGBEAT.parse_one(orjson.dumps(document), CTX)
    assert str(caught.value) == reason


def test_batch_keeps_good_events_around_bad_ones() -> None:
    records = [orjson.dumps(SYSMON_1), b'{"Event": {"System": ', orjson.dumps(SECURITY_4624)]
    results = run_batch(WINDOWS, records, CTX)
    assert [r["EventID"] if isinstance(r, dict) else r.reason[:13] for r in results] == [1, "invalid JSON:", 4624]
    assert isinstance(results[1], ParseFailure)


def test_sniffs() -> None:
    assert WINDOWS.sniff(orjson.dumps(SYSMON_1))
    assert not WINDOWS.sniff(orjson.dumps(WINLOGBEAT_4624))
    assert WINLOGBEAT.sniff(orjson.dumps(WINLOGBEAT_4624))
    assert not WINLOGBEAT.sniff(orjson.dumps(SYSMON_1))


def test_fuzz_windows_json() -> None:
    fuzz_parser(WINDOWS, [SYSMON_1, SECURITY_4624])


def test_fuzz_winlogbeat() -> None:
    fuzz_parser(WINLOGBEAT, [WINLOGBEAT_4624])


def test_security_process_creation_4688() -> None:
    document = copy.deepcopy(SECURITY_4624)
    document["Event"]["System"]["EventID"] = 4688
    document["Event"]["EventData"] = {
        "SubjectUserSid": "S-1-5-21-1-2-3-1108", "SubjectUserName": "alice", "SubjectDomainName": "CORP",
        "SubjectLogonId": "0x3d4a21", "NewProcessId": "0x17e8",
        "NewProcessName": "C:\\Windows\\System32\\whoami.exe", "TokenElevationType": "%%1937",
        "ProcessId": "0x1a2c", "CommandLine": "whoami /priv", "TargetUserSid": "S-1-0-0", "TargetUserName": "-",
        "ParentProcessName": "C:\\Windows\\System32\\cmd.exe", "MandatoryLabel": "S-1-16-12288",
    }
    event = parse(document)
    assert (event["NewProcessName"], event["CommandLine"]) == ("C:\\Windows\\System32\\whoami.exe", "whoami /priv")
    assert event["process"] == {
        "executable": "C:\\Windows\\System32\\whoami.exe",
        "name": "whoami.exe",
        "pid": 0x17E8,
        "command_line": "whoami /priv",
        "parent": {"executable": "C:\\Windows\\System32\\cmd.exe", "name": "cmd.exe", "pid": 0x1A2C},
    }
    assert event["user"] == {"name": "alice", "domain": "CORP", "id": "S-1-5-21-1-2-3-1108"}
    assert (event["event"]["category"], event["event"]["type"]) == (["process"], ["start"])


def test_winlogbeat_keeps_its_own_original_xml() -> None:
    shipped = {**WINLOGBEAT_4624, "event": {"original": "<Event xmlns='...'><System>...</System></Event>"}}
    event = WINLOGBEAT.parse_one(orjson.dumps(shipped), CTX)
    assert event["event"]["original"] == "<Event xmlns='...'><System>...</System></Event>"
    lean = ParseContext(keep_original=False)
    assert "original" not in WINDOWS.parse_one(orjson.dumps(SYSMON_1), lean)["event"]


def test_sysmon_image_load_process_access_and_script_block() -> None:
    def sysmon(event_id: int, data: dict[str, Any], channel: str = "Microsoft-Windows-Sysmon/Operational") -> Any:
        document = copy.deepcopy(SYSMON_1)
        document["Event"]["System"].update(EventID=event_id, Channel=channel)
        document["Event"]["EventData"] = data
        return parse(document)

    loaded = sysmon(7, {"ProcessId": 6120, "Image": "C:\\x.exe", "ImageLoaded": "C:\\Windows\\System32\\dbghelp.dll"})
    assert loaded["dll"] == {"path": "C:\\Windows\\System32\\dbghelp.dll", "name": "dbghelp.dll"}
    assert loaded["process"]["pid"] == 6120
    access = sysmon(10, {"SourceProcessId": 812, "SourceImage": "C:\\Tools\\mimikatz.exe",
                         "TargetProcessId": 640, "TargetImage": "C:\\Windows\\system32\\lsass.exe",
                         "GrantedAccess": "0x1010"})
    assert access["process"] == {"executable": "C:\\Tools\\mimikatz.exe", "name": "mimikatz.exe", "pid": 812}
    assert (access["TargetImage"], access["GrantedAccess"]) == ("C:\\Windows\\system32\\lsass.exe", "0x1010")
    assert access["event"]["type"] == ["access"]
    script = sysmon(4104, {"MessageNumber": 1, "MessageTotal": 1, "ScriptBlockText": "IEX (New-Object Net.WebClient)",
                           "ScriptBlockId": "4d2a"}, channel="Microsoft-Windows-PowerShell/Operational")
    assert script["powershell"] == {"file": {"script_block_text": "IEX (New-Object Net.WebClient)",
                                             "script_block_id": "4d2a"}}
    assert script["event"]["dataset"] == "windows.powershell_operational"
