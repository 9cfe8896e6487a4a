"""Real-looking Windows events: evtx_dump JSON (Sysmon 1, Security 4624) and Winlogbeat's document of the same logon."""

from __future__ import annotations

from typing import Any


def system(
    provider: str, guid: str, event_id: Any, channel: str, record: int, keywords: str, level: int = 4
) -> dict[str, Any]:
    return {
        "Provider": {"#attributes": {"Name": provider, "Guid": guid}},
        "EventID": event_id,
        "Version": 5,
        "Level": level,
        "Task": 1,
        "Opcode": 0,
        "Keywords": keywords,
        "TimeCreated": {"#attributes": {"SystemTime": "2026-01-02T10:11:12.123456Z"}},
        "EventRecordID": record,
        "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": 3044, "ThreadID": 3508}},
        "Channel": channel,
        "Computer": "WS01.corp.example",
        "Security": {"#attributes": {"UserID": "S-1-5-18"}},
    }


SYSMON_1: dict[str, Any] = {
    "Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": system(
            "Microsoft-Windows-Sysmon", "5770385F-C22A-43E0-BF4C-06F5698FFBD9", 1,
            "Microsoft-Windows-Sysmon/Operational", 48213, "0x8000000000000000",
        ),
        "EventData": {
            "RuleName": "technique_id=T1059.001",
            "UtcTime": "2026-01-02 10:11:12.120",
            "ProcessGuid": "{9A3F1C2E-5B10-6958-2A01-000000000E00}",
            "ProcessId": 6120,
            "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "FileVersion": "10.0.19041.3996",
            "OriginalFileName": "PowerShell.EXE",
            "CommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgA",
            "CurrentDirectory": "C:\\Users\\alice\\",
            "User": "CORP\\alice",
            "LogonId": "0x3d4a21",
            "IntegrityLevel": "High",
            "Hashes": "SHA256=9F914D42706FE215501044ACD85A32D58AAEF1419D404FDDFA5D3B48F66CCD9F",
            "ParentProcessGuid": "{9A3F1C2E-5B0F-6958-1F01-000000000E00}",
            "ParentProcessId": 4412,
            "ParentImage": "C:\\Windows\\System32\\cmd.exe",
            "ParentCommandLine": "\"C:\\Windows\\system32\\cmd.exe\" /c run.bat",
            "ParentUser": "CORP\\alice",
        },
    }
}

SECURITY_4624: dict[str, Any] = {
    "Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": system(
            "Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-A5BA-3E3B0328C30D}", 4624,
            "Security", 902115, "0x8020000000000000", level=0,
        ),
        "EventData": {
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": "WS01$",
            "SubjectDomainName": "CORP",
            "SubjectLogonId": "0x3e7",
            "TargetUserSid": "S-1-5-21-1004336348-1177238915-682003330-1108",
            "TargetUserName": "bob",
            "TargetDomainName": "CORP",
            "TargetLogonId": "0x8dcf12",
            "LogonType": 10,
            "LogonProcessName": "User32 ",
            "AuthenticationPackageName": "Negotiate",
            "WorkstationName": "WS01",
            "ProcessId": "0x2b4",
            "ProcessName": "C:\\Windows\\System32\\svchost.exe",
            "IpAddress": "198.51.100.23",
            "IpPort": "52144",
        },
    }
}

WINLOGBEAT_4624: dict[str, Any] = {
    "@timestamp": "2026-01-02T10:11:12.123Z",
    "agent": {"type": "winlogbeat", "version": "8.12.0", "name": "WS01"},
    "ecs": {"version": "8.0.0"},
    "host": {"name": "ws01.corp.example"},
    "log": {"level": "information"},
    "message": "An account was successfully logged on.",
    "event.code": "4624",
    "event.provider": "Microsoft-Windows-Security-Auditing",
    "event.kind": "event",
    "event.action": "logged-in",
    "event.created": "2026-01-02T10:11:13.000Z",
    "winlog": {
        "channel": "Security",
        "event_id": "4624",
        "provider_name": "Microsoft-Windows-Security-Auditing",
        "provider_guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}",
        "computer_name": "WS01.corp.example",
        "record_id": "902115",
        "task": "Logon",
        "opcode": "Info",
        "keywords": ["Audit Success"],
        "api": "wineventlog",
        "process": {"pid": 700, "thread": {"id": 3508}},
        "logon": {"type": "RemoteInteractive", "id": "0x8dcf12"},
        "event_data": {
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": "WS01$",
            "SubjectDomainName": "CORP",
            "TargetUserName": "bob",
            "TargetDomainName": "CORP",
            "LogonType": "10",
            "IpAddress": "198.51.100.23",
            "IpPort": "52144",
            "ProcessName": "C:\\Windows\\System32\\svchost.exe",
        },
    },
}
