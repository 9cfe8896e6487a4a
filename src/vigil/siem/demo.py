"""Demo logs: a realistic day of a small company's logs with three attacks in it, and the shared EVTX set.

``generate`` writes the 24 hours before ``now`` as the devices would have sent them, in their real
formats: Linux servers' syslog (sshd, sudo, cron, useradd) and a firewall's CEF over syslog, the web
server's nginx access log, Winlogbeat documents from the Windows machines, Suricata EVE from the IDS
sensor and Zeek JSON. The content is fixed by a seeded random generator (only the times move with
``now``), so the guide and screenshots can point at it. Stamps without a zone (syslog, nginx) are
written in ``settings.log_timezone``, as the devices would.

The stories, all from documentation address ranges (RFC 5737):

1. SSH brute force on the jump host ``jump01``: 203.0.113.66 tries root, admin and made-up users for
   about 14 minutes (hundreds of failures), then logs in as ``deploy``, runs sudo and adds a user.
2. Web scan of ``web01`` from 198.51.100.23: Nikto (404 storm, ``/.env``, ``/wp-login.php``, ``/.git``,
   ``/etc/passwd`` traversal), then sqlmap against the product API; Suricata alerts; the firewall
   blocks the scanner afterwards.
3. RDP password guessing on ``WS-FIN-07`` from 198.51.100.77 (a burst of 4625), then a type-10 logon as
   ``administrator``, encoded PowerShell, ``whoami``, ``net user svc-backup /add`` into the local
   administrators; Suricata sees the PowerShell script being fetched, which then beacons every ten
   minutes to ``cdn-telemetry.dustyjump-c2.com`` (DNS queries; threat intelligence knows the name).

``load`` feeds every record through ``Siem.submit`` (the spool and the pipeline, as from the network),
then reads the EVTX set in ``../shared/data/evtx`` (beside the checkout) when present. It is idempotent: a marker
in the event store (an exactly-once stream position, ``demo:logs`` and ``demo:evtx``) says what was loaded.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select

from vigil.accounts.models import OrgUnit
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.siem import demo_windows as windows
from vigil.siem import sources
from vigil.siem.ingest import FileIngester, FileOrigin, LocalSink, file_siem, open_siem_for_files
from vigil.siem.models import LogSource
from vigil.siem.runtime import Siem
from vigil.siem.sources import SourceCreate
from vigil.siem.spool import BatchMeta

SEED = 20261128
LOGS_MARKER = "demo:logs"
EVTX_MARKER = "demo:evtx"
EVTX_SOURCE = "file:evtx-attack-samples"
SILENT_DEMO_SOURCE = "syslog:192.0.2.1"  # TEST-NET-1: a documentation address, never a real sender
# Where `make demo` finds the shared EVTX set: beside the checkout, as the project's data README says.
EVTX_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "evtx"
BATCH = 5_000
WEB_UNIT = "支付业务 Payments"  # the demo unit that owns the web shop, when the accounts demo made it

SSH_ATTACKER = "203.0.113.66"
WEB_SCANNER = "198.51.100.23"
RDP_ATTACKER = "198.51.100.77"
C2_DOMAIN = "cdn-telemetry.dustyjump-c2.com"  # the RDP intruder's beacon (threat intelligence knows it)
JUMP_HOST = ("jump01", "10.10.0.5")
WEB_HOST = ("web01", "10.10.1.11")
LINUX_HOSTS = (JUMP_HOST, WEB_HOST, ("db01", "10.10.2.21"))
ADMINS = (("ops.li", "10.10.0.50"), ("ops.wang", "10.10.0.51"), ("jenkins", "10.10.0.60"))
NIKTO_AGENT = "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:{test:06d})"
SQLMAP_AGENT = "sqlmap/1.7.11#stable (https://sqlmap.org)"


@dataclass(frozen=True)
class Stream:
    """One source's records, as its sender would deliver them."""

    source: str
    format: str
    transport: str
    peer: str = ""
    file_path: str | None = None  # for a file source: the path its events name in log.file.path
    records: list[tuple[datetime, bytes]] = field(default_factory=list)

    def add(self, when: datetime, record: str | bytes) -> None:
        self.records.append((when, record.encode() if isinstance(record, str) else record))


@dataclass
class Day:
    """The generated day: its streams and when the attacks happened (for the guide and the tests)."""

    start: datetime
    end: datetime
    streams: list[Stream]
    ssh_success_at: datetime | None = None
    web_scan_at: datetime | None = None
    rdp_logon_at: datetime | None = None

    @property
    def total(self) -> int:
        return sum(len(stream.records) for stream in self.streams)


# --- formats ----------------------------------------------------------------------------------------


class Clock:
    """Stamps in the devices' own formats; zone-less ones in the log time zone."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def bsd(self, when: datetime) -> str:
        local = when.astimezone(self.zone)
        return f"{local:%b} {local.day:>2} {local:%H:%M:%S}"

    def nginx(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%d/%b/%Y:%H:%M:%S %z")

    def eve(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def iso_z(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_line(document: dict[str, object]) -> bytes:
    return orjson.dumps(document)


class Generator:
    def __init__(self, settings: Settings, now: datetime) -> None:
        self.rng = random.Random(SEED)
        # Office-hour weighting depends on when the demo is loaded; its own generator keeps that from
        # changing what the records say.
        self.timing = random.Random(SEED + 1)
        self.clock = Clock(ZoneInfo(settings.log_timezone))
        self.end = now.astimezone(UTC).replace(microsecond=0)
        self.start = self.end - timedelta(hours=24)
        self.pid = 3000
        self.syslog = Stream("syslog", "syslog", "syslog-udp", peer="10.10.0.2")
        self.nginx = Stream("file:nginx-access", "web_access", "file", file_path="/var/log/nginx/access.log")
        self.winlogbeat = Stream("bulk:winlogbeat", "winlogbeat", "bulk", peer="10.20.0.15")
        self.suricata = Stream("file:suricata-eve", "suricata", "file", file_path="/var/log/suricata/eve.json")
        self.zeek = Stream("http:zeek", "zeek", "http", peer="10.10.9.3")
        self.public = [f"192.0.2.{n}" for n in range(2, 254)] + [f"203.0.113.{n}" for n in range(100, 254)]

    # --- helpers --------------------------------------------------------------------------------------

    def at(self, hours: float) -> datetime:
        """A moment ``hours`` after the start of the day."""
        return self.start + timedelta(seconds=round(hours * 3600, 3))

    def busy_moment(self) -> datetime:
        """A random moment weighted towards office hours in the log time zone."""
        while True:
            when = self.start + timedelta(seconds=self.timing.uniform(0, 24 * 3600))
            hour = when.astimezone(self.clock.zone).hour
            if self.timing.random() < (1.0 if 8 <= hour < 20 else 0.25):
                return when

    def next_pid(self) -> int:
        self.pid += self.rng.randint(1, 40)
        return self.pid

    def line(self, when: datetime, priority: int, host: str, tag: str, message: str) -> None:
        self.syslog.add(when, f"<{priority}>{self.clock.bsd(when)} {host} {tag}: {message}")

    def sshd(self, when: datetime, host: str, pid: int, message: str) -> None:
        self.line(when, 86, host, f"sshd[{pid}]", message)  # authpriv.info

    # --- Linux servers ----------------------------------------------------------------------------

    def linux_background(self) -> None:
        for host, _ in LINUX_HOSTS:
            minute = self.rng.randint(0, 9)
            when = self.at(minute / 60)
            while when < self.end:
                self.line(when, 78, host, f"CRON[{self.next_pid()}]",
                          "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)")
                when += timedelta(minutes=10)
        for _ in range(36):
            user, address = self.rng.choice(ADMINS)
            host, _ = self.rng.choice(LINUX_HOSTS)
            when, pid, port = self.busy_moment(), self.next_pid(), self.rng.randint(40000, 65000)
            key = base64.b64encode(self.rng.randbytes(32)).decode().rstrip("=")
            self.sshd(when, host, pid, f"Accepted publickey for {user} from {address} port {port} ssh2: "
                                       f"ED25519 SHA256:{key}")
            self.sshd(when, host, pid, f"pam_unix(sshd:session): session opened for user {user}(uid=1001) by (uid=0)")
            if user != "jenkins" and self.rng.random() < 0.6:
                command = self.rng.choice(("/usr/bin/systemctl restart nginx", "/usr/bin/journalctl -u nginx",
                                           "/usr/bin/apt-get upgrade -y", "/usr/bin/tail -f /var/log/syslog"))
                self.line(when + timedelta(seconds=40), 85, host, "sudo",
                          f"  {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={command}")
            self.sshd(when + timedelta(minutes=self.rng.randint(2, 50)), host, pid,
                      f"pam_unix(sshd:session): session closed for user {user}")
        # The jump host faces the internet: the usual trickle of bots trying a password or two.
        for _ in range(25):
            bot, when = self.rng.choice(self.public), self.busy_moment()
            for attempt in range(self.rng.randint(1, 3)):
                user = self.rng.choice(("root", "admin", "user", "test", "pi"))
                invalid = "" if user == "root" else "invalid user "
                self.sshd(when + timedelta(seconds=attempt * 3), JUMP_HOST[0], self.next_pid(),
                          f"Failed password for {invalid}{user} from {bot} port {self.rng.randint(30000, 60000)} ssh2")

    def ssh_brute_force(self, begin: datetime) -> datetime:
        host = JUMP_HOST[0]
        invalid = ("oracle", "test", "ubuntu", "postgres", "git")
        names = ["root"] * 150 + ["admin"] * 60 + list(invalid) * 20
        self.rng.shuffle(names)
        names += ["deploy"] * 110  # the guessing narrows down on a real account
        when = begin
        for name in names:
            when += timedelta(seconds=self.rng.uniform(0.8, 3.2))
            pid, port = self.next_pid(), self.rng.randint(32768, 60999)
            if name in invalid:
                self.sshd(when, host, pid, f"Invalid user {name} from {SSH_ATTACKER} port {port}")
            prefix = "invalid user " if name in invalid else ""
            self.sshd(when, host, pid, f"Failed password for {prefix}{name} from {SSH_ATTACKER} port {port} ssh2")
        success = when + timedelta(seconds=5)
        pid = self.next_pid()
        self.sshd(success, host, pid, f"Accepted password for deploy from {SSH_ATTACKER} port 40122 ssh2")
        self.sshd(success, host, pid, "pam_unix(sshd:session): session opened for user deploy(uid=1003) by (uid=0)")
        for offset, command in ((40, "/usr/bin/id"), (55, "/bin/bash")):
            self.line(success + timedelta(seconds=offset), 85, host, "sudo",
                      f"  deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=root ; COMMAND={command}")
        self.line(success + timedelta(seconds=90), 86, host, f"useradd[{self.next_pid()}]",
                  "new user: name=sysbackup, UID=1005, GID=1005, home=/home/sysbackup, shell=/bin/bash, "
                  "from=/dev/pts/1")
        return success

    def firewall(self, block_from: datetime) -> None:
        def cef(when: datetime, src: str, dst: str, dport: int, action: str) -> None:
            name, severity, priority = (("traffic:forward deny", 5, 164) if action == "deny"
                                        else ("traffic:forward accept", 3, 166))  # local4.warning / .info
            # The firewall sends CEF straight after the syslog header, with no program tag.
            port = self.rng.randint(1024, 65000)
            self.syslog.add(when, f"<{priority}>{self.clock.bsd(when)} fw01 CEF:0|Fortinet|FortiGate-100F|7.2.5|"
                                  f"0000000013|{name}|{severity}|src={src} dst={dst} spt={port} dpt={dport} "
                                  f"proto=TCP act={action} deviceInboundInterface=wan1 deviceOutboundInterface=dmz")

        for _ in range(160):
            cef(self.busy_moment(), self.rng.choice(self.public), self.rng.choice((WEB_HOST[1], JUMP_HOST[1])),
                self.rng.choice((23, 445, 3389, 1433, 5900, 6379)), "deny")
        for _ in range(40):
            cef(self.busy_moment(), self.rng.choice(self.public), WEB_HOST[1], 443, "accept")
        for second in range(0, 600, 20):  # the responder blocked the scanner: its retries are dropped
            cef(block_from + timedelta(seconds=second), WEB_SCANNER, WEB_HOST[1], 443, "deny")

    # --- the web server -------------------------------------------------------------------------------

    def web_background(self) -> None:
        agents = (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 MicroMessenger/8.0.53",
            "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        )
        pages = (("/", 200, 5120), ("/products", 200, 18230), ("/static/app.js", 200, 91233),
                 ("/static/app.css", 200, 12877), ("/api/v1/products?page={n}", 200, 4410), ("/api/v1/cart", 200, 312),
                 ("/login", 200, 3301), ("/images/banner-{n}.jpg", 304, 0), ("/favicon.ico", 200, 1150),
                 ("/checkout", 302, 0), ("/old-offers", 404, 162))
        clients = [(self.rng.choice(self.public), self.rng.choice(agents)) for _ in range(260)]
        for _ in range(6000):
            address, agent = self.rng.choice(clients)
            path, status, size = self.rng.choices(pages, weights=(20, 14, 10, 10, 18, 6, 4, 8, 4, 3, 1))[0]
            method = "POST" if path in ("/login", "/api/v1/cart") and self.rng.random() < 0.3 else "GET"
            self.web(self.busy_moment(), address, method, path.format(n=self.rng.randint(1, 12)), status,
                     size + self.rng.randint(0, 64) if size else 0, agent, "https://shop.example.com/")

    def web(self, when: datetime, client: str, method: str, path: str, status: int, size: int, agent: str,
            referrer: str = "-") -> None:
        self.nginx.add(when, f'{client} - - [{self.clock.nginx(when)}] "{method} {path} HTTP/1.1" {status} {size} '
                             f'"{referrer}" "{agent}"')

    def web_scan(self, begin: datetime) -> datetime:
        probes = ["/.env", "/.git/config", "/wp-login.php", "/wp-admin/", "/phpmyadmin/", "/admin/", "/backup.zip",
                  "/config.php.bak", "/server-status", "/cgi-bin/test.cgi", "/../../../../etc/passwd",
                  "/index.php?page=../../../../etc/passwd", "/.aws/credentials", "/actuator/env", "/.DS_Store"]
        probes += [f"/{word}{suffix}" for word in ("admin", "old", "test", "dev", "db", "api", "upload", "site")
                   for suffix in ("", ".bak", ".old", ".tar.gz", ".sql", "/login.php", ".zip")]
        probes += [f"/scripts/{n}.cgi" for n in range(300)]
        when = begin
        for test, path in enumerate(probes, start=1):
            when += timedelta(seconds=self.rng.uniform(0.2, 1.2))
            status = 403 if path in ("/server-status", "/.git/config") else 404
            self.web(when, WEB_SCANNER, "GET", path, status, 162, NIKTO_AGENT.format(test=test))
        for n in range(80):
            when += timedelta(seconds=self.rng.uniform(0.5, 2.0))
            payload = self.rng.choice(("1%27%20AND%201%3D1--%20-", "1%20UNION%20ALL%20SELECT%20NULL%2CNULL--%20-",
                                       "1%27%20AND%20SLEEP%285%29--%20-",
                                       "1%29%20AND%204219%3D4219%20AND%20%288817%3D8817"))
            self.web(when, WEB_SCANNER, "GET", f"/api/v1/products?id={payload}&n={n}",
                     self.rng.choice((200, 500, 500)), 4410, SQLMAP_AGENT)
        return when

    # --- network sensors ------------------------------------------------------------------------------

    def eve(self, when: datetime, event_type: str, src: str, dst: str, dport: int, **extra: object) -> None:
        record: dict[str, object] = {
            "timestamp": self.clock.eve(when), "flow_id": self.rng.randint(10**14, 10**15), "in_iface": "ens192",
            "event_type": event_type, "src_ip": src, "src_port": self.rng.randint(1024, 65000), "dest_ip": dst,
            "dest_port": dport, "proto": "UDP" if dport == 53 else "TCP", "host": "ids01", **extra}
        self.suricata.add(when, json_line(record))

    def alert(self, when: datetime, src: str, dst: str, dport: int, sid: int, signature: str, category: str,
              severity: int, **extra: object) -> None:
        self.eve(when, "alert", src, dst, dport, alert={
            "action": "allowed", "gid": 1, "signature_id": sid, "rev": 3, "signature": signature,
            "category": category, "severity": severity}, app_proto="http" if dport == 80 else "failed", **extra)

    def zeek_conn(self, when: datetime, src: str, dst: str, dport: int, state: str = "SF") -> None:
        uid = "C" + "".join(self.rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", k=17))
        self.zeek.add(when, json_line({
            "ts": round(when.timestamp(), 6), "uid": uid, "id.orig_h": src, "id.orig_p": self.rng.randint(1024, 65000),
            "id.resp_h": dst, "id.resp_p": dport, "proto": "udp" if dport == 53 else "tcp",
            "duration": round(self.rng.uniform(0.01, 30), 6), "orig_bytes": self.rng.randint(0, 4000),
            "resp_bytes": self.rng.randint(0, 90000), "conn_state": state, "missed_bytes": 0,
            "history": "ShADadFf" if state == "SF" else "S", "_path": "conn"}))

    def network_background(self) -> None:
        inside = [f"10.20.3.{n}" for n in range(20, 60)] + [address for _, address in LINUX_HOSTS]
        domains = ("www.baidu.com", "update.microsoft.com", "api.weixin.qq.com", "oss-cn-shanghai.aliyuncs.com",
                   "github.com", "pypi.org", "time.windows.com", "login.microsoftonline.com")
        for _ in range(700):
            when, src = self.busy_moment(), self.rng.choice(inside)
            dst = self.rng.choice(self.public)
            self.eve(when, "flow", src, dst, 443, app_proto="tls", flow={
                "pkts_toserver": self.rng.randint(5, 80), "pkts_toclient": self.rng.randint(5, 120),
                "bytes_toserver": self.rng.randint(500, 9000), "bytes_toclient": self.rng.randint(900, 250000),
                "state": "closed", "reason": "timeout"})
            self.zeek_conn(when, src, dst, 443)
        for _ in range(400):
            when, src, name = self.busy_moment(), self.rng.choice(inside), self.rng.choice(domains)
            self.eve(when, "dns", src, "10.10.0.53", 53, dns={"type": "query", "id": self.rng.randint(1, 65535),
                                                               "rrname": name, "rrtype": "A", "tx_id": 0})
            self.zeek.add(when, json_line({
                "ts": round(when.timestamp(), 6), "uid": f"D{self.rng.getrandbits(64):016x}", "id.orig_h": src,
                "id.orig_p": self.rng.randint(1024, 65000), "id.resp_h": "10.10.0.53", "id.resp_p": 53, "proto": "udp",
                "trans_id": self.rng.randint(1, 65535), "query": name, "qtype_name": "A", "rcode_name": "NOERROR",
                "answers": [f"192.0.2.{self.rng.randint(2, 250)}"], "_path": "dns"}))

    def network_attacks(self, ssh_begin: datetime, scan_begin: datetime, rdp_logon: datetime) -> None:
        jump, web, workstation = JUMP_HOST[1], WEB_HOST[1], windows.VICTIM_ADDRESS
        for minute in range(0, 14, 2):
            self.alert(ssh_begin + timedelta(minutes=minute, seconds=30), SSH_ATTACKER, jump, 22, 2001219,
                       "ET SCAN Potential SSH Scan", "Attempted Information Leak", 2)
        for second in range(0, 840, 6):
            self.zeek_conn(ssh_begin + timedelta(seconds=second), SSH_ATTACKER, jump, 22)
        self.alert(scan_begin + timedelta(seconds=4), WEB_SCANNER, web, 80, 2002677,
                   "ET SCAN Nikto Web App Scan in Progress", "Web Application Attack", 1,
                   http={"hostname": "shop.example.com", "url": "/.env", "http_user_agent": NIKTO_AGENT.format(test=1),
                         "http_method": "GET", "status": 404})
        self.alert(scan_begin + timedelta(seconds=9), WEB_SCANNER, web, 80, 2049412,
                   "ET WEB_SERVER /etc/passwd Detected in URI", "Attempted Information Leak", 2,
                   http={"hostname": "shop.example.com", "url": "/../../../../etc/passwd", "http_method": "GET",
                         "status": 404})
        self.alert(scan_begin + timedelta(minutes=6), WEB_SCANNER, web, 80, 2008538,
                   "ET SCAN Sqlmap SQL Injection Scan", "Attempted Information Leak", 2,
                   http={"hostname": "shop.example.com", "url": "/api/v1/products?id=1%27%20AND%201%3D1--%20-",
                         "http_user_agent": SQLMAP_AGENT, "http_method": "GET", "status": 500})
        for second in range(0, 240, 8):
            self.zeek_conn(rdp_logon - timedelta(seconds=240 - second), RDP_ATTACKER, workstation, 3389)
        fetch = rdp_logon + timedelta(minutes=3, seconds=12)
        self.alert(fetch, workstation, RDP_ATTACKER, 80, 2018477, "ET INFO PS1 Powershell File Request",
                   "Potentially Bad Traffic", 2, http={"hostname": RDP_ATTACKER, "url": "/a.ps1", "http_method": "GET",
                                                      "http_user_agent": "Mozilla/5.0 (Windows NT; Windows NT 10.0; "
                                                                         "en-US) WindowsPowerShell/5.1.19041.4648",
                                                      "status": 200})
        self.zeek_conn(fetch, workstation, RDP_ATTACKER, 80)
        # The script it fetched beacons to its command-and-control name every ten minutes.
        for minute in range(5, 65, 10):
            when = fetch + timedelta(minutes=minute, seconds=self.rng.randint(0, 40))
            self.eve(when, "dns", workstation, "10.10.0.53", 53, dns={
                "type": "query", "id": self.rng.randint(1, 65535), "rrname": C2_DOMAIN, "rrtype": "A", "tx_id": 0})
            self.zeek.add(when, json_line({
                "ts": round(when.timestamp(), 6), "uid": f"D{self.rng.getrandbits(64):016x}", "id.orig_h": workstation,
                "id.orig_p": self.rng.randint(1024, 65000), "id.resp_h": "10.10.0.53", "id.resp_p": 53, "proto": "udp",
                "trans_id": self.rng.randint(1, 65535), "query": C2_DOMAIN, "qtype_name": "A",
                "rcode_name": "NOERROR", "answers": [RDP_ATTACKER], "_path": "dns"}))

    def broken_records(self) -> None:
        """What real inputs carry too: a scanner's TLS probe on the syslog port, a JSON line cut short."""
        for hours in (3.2, 11.7, 18.4):
            when = self.at(hours)
            self.syslog.add(when, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 probe")
            self.zeek.add(when, b'{"ts":1764288000.1,"uid":"CdN4ru1x","id.orig_h":"10.20.3.4')

    # --- the day --------------------------------------------------------------------------------------

    def day(self) -> Day:
        ssh_begin, scan_begin, rdp_begin = self.at(16.8), self.at(19.25), self.at(21.5)
        self.linux_background()
        ssh_success = self.ssh_brute_force(ssh_begin)
        self.web_background()
        scan_end = self.web_scan(scan_begin)
        self.firewall(scan_end + timedelta(minutes=20))
        winlog = windows.WindowsDay(self.rng, self.start, self.end, self.winlogbeat.add)
        winlog.background(self.busy_moment)
        rdp_logon = winlog.rdp_attack(rdp_begin, RDP_ATTACKER)
        self.network_background()
        self.network_attacks(ssh_begin, scan_begin, rdp_logon)
        self.broken_records()
        streams = [self.syslog, self.nginx, self.winlogbeat, self.suricata, self.zeek]
        for stream in streams:  # nothing after "now" (a session closed later, a logoff next morning)
            stream.records[:] = sorted((item for item in stream.records if item[0] <= self.end),
                                       key=lambda item: item[0])
        return Day(self.start, self.end, streams, ssh_success_at=ssh_success, web_scan_at=scan_begin,
                   rdp_logon_at=rdp_logon)


def generate(settings: Settings, now: datetime | None = None) -> Day:
    """The demo day ending at ``now`` (default: the current time)."""
    return Generator(settings, now or datetime.now(UTC)).day()


# --- loading -------------------------------------------------------------------------------------------


def _batches(records: list[tuple[datetime, bytes]]) -> Iterator[list[bytes]]:
    for first in range(0, len(records), BATCH):
        yield [record for _, record in records[first: first + BATCH]]


def _unit_named(database: Database, name: str) -> int | None:
    with database.transaction(Scope.system()) as session:
        return session.scalar(select(OrgUnit.id).where(OrgUnit.name == name))


def _mark(siem: Siem, marker: str) -> None:
    """Record that a part of the demo is loaded: a position on a stream of its own, with no events."""
    unit = siem.unit_for(marker)
    siem.store.append([], unit_id=unit, source=marker, spool_position=(1, 1), stream=marker)


def _loaded(siem: Siem, marker: str) -> bool:
    return siem.store.last_position(marker) is not None


def _load_day(siem: Siem, origin: FileOrigin, database: Database) -> tuple[int, int]:
    day = generate(siem.settings)
    web_unit = _unit_named(database, WEB_UNIT)
    stored = 0
    for stream in day.streams:
        unit = siem.unit_for(stream.source)
        if stream.source == "file:nginx-access" and web_unit is not None:
            unit = web_unit
        origin.path = stream.file_path
        for batch in _batches(stream.records):
            before = siem.pipeline.status.events
            siem.submit(batch, BatchMeta(source=stream.source, unit_id=unit, format=stream.format,
                                         transport=stream.transport, peer=stream.peer))
            siem.drain()
            stored += siem.pipeline.status.events - before
    origin.path = None
    _mark(siem, LOGS_MARKER)
    return stored, len(day.streams)


def _load_evtx(siem: Siem, folder: Path) -> int:
    ingester = FileIngester(LocalSink(siem), source=EVTX_SOURCE)
    files = sorted(folder.rglob("*.evtx"))  # only the recordings, not the set's README and licence
    records = sum(result.records for result in ingester.ingest(files))
    _mark(siem, EVTX_MARKER)
    return records


def load(settings: Settings, database: Database, *, evtx_dir: Path | None = None) -> dict[str, int]:
    """Load what is missing of the demo logs; what was added ({} when nothing was)."""
    folder = evtx_dir if evtx_dir is not None else EVTX_DIR
    siem = file_siem(settings, database)
    origin = next(enricher for enricher in siem.enrichers if isinstance(enricher, FileOrigin))
    added: dict[str, int] = {}
    try:
        open_siem_for_files(siem)
        if not _loaded(siem, LOGS_MARKER):
            stored, sources = _load_day(siem, origin, database)
            added.update({"events": stored, "sources": sources})
        if folder.is_dir() and not _loaded(siem, EVTX_MARKER):
            added["EVTX records"] = _load_evtx(siem, folder)
    finally:
        siem.stop()
    return added


def configure_sources(ctx: Context) -> int:
    """The demo's configured sources; how many were configured now.

    The EVTX attack samples (recorded years ago) are kept out of the 180-day retention. A branch firewall
    is expected every 15 minutes but never sends: it is flagged silent and, once `vigil serve` has looked
    (within a minute), raises a log-source health alert."""
    wanted = [
        SourceCreate(name=EVTX_SOURCE, retention_days=36500,
                     description="Windows attack recordings for hunting and detection tests; kept whatever their age."),
        SourceCreate(name=SILENT_DEMO_SOURCE, format="syslog", timezone="Asia/Shanghai", expected_interval_minutes=15,
                     description="Branch office firewall (demo: configured, never sends, so it is flagged silent)."),
    ]
    configured = set(ctx.session.scalars(select(LogSource.name)))
    for data in wanted:
        if data.name not in configured:
            sources.create_source(ctx, data=data)
    return sum(1 for data in wanted if data.name not in configured)


def evtx_note(evtx_dir: Path | None = None) -> str | None:
    """Why the EVTX part of the demo is not loaded, when the set is absent."""
    folder = evtx_dir if evtx_dir is not None else EVTX_DIR
    if folder.is_dir():
        return None
    return f"the EVTX sample set is not at {folder}; its part of the demo was skipped"
