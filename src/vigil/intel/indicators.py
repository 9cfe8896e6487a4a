"""Indicator types, and what a value of each must look like.

Every indicator that enters Vigil, from a feed, an import or a person, passes ``normalise``: it refangs
the value (``hxxp://evil[.]com`` is how intelligence is shared), checks it is what its type says and
returns the one spelling the matcher and the store use (lower case for names and hashes, compressed
IPv6, a network address for a CIDR). A value that is not what its type says raises ``InvalidValue``
with the reason; feeds report it with the item's position and keep every other item.

Parsers (``vigil.intel.feeds``) turn each format into ``ParsedIndicator`` and ``ParsedEntity`` items
and an ``ItemError`` for each item they could not read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class IndicatorType(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    CIDR = "cidr"  # an IPv4 or IPv6 network; matches every address inside it
    DOMAIN = "domain"  # matches the domain and all its subdomains
    HOSTNAME = "hostname"  # matches that host name exactly
    URL = "url"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    EMAIL = "email"
    FILENAME = "filename"
    PATTERN = "stix-pattern"  # a STIX pattern too complex to index: kept and evaluated as a pattern


TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
MAX_VALUE_LENGTH = 2048
_HEX = {IndicatorType.MD5: 32, IndicatorType.SHA1: 40, IndicatorType.SHA256: 64}
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<host>\[[0-9a-fA-F:.]+\]|[^/?#:@\s]+)"
                  r"(?::(?P<port>\d{1,5}))?(?P<rest>[/?#]\S*)?")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://[^/?#@\s]*@")
_EMAIL = re.compile(r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64})@(?P<domain>[^@\s]+)")
_FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f/\\]")
# Defanging as analysts and feeds write it: hxxp, [.], (.), {.}, [dot], [:], [@], [at].
_DEFANGED = (
    (re.compile(r"^hxxp", re.IGNORECASE), "http"), (re.compile(r"^fxp", re.IGNORECASE), "ftp"),
    (re.compile(r"[\[({]\s*(?:\.|dot)\s*[\])}]", re.IGNORECASE), "."),
    (re.compile(r"\[\s*:\s*\]"), ":"), (re.compile(r"\[\s*(?:@|at)\s*\]", re.IGNORECASE), "@"),
    (re.compile(r"\[/\]"), "/"),
)
URL_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "sftp", "ws", "wss", "tcp", "udp", "smb", "file"})


class InvalidValue(ValueError):
    """A value that is not what its indicator type says; the message is the reason, for people."""


@dataclass(frozen=True)
class Related:
    """Something an indicator is linked to: an actor, a campaign, a malware family, a report, a technique."""

    kind: str  # intrusion-set | campaign | malware | report | attack-pattern | tool
    name: str
    external_id: str = ""  # STIX id, MISP galaxy uuid or ATT&CK ID (T1059, G0007)


@dataclass(frozen=True)
class ParsedIndicator:
    """One indicator as a source states it, its value already normalised."""

    type: IndicatorType
    value: str
    confidence: int | None = None  # 0..100
    tlp: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    tags: tuple[str, ...] = ()
    kill_chain: tuple[str, ...] = ()  # "phase" or "kill-chain:phase"
    related: tuple[Related, ...] = ()
    description: str = ""
    external_id: str = ""  # the source's own id of this item (STIX id, MISP attribute uuid)
    pattern: str = ""  # the STIX pattern it came from, if any
    position: str = ""  # where in the source ("line 12", "objects[3]"), for messages


@dataclass(frozen=True)
class ParsedEntity:
    """An actor, campaign, malware family, report or technique described by a source."""

    kind: str
    name: str
    external_id: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    attack_ids: tuple[str, ...] = ()  # ATT&CK IDs named by the entity (T1566, G0007, S0012)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    related: tuple[Related, ...] = ()
    position: str = ""


@dataclass(frozen=True)
class ItemError:
    """An item of a source that could not be taken, where it is and why."""

    position: str
    reason: str


ParsedItem = ParsedIndicator | ParsedEntity | ItemError


@dataclass
class ParseSummary:
    """Counts of what a parse produced (the items themselves are streamed)."""

    indicators: int = 0
    entities: int = 0
    errors: list[ItemError] = field(default_factory=list)


def refang(value: str) -> str:
    """``hxxp://evil[.]com`` → ``http://evil.com``."""
    for pattern, replacement in _DEFANGED:
        value = pattern.sub(replacement, value)
    return value


def normalise(kind: IndicatorType | str, raw: str) -> str:
    """The canonical spelling of ``raw`` as an indicator of type ``kind``; ``InvalidValue`` says why not."""
    try:
        kind = IndicatorType(kind)
    except ValueError:
        raise InvalidValue(f"unknown indicator type {kind!r}; one of {', '.join(IndicatorType)}") from None
    if not isinstance(raw, str):
        raise InvalidValue(f"a {kind} must be text, not {type(raw).__name__}")
    value = raw.strip()
    if not value:
        raise InvalidValue(f"empty {kind}")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidValue(f"{kind} longer than {MAX_VALUE_LENGTH} characters")
    if kind is IndicatorType.PATTERN:
        return value
    if kind is not IndicatorType.FILENAME:
        value = refang(value)
    return _NORMALISERS[kind](value)


def _ipv4(value: str) -> str:
    if _IPV4.fullmatch(value) is None:
        raise InvalidValue(f"{value!r} is not an IPv4 address (four numbers 0-255, no leading zeros)")
    return value


def _ipv6(value: str) -> str:
    try:
        return ipaddress.IPv6Address(value.strip("[]")).compressed
    except ValueError:
        raise InvalidValue(f"{value!r} is not an IPv6 address") from None


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidValue(f"{value!r} is not a network in CIDR notation (such as 203.0.113.0/24)") from None
    if "/" not in value:
        raise InvalidValue(f"{value!r} has no prefix length: a single address is an ipv4 or ipv6 indicator")
    return network.compressed


def _host(value: str, kind: str) -> str:
    name = value.lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise InvalidValue(f"{value!r} is not a valid internationalised {kind}") from None
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidValue(f"{value!r} is not a {kind}: it needs at least two labels (example.com)")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidValue(f"{value!r} is not a {kind}: labels are letters, digits, '-' and '_', "
                           "1 to 63 characters, not starting or ending with '-'")
    if _TLD.fullmatch(labels[-1]) is None:
        raise InvalidValue(f"{value!r} is not a {kind}: {labels[-1]!r} is not a top-level domain")
    return name


def _domain(value: str) -> str:
    return _host(value.removeprefix("*."), "domain")


def _hostname(value: str) -> str:
    return _host(value, "host name")


def _url(value: str) -> str:
    if any(c.isspace() for c in value):
        raise InvalidValue(f"{value!r} is not a URL: it contains white space")
    userinfo = _URL_USERINFO.match(value)
    text = value if userinfo is None else userinfo["scheme"] + "://" + value[userinfo.end():]
    found = _URL.fullmatch(text)
    if found is None:
        raise InvalidValue(f"{value!r} is not a URL (scheme://host/path)")
    scheme = found["scheme"].lower()
    if scheme not in URL_SCHEMES:
        raise InvalidValue(f"{value!r} is not a URL Vigil matches: scheme {scheme!r} is not one of "
                           f"{', '.join(sorted(URL_SCHEMES))}")
    host = found["host"]
    if host.startswith("["):
        host = "[" + _ipv6(host) + "]"
    elif _IPV4.fullmatch(host) is None:
        host = _host(host, "host name in the URL")
    port = found["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidValue(f"{value!r} is not a URL: port {port} is out of range")
    return f"{scheme}://{host}{':' + port if port else ''}{found['rest'] or ''}"


def _hash(kind: IndicatorType) -> Callable[[str], str]:
    length = _HEX[kind]

    def check(value: str) -> str:
        if len(value) != length or _HEX_RE.fullmatch(value) is None:
            raise InvalidValue(f"{value!r} is not an {kind.upper()} hash ({length} hexadecimal digits)")
        return value.lower()
    return check


def _email(value: str) -> str:
    found = _EMAIL.fullmatch(value.removeprefix("mailto:"))
    if found is None or found["local"].startswith(".") or found["local"].endswith(".") or ".." in found["local"]:
        raise InvalidValue(f"{value!r} is not an e-mail address (name@example.com)")
    return f"{found['local'].lower()}@{_host(found['domain'], 'domain of the address')}"


def _filename(value: str) -> str:
    if _FILENAME_FORBIDDEN.search(value) is not None:
        raise InvalidValue(f"{value!r} is not a file name: no path separators or control characters "
                           "(put a full path in a pattern)")
    if value in (".", ".."):
        raise InvalidValue(f"{value!r} is not a file name")
    return value.lower()  # Windows names are case-insensitive, and most malware names are Windows names


_NORMALISERS: dict[IndicatorType, Callable[[str], str]] = {
    IndicatorType.IPV4: _ipv4, IndicatorType.IPV6: _ipv6, IndicatorType.CIDR: _cidr,
    IndicatorType.DOMAIN: _domain, IndicatorType.HOSTNAME: _hostname, IndicatorType.URL: _url,
    IndicatorType.MD5: _hash(IndicatorType.MD5), IndicatorType.SHA1: _hash(IndicatorType.SHA1),
    IndicatorType.SHA256: _hash(IndicatorType.SHA256), IndicatorType.EMAIL: _email,
    IndicatorType.FILENAME: _filename,
}


def guess(raw: str) -> tuple[IndicatorType, str]:
    """The type and canonical value of a bare value (a plain list with no type column, a lookup box)."""
    value = refang(raw.strip())
    for kind in _GUESS_ORDER:
        try:
            return kind, _NORMALISERS[kind](value)
        except InvalidValue:
            continue
    raise InvalidValue(f"{raw!r} is not an IP address, network, domain, URL, hash or e-mail address")


# A bare name in a list is a domain (it matches its subdomains too); a network comes after addresses.
_GUESS_ORDER = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256,
                IndicatorType.URL, IndicatorType.EMAIL, IndicatorType.CIDR, IndicatorType.DOMAIN)
