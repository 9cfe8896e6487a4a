"""The starter rule pack (``src/vigil/detection/rules/starter``): every rule loads, is well described, and
fires on its own test events and not on their near misses; and the demo day raises the alerts the guide
promises.

Test inputs are raw records in ``src/vigil/detection/rules/starter_tests/<area>/<rule file name>`` (shipped
with the package: ``vigil rules test`` and the rule's page run them too): syslog and access-log lines as
the devices write them, Zeek and Suricata records and Windows events (evtx_dump's JSON shape) as YAML
mappings encoded to one JSON record each. They go through Vigil's real parsers (``parse_records``, as the
pipeline parses a batch, in ``vigil.detection.rule_tests``) before the engine sees them, so a rule is
tested against the events Vigil really makes, field names and all.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.detection.evtx_events import evtx_events

import vigil
from vigil.core.config import Settings, load_settings
from vigil.detection.rule_tests import UnreadableRecord, parse_entry
from vigil.detection.rules_import import STARTER_TESTS_DIR
from vigil.detection.sigma import Engine, Rule, load_rules
from vigil.siem import demo
from vigil.siem.normalize import normalise
from vigil.siem.parsers.base import ParseFailure
from vigil.siem.parsing import SourceConfig, parse_records
from vigil.siem.spool import BatchMeta

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STARTER = Path(vigil.__file__).resolve().parent / "detection" / "rules" / "starter"
EVENTS = STARTER_TESTS_DIR
AREAS = ("windows", "linux", "web", "network")
RULE_FILES = sorted(STARTER.rglob("*.yml"))
TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence", "privilege-escalation",
    "defense-evasion", "credential-access", "discovery", "lateral-movement", "collection", "command-and-control",
    "exfiltration", "impact",
}
# The folder a rule belongs in, by its log source's product and category.
AREA_OF_SOURCE = {
    ("windows", "process_creation"): "windows", ("windows", "process_access"): "windows",
    ("windows", "ps_script"): "windows", ("windows", None): "windows",
    ("linux", None): "linux",
    (None, "webserver"): "web",
    ("zeek", None): "network", ("suricata", None): "network", (None, "dns"): "network",
}
Event = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One rule's test inputs: records that must trigger it and near misses that must not."""

    rule_file: Path
    format: str
    trigger: list[Any]
    near_miss: list[Any]


def case_path(rule_file: Path) -> Path:
    return EVENTS / rule_file.relative_to(STARTER)


def load_case(rule_file: Path) -> Case:
    document = yaml.safe_load(case_path(rule_file).read_text(encoding="utf-8"))
    return Case(rule_file, document["format"], document.get("trigger") or [], document.get("near_miss") or [])


def parse(entry: Any, default_format: str) -> Event:
    """The event Vigil's pipeline makes of one test input (a parse failure fails the test, saying why)."""
    return parse_entry(entry, default_format)


@pytest.fixture(scope="module")
def starter_rules() -> list[Rule]:
    loaded = load_rules([STARTER], pack="starter")
    assert loaded.errors == [], "\n".join(str(error) for error in loaded.errors)
    return loaded.rules


@pytest.fixture(scope="module")
def engine(starter_rules: list[Rule]) -> Engine:
    return Engine(starter_rules)


def rule_for(rules: list[Rule], rule_file: Path) -> Rule:
    found = [rule for rule in rules if Path(rule.path).resolve() == rule_file.resolve()]
    assert len(found) == 1, f"{rule_file.name} did not load as one rule"
    return found[0]


# --- the pack ------------------------------------------------------------------------------------------


def test_the_pack_covers_windows_linux_web_servers_and_network_sensors(starter_rules: list[Rule]) -> None:
    per_area = Counter(Path(rule.path).resolve().relative_to(STARTER).parts[0] for rule in starter_rules)
    assert len(starter_rules) == len(RULE_FILES) >= 30
    assert set(per_area) == set(AREAS)
    assert all(per_area[area] >= 5 for area in AREAS), per_area
    assert {rule.pack for rule in starter_rules} == {"starter"}


def test_rule_ids_are_fresh_and_unique(starter_rules: list[Rule]) -> None:
    ids = Counter(rule.id for rule in starter_rules)
    assert [rule_id for rule_id, count in ids.items() if count > 1] == []
    assert all(uuid.UUID(rule_id).version == 4 for rule_id in ids)
    titles = Counter(rule.title for rule in starter_rules)
    assert [title for title, count in titles.items() if count > 1] == []


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda path: path.stem)
def test_rule_is_described_for_analysts(starter_rules: list[Rule], rule_file: Path) -> None:
    rule = rule_for(starter_rules, rule_file)
    assert rule.author == "Vigil project"
    assert rule.status in ("stable", "test")
    assert rule.level in ("informational", "low", "medium", "high", "critical")
    assert len(rule.description) > 60 and rule.references and rule.falsepositives and rule.date
    assert rule.techniques, "no attack.tNNNN technique tag"
    assert rule.tactics and set(rule.tactics) <= TACTICS, rule.tactics
    assert AREA_OF_SOURCE[(rule.product, rule.category)] == rule_file.parent.name


def test_every_rule_has_test_events_and_every_test_a_rule() -> None:
    without_case = [str(path.relative_to(STARTER)) for path in RULE_FILES if not case_path(path).is_file()]
    assert without_case == [], f"starter rules without test events in {EVENTS}: {without_case}"
    rules = {path.relative_to(STARTER) for path in RULE_FILES}
    orphans = [str(path.relative_to(EVENTS)) for path in EVENTS.rglob("*.yml") if path.relative_to(EVENTS) not in rules]
    assert orphans == [], f"test events for no starter rule: {orphans}"
    thin = [path.stem for path in RULE_FILES if case_path(path).is_file()
            and not ((case := load_case(path)).trigger and case.near_miss)]
    assert thin == [], f"rules without a trigger and a near miss: {thin}"


def test_the_readme_lists_every_rule() -> None:
    readme = (STARTER / "README.md").read_text(encoding="utf-8")
    assert [path.name for path in RULE_FILES if f"({path.parent.name}/{path.name})" not in readme] == []
    assert "Apache" in readme


def _cases() -> list[Any]:
    return [pytest.param(load_case(path), id=f"{path.parent.name}/{path.stem}")
            for path in RULE_FILES if case_path(path).is_file()]


@pytest.mark.parametrize("case", _cases())
def test_rule_fires_on_its_trigger_and_not_on_the_near_miss(
        starter_rules: list[Rule], engine: Engine, case: Case) -> None:
    rule = rule_for(starter_rules, case.rule_file)
    for entry in case.trigger:
        event = parse(entry, case.format)
        assert rule.id in {hit.id for hit in engine.match(event)}, \
            f"{rule.title!r} missed {event.get('event', {}).get('original', entry)!r}"
    for entry in case.near_miss:
        event = parse(entry, case.format)
        assert rule.id not in {hit.id for hit in engine.match(event)}, \
            f"{rule.title!r} fired on near miss {event.get('event', {}).get('original', entry)!r}"


# --- the demo day --------------------------------------------------------------------------------------

# What the demo day's stories raise (rule file name -> how many events), and nothing else: the
# background traffic (office logons, admins' SSH keys and sudo, shoppers, DNS, flows) raises no alert.
DEMO_ALERTS = {
    # 1. SSH brute force on jump01, then a login as deploy, sudo to a root shell and a new account.
    "lnx_sshd_invalid_user": None,
    "lnx_sshd_password_login_from_public_address": 1,
    "lnx_sudo_root_shell": 1,
    "lnx_auth_new_user_created": 1,
    # 2. Nikto and sqlmap against web01, seen in the access log and by Suricata.
    "web_scanner_user_agent": None,
    "web_sensitive_file_probe": 5,
    "web_path_traversal_attempt": 2,
    "web_sql_injection_attempt": 80,
    "suricata_alert_high_severity": 1,
    "suricata_alert_attack_category": 1,
    # 3. RDP password guessing on WS-FIN-07, an RDP logon, then hands on keyboard (each process start is
    # logged twice: Security 4688 and Sysmon 1).
    "win_security_failed_logon_from_public_address": 80,
    "win_security_rdp_logon_from_public_address": 1,
    "proc_creation_win_whoami_discovery": 2,
    "proc_creation_win_net_user_add": 2,
    "proc_creation_win_net_localgroup_admins_add": 2,
    "proc_creation_win_powershell_encoded_command": 2,
    "win_security_user_account_created": 1,
    "win_security_member_added_to_admins": 1,
    "suricata_powershell_script_download": 1,
    "zeek_conn_rdp_from_public_address": 30,
}


def demo_events(settings: Settings) -> Iterator[Event]:
    """The demo day's records parsed as ``demo.load`` has the pipeline parse them (per stream, in batches)."""
    day = demo.generate(settings, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    for stream in day.streams:
        meta = BatchMeta(source=stream.source, unit_id=1, format=stream.format, transport=stream.transport,
                         peer=stream.peer)
        records = [record for _, record in stream.records]
        for first in range(0, len(records), demo.BATCH):
            events, _ = normalise(parse_records(records[first: first + demo.BATCH], meta, SourceConfig()), meta)
            yield from events


def test_the_demo_day_raises_the_alerts_of_its_three_attacks(tmp_path: Path, engine: Engine) -> None:
    settings = load_settings(data_dir=tmp_path / "var")
    events = list(demo_events(settings))
    fired: Counter[str] = Counter()
    for matches in engine.match_many(events):
        fired.update(Path(rule.path).stem for rule in matches)
    assert set(fired) == set(DEMO_ALERTS), f"unexpected: {set(fired) - set(DEMO_ALERTS)}, " \
                                           f"missing: {set(DEMO_ALERTS) - set(fired)}"
    assert {name: fired[name] for name, count in DEMO_ALERTS.items() if count is not None} == \
        {name: count for name, count in DEMO_ALERTS.items() if count is not None}
    assert fired["lnx_sshd_invalid_user"] >= 100  # five made-up names, twenty tries each, plus the bots
    assert fired["web_scanner_user_agent"] >= 300 + 80


def test_a_demo_alert_points_at_the_attack(tmp_path: Path, engine: Engine) -> None:
    """The SSH login alert is the attacker's, not an administrator's key login."""
    settings = load_settings(data_dir=tmp_path / "var")
    logins = [event for event in demo_events(settings)
              if any(Path(rule.path).stem == "lnx_sshd_password_login_from_public_address"
                     for rule in engine.match(event))]
    assert [(event["user"]["name"], event["source"]["ip"], event["host"]["hostname"]) for event in logins] == \
        [("deploy", demo.SSH_ATTACKER, demo.JUMP_HOST[0])]


# --- SigmaHQ rules on Vigil's events, through the log-source mappings ---------------------------------

SIGMAHQ = SHARED_DATA / "sigma"
NO_SIGMAHQ = f"the SigmaHQ rule set is not at {SIGMAHQ}"
SYSLOG = "<86>Nov 28 16:48:42 jump01 "
# (SigmaHQ rule file, format, an input it must fire on, one it must not): one rule per mapped log source.
SIGMAHQ_CASES = [
    ("rules/web/webserver_generic/web_susp_useragents.yml", "web_access",
     '198.51.100.23 - - [28/Nov/2026:19:15:02 +0800] "GET /.env HTTP/1.1" 404 162 "-" "Mozilla/5.00 (Nikto/2.5.0)"',
     '192.0.2.14 - - [28/Nov/2026:10:00:00 +0800] "GET /.env HTTP/1.1" 404 162 "-" "Mozilla/5.0 (X11; Linux x86_64)"'),
    ("rules/web/webserver_generic/web_path_traversal_exploitation_attempt.yml", "web_access",
     '198.51.100.23 - - [28/Nov/2026:19:15:22 +0800] "GET /../../../../etc/passwd HTTP/1.1" 404 162 "-" "curl/8.5.0"',
     '192.0.2.14 - - [28/Nov/2026:10:00:00 +0800] "GET /etc/index.html HTTP/1.1" 200 162 "-" "curl/8.5.0"'),
    ("rules/web/webserver_generic/web_sql_injection_in_access_logs.yml", "web_access",
     '198.51.100.23 - - [28/Nov/2026:19:21:05 +0800] "GET /p?id=1%20UNION%20SELECT%20NULL HTTP/1.1" 200 9 "-" "x"',
     '198.51.100.23 - - [28/Nov/2026:19:21:05 +0800] "GET /p?id=1%20UNION%20SELECT%20NULL HTTP/1.1" 404 9 "-" "x"'),
    ("rules/network/zeek/zeek_dns_torproxy.yml", "zeek",
     {"ts": 1764330000.1, "uid": "C1", "id.orig_h": "10.20.3.47", "id.resp_h": "10.10.0.53", "query": "abc.onion",
      "qtype_name": "A", "_path": "dns"},
     {"ts": 1764330000.1, "uid": "C2", "id.orig_h": "10.20.3.47", "id.resp_h": "10.10.0.53", "query": "github.com",
      "qtype_name": "A", "_path": "dns"}),
    ("rules/network/zeek/zeek_rdp_public_listener.yml", "zeek",
     {"ts": 1764330000.1, "uid": "C3", "id.orig_h": "198.51.100.77", "id.resp_h": "10.20.3.47", "id.resp_p": 3389,
      "cookie": "admin", "_path": "rdp"},
     # a DNS record is not an RDP connection, whoever sent it
     {"ts": 1764330000.1, "uid": "C4", "id.orig_h": "198.51.100.77", "id.resp_h": "10.10.0.53", "query": "a.example",
      "_path": "dns"}),
    ("rules/network/zeek/zeek_http_webdav_put_request.yml", "zeek",
     {"ts": 1764330000.1, "uid": "C5", "id.orig_h": "10.20.3.47", "id.resp_h": "192.0.2.5", "id.resp_p": 80,
      "method": "PUT", "host": "x", "uri": "/a", "user_agent": "Microsoft-WebDAV-MiniRedir/10.0", "_path": "http"},
     {"ts": 1764330000.1, "uid": "C6", "id.orig_h": "10.20.3.47", "id.resp_h": "10.1.2.3", "id.resp_p": 80,
      "method": "PUT", "host": "x", "uri": "/a", "user_agent": "Microsoft-WebDAV-MiniRedir/10.0", "_path": "http"}),
    ("rules/network/dns/net_dns_susp_b64_queries.yml", "suricata",
     {"timestamp": "2026-11-28T12:00:00+00:00", "event_type": "dns", "src_ip": "10.20.3.47", "dest_ip": "10.10.0.53",
      "dns": {"type": "query", "rrname": "aGVsbG8==.evil.example", "rrtype": "A"}},
     {"timestamp": "2026-11-28T12:00:00+00:00", "event_type": "dns", "src_ip": "10.20.3.47", "dest_ip": "10.10.0.53",
      "dns": {"type": "query", "rrname": "www.example.com", "rrtype": "A"}}),
    ("rules-emerging-threats/2019/Exploits/CVE-2019-14287/lnx_sudo_exploit_cve_2019_14287.yml", "syslog",
     "<85>Nov 28 16:48:07 jump01 sudo:   deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=#-1 ; COMMAND=/bin/bash",
     "<85>Nov 28 16:48:07 jump01 sudo:   deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/bash"),
    ("rules/linux/builtin/lnx_privileged_user_creation.yml", "syslog",
     SYSLOG + "useradd[4133]: new user: name=john, UID=0, GID=0, home=/home/john, shell=/bin/bash",
     SYSLOG + "useradd[4133]: new user: name=john, UID=1006, GID=1006, home=/home/john, shell=/bin/bash"),
    ("rules/linux/builtin/sshd/lnx_sshd_susp_ssh.yml", "syslog",
     SYSLOG + "sshd[4133]: error: Corrupted MAC on input. [preauth]",
     SYSLOG + "haproxy[4133]: backend ssl: Corrupted MAC on input."),
    ("rules/linux/builtin/cron/lnx_cron_crontab_file_modification.yml", "syslog",
     "<78>Nov 28 16:48:42 jump01 CRON[4133]: (root) REPLACE (root)",
     "<13>Nov 28 16:48:42 app01 java[4133]: SQL: REPLACE INTO sessions VALUES (1)"),
]


@pytest.mark.skipif(not SIGMAHQ.is_dir(), reason=NO_SIGMAHQ)
@pytest.mark.parametrize(("rule_file", "format_name", "trigger", "near_miss"), SIGMAHQ_CASES,
                         ids=[Path(case[0]).stem for case in SIGMAHQ_CASES])
def test_sigmahq_rule_finds_vigils_events_through_the_mapping(
        rule_file: str, format_name: str, trigger: Any, near_miss: Any) -> None:
    loaded = load_rules([SIGMAHQ / rule_file], pack="sigmahq")
    assert loaded.errors == [] and len(loaded.rules) == 1
    engine = Engine(loaded.rules)
    assert engine.match(parse(trigger, format_name)), f"missed {trigger!r}"
    assert engine.match(parse(near_miss, format_name)) == [], f"fired on {near_miss!r}"


# --- real attack recordings ------------------------------------------------------------------------------

EVTX_SET = SHARED_DATA / "evtx" / "EVTX-ATTACK-SAMPLES"
# Recordings of real attacks (EVTX-ATTACK-SAMPLES) and the starter rule each must raise.
EVTX_DETECTIONS = [
    ("Credential Access/sysmon_10_11_lsass_memdump.evtx", "proc_access_win_lsass_memory_read"),
    ("Credential Access/sysmon_10_lsass_mimikatz_sekurlsa_logonpasswords.evtx", "proc_access_win_lsass_memory_read"),
    ("Execution/exec_sysmon_lobin_regsvr32_sct.evtx", "proc_creation_win_regsvr32_remote_scriptlet"),
    ("Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx",
     "proc_creation_win_rundll32_script_or_url"),
    ("Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx",
     "proc_creation_win_schtasks_create_suspicious"),
    ("Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx", "proc_creation_win_whoami_discovery"),
    ("AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx", "proc_creation_win_shadow_copy_deletion"),
    ("AutomatedTestingTools/Malware/sideloading_uacbypass_rundll32_injection_c2.evtx",
     "proc_creation_win_office_spawns_shell"),
    ("Defense Evasion/DE_1102_security_log_cleared.evtx", "win_security_audit_log_cleared"),
    ("Defense Evasion/DE_Fake_ComputerAccount_4720.evtx", "win_security_user_account_created"),
    ("Persistence/Network_Service_Guest_added_to_admins_4732.evtx", "win_security_member_added_to_admins"),
    ("Privilege Escalation/System_7045_namedpipe_privesc.evtx", "win_system_service_install_suspicious"),
]


@pytest.mark.skipif(not EVTX_SET.is_dir(), reason=f"the EVTX attack samples are not at {EVTX_SET}")
@pytest.mark.parametrize(("recording", "rule_name"), EVTX_DETECTIONS,
                         ids=[f"{Path(file).stem}-{rule}" for file, rule in EVTX_DETECTIONS])
def test_starter_rule_detects_a_recorded_attack(engine: Engine, recording: str, rule_name: str) -> None:
    path = EVTX_SET / recording
    if not path.is_file():
        pytest.skip(f"{path} is not in this copy of the samples")
    fired = {Path(rule.path).stem for matches in engine.match_many(list(evtx_events(path))) for rule in matches}
    assert rule_name in fired


def test_parse_failures_are_not_silently_skipped() -> None:
    """The helper refuses a record its parser cannot read (a broken test input must not pass as a miss)."""
    with pytest.raises(UnreadableRecord, match="refused"):
        parse("not a syslog line", "web_access")
    assert isinstance(parse_records([b"x"], BatchMeta(source="t", unit_id=1, format="web_access"),
                                    SourceConfig())[0], ParseFailure)
