"""MISP warninglists: values that feeds list as indicators but that are not malicious (public DNS
resolvers, cloud ranges, the most visited sites, hashes of empty files, RFC 1918 networks, …).

The lists ship inside ``pymispwarninglists`` (119 of them, 2.4 million entries). Vigil does not search
them list by list: ``WarninglistIndex.build`` reads each list once into one index for all of them,

- exact values (``string`` lists: hashes, names, addresses) in one hash table;
- ``hostname`` lists in another, looked up for the name and each of its parent domains, so that a
  listed domain covers its subdomains (``.google.com`` entries of ``string`` lists too);
- ``cidr`` lists as sorted, non-overlapping integer ranges per IP version, each knowing the lists that
  cover it (one binary search per address);
- ``substring`` lists in an Aho-Corasick automaton, and ``regex`` lists as compiled patterns, only
  because their list type says so.

A check is a few dictionary look-ups and a binary search: microseconds. Each list applies to the
indicator types its ``matching_attributes`` name (a URL is checked on its host, an e-mail address on
its domain, and on the whole address for ``regex`` lists). ``WarninglistIndex.build`` keeps the index
for the life of the process. Which lists apply is the caller's choice; by default every list whose
category is ``false-positive`` (lists without a category are, as in MISP).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
import socket
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ahocorasick
import orjson
import pymispwarninglists

from vigil.core.errors import BadInput, Unavailable
from vigil.intel.indicators import IndicatorType

PACKAGE_LISTS = Path(pymispwarninglists.__file__).parent / "data" / "misp-warninglists" / "lists"
FALSE_POSITIVE = "false-positive"
_IP_KINDS = frozenset({IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR})
_NAME_KINDS = frozenset({IndicatorType.DOMAIN, IndicatorType.HOSTNAME})
# MISP attribute types → the Vigil indicator types a list naming them applies to.
_ATTRIBUTE_KINDS: dict[str, frozenset[IndicatorType]] = {
    **dict.fromkeys(("ip-src", "ip-dst", "ip-src|port", "ip-dst|port"), _IP_KINDS),
    "domain|ip": _IP_KINDS | _NAME_KINDS,
    "domain": frozenset({IndicatorType.DOMAIN}),
    **dict.fromkeys(("hostname", "hostname|port"), frozenset({IndicatorType.HOSTNAME})),
    **dict.fromkeys(("url", "uri", "link"), frozenset({IndicatorType.URL})),
    **dict.fromkeys(("md5", "filename|md5", "x509-fingerprint-md5"), frozenset({IndicatorType.MD5})),
    **dict.fromkeys(("sha1", "filename|sha1", "x509-fingerprint-sha1"), frozenset({IndicatorType.SHA1})),
    **dict.fromkeys(("sha256", "filename|sha256", "x509-fingerprint-sha256"), frozenset({IndicatorType.SHA256})),
    **dict.fromkeys(("email", "email-src", "email-dst", "target-email", "whois-registrant-email", "dns-soa-email"),
                    frozenset({IndicatorType.EMAIL})),
}
# Lists that name no matching attributes apply to what their type can hold.
_TYPE_KINDS: dict[str, frozenset[IndicatorType]] = {
    "cidr": _IP_KINDS, "hostname": _NAME_KINDS | {IndicatorType.URL},
    "string": frozenset(IndicatorType), "substring": frozenset(IndicatorType), "regex": frozenset(IndicatorType),
}
_PHP_REGEX = re.compile(r"/(?P<pattern>.*)/(?P<flags>[a-z]*)", re.DOTALL)


@dataclass(frozen=True)
class WarninglistInfo:
    """One warninglist as ``available()`` describes it."""

    name: str
    description: str
    category: str  # "false-positive" or "known"
    type: str  # string | hostname | cidr | substring | regex
    entries: int
    version: int


@dataclass(frozen=True)
class WarninglistHit:
    """A warninglist that lists the value checked."""

    name: str
    version: int
    category: str


@dataclass(frozen=True)
class _List:
    hit: WarninglistHit
    kinds: frozenset[IndicatorType]


def _read(folder: Path) -> Iterator[dict[str, Any]]:
    """Each list of a misp-warninglists ``lists`` folder, one at a time (all of them at once is 250 MB)."""
    files = sorted(folder.glob("*/list.json"))
    if not files:
        raise Unavailable(f"no MISP warninglists at {folder}: is pymispwarninglists installed with its data?")
    for path in files:
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict) and isinstance(data.get("name"), str) and isinstance(data.get("list"), list):
            yield data


def _category(data: dict[str, Any]) -> str:
    return str(data.get("category") or FALSE_POSITIVE).replace("_", "-")


def _info(data: dict[str, Any]) -> WarninglistInfo:
    return WarninglistInfo(name=data["name"], description=str(data.get("description") or ""),
                           category=_category(data), type=str(data.get("type") or "string"),
                           entries=len(data["list"]), version=int(data.get("version") or 0))


@functools.lru_cache(maxsize=4)
def _catalogue(folder: Path) -> tuple[WarninglistInfo, ...]:
    return tuple(sorted((_info(data) for data in _read(folder)), key=lambda info: info.name.casefold()))


# Off unless named: popularity rankings of a million sites would hold back any indicator under a popular
# domain (and take 300 MB), and malware hides behind dynamic DNS, so that list says nothing benign.
BIGGEST_DEFAULT = 500_000
NOT_BENIGN = frozenset({"List of known dynamic DNS domains"})


def default_on(info: WarninglistInfo) -> bool:
    """Whether a false-positive list applies when the settings name none."""
    return info.entries <= BIGGEST_DEFAULT and info.name not in NOT_BENIGN


def available(folder: Path = PACKAGE_LISTS) -> list[WarninglistInfo]:
    """Every warninglist there is, by name (read once per process)."""
    return list(_catalogue(folder))


def _kinds(data: dict[str, Any]) -> frozenset[IndicatorType]:
    attributes = data.get("matching_attributes") or []
    if not attributes:
        return _TYPE_KINDS.get(str(data.get("type")), frozenset())
    return frozenset(kind for attribute in attributes for kind in _ATTRIBUTE_KINDS.get(str(attribute), ()))


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None


def _regex(entry: str) -> re.Pattern[str] | None:
    """A PHP-style ``/pattern/flags`` entry as a Python pattern (``i`` is honoured, ``g`` means nothing
    for a yes/no match); None when Python's engine cannot read it."""
    found = _PHP_REGEX.fullmatch(entry.strip())
    pattern, flags = (found["pattern"], found["flags"]) if found else (entry.strip(), "")
    try:
        return re.compile(pattern, re.IGNORECASE if "i" in flags else 0)
    except re.error:
        return None


class _Ranges:
    """Address ranges of many lists, cut into non-overlapping segments that each know their lists."""

    def __init__(self, ranges: Iterable[tuple[int, int, int]]) -> None:
        edges: dict[int, list[tuple[int, int]]] = {}  # position → (+1 opens / -1 closes, list id)
        for start, end, owner in ranges:
            edges.setdefault(start, []).append((1, owner))
            edges.setdefault(end + 1, []).append((-1, owner))
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.owners: list[tuple[int, ...]] = []
        active: dict[int, int] = {}
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        positions = sorted(edges)
        for index, position in enumerate(positions):
            for change, owner in edges[position]:
                active[owner] = active.get(owner, 0) + change
                if not active[owner]:
                    del active[owner]
            if active and index + 1 < len(positions):
                owners = tuple(sorted(active))
                self.starts.append(position)
                self.ends.append(positions[index + 1] - 1)
                self.owners.append(shared.setdefault(owners, owners))

    def covering(self, first: int, last: int) -> Collection[int]:
        """The lists whose ranges cover every address from ``first`` to ``last``."""
        index = bisect.bisect_right(self.starts, first) - 1
        if index < 0 or self.ends[index] < first:
            return ()
        if self.ends[index] >= last:
            return self.owners[index]
        common, reached = set(self.owners[index]), self.ends[index]
        while reached < last and common:
            index += 1
            if index == len(self.starts) or self.starts[index] != reached + 1:
                return ()  # a gap: no list covers the whole network
            common &= set(self.owners[index])
            reached = self.ends[index]
        return common


class WarninglistIndex:
    """The enabled warninglists, indexed for checking one value in microseconds."""

    def __init__(self, lists: list[_List], exact: dict[str, tuple[int, ...]], names: dict[str, tuple[int, ...]],
                 ipv4: _Ranges, ipv6: _Ranges, substrings: Any, regexes: list[tuple[int, re.Pattern[str]]]) -> None:
        self.lists = lists
        self._exact = exact
        self._names = names
        self._ranges = {4: ipv4, 6: ipv6}
        self._substrings = substrings  # an ahocorasick.Automaton, or None when no substring list is enabled
        self._regexes = regexes

    @property
    def names(self) -> list[str]:
        """The enabled lists."""
        return [entry.hit.name for entry in self.lists]

    @classmethod
    def build(cls, enabled: Collection[str] | None = None, *, folder: Path = PACKAGE_LISTS) -> WarninglistIndex:
        """The index of the lists named in ``enabled`` (None: every false-positive list ``default_on``) of
        ``folder`` (the lists shipped with pymispwarninglists, or a newer misp-warninglists checkout's
        ``lists``). Built on first use, about a second, then kept for the process; a different set of
        enabled lists replaces it. Naming a list that does not exist is ``BadInput``."""
        return _built(None if enabled is None else frozenset(enabled), folder)

    @classmethod
    def from_lists(cls, source: Iterable[dict[str, Any]]) -> WarninglistIndex:
        """An index of lists in misp-warninglists' JSON form (name, type, list, matching_attributes, …)."""
        lists: list[_List] = []
        exact: dict[str, tuple[int, ...]] = {}
        names: dict[str, tuple[int, ...]] = {}
        ranges: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        substrings: dict[str, tuple[int, ...]] = {}
        regexes: list[tuple[int, re.Pattern[str]]] = []
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}

        def add(table: dict[str, tuple[int, ...]], key: str, owner: int) -> None:
            owners = table.get(key, ())
            if owner not in owners:
                merged = (*owners, owner)
                table[key] = shared.setdefault(merged, merged)  # a million keys share a handful of tuples

        for data in sorted(source, key=lambda data: str(data["name"]).casefold()):
            owner = len(lists)
            info = _info(data)
            lists.append(_List(WarninglistHit(info.name, info.version, info.category), _kinds(data)))
            for raw in data["list"]:
                entry = str(raw).strip()
                if not entry:
                    continue
                if info.type == "cidr":
                    network = _network(entry)
                    if network is not None:
                        ranges[network.version].append(
                            (int(network.network_address), int(network.broadcast_address), owner))
                    else:
                        add(exact, entry.lower(), owner)
                elif info.type == "hostname" or (info.type == "string" and entry.startswith(".")):
                    add(names, entry.lower().strip("."), owner)  # ".example.com": the domain and below
                elif info.type == "substring":
                    add(substrings, entry.lower(), owner)
                elif info.type == "regex":
                    pattern = _regex(entry)
                    if pattern is not None:
                        regexes.append((owner, pattern))
                else:
                    add(exact, entry.lower(), owner)
        automaton = None
        if substrings:
            automaton = ahocorasick.Automaton()
            for needle, owners in substrings.items():
                automaton.add_word(needle, owners)
            automaton.make_automaton()
        return cls(lists, exact, names, _Ranges(ranges[4]), _Ranges(ranges[6]), automaton, regexes)

    def check(self, kind: IndicatorType, value: str) -> list[WarninglistHit]:
        """The enabled lists that list ``value`` as an indicator of type ``kind`` (empty for most values)."""
        text = value.strip().lower()
        owners: set[int] = set()
        if kind in _IP_KINDS:
            self._check_address(kind, text, owners)
            subject = text
        elif kind is IndicatorType.URL:
            try:
                subject = urlsplit(text).hostname or text
            except ValueError:
                subject = text
            owners.update(self._exact.get(text, ()))  # lists of whole URLs
            self._check_name(subject, owners)
        elif kind is IndicatorType.EMAIL:
            subject = text.rpartition("@")[2]
            self._check_name(subject, owners)
        elif kind in _NAME_KINDS:
            subject = text.rstrip(".")
            self._check_name(subject, owners)
        else:
            subject = text
            owners.update(self._exact.get(text, ()))
        if self._substrings is not None:
            for _, found in self._substrings.iter(subject):
                owners.update(found)
        for owner, pattern in self._regexes:
            if kind in self.lists[owner].kinds and pattern.search(value.strip()):
                owners.add(owner)
        return [self.lists[owner].hit for owner in sorted(owners) if kind in self.lists[owner].kinds]

    def _check_name(self, name: str, owners: set[int]) -> None:
        owners.update(self._exact.get(name, ()))
        names = self._names
        while True:  # the name, then each parent domain
            owners.update(names.get(name, ()))
            dot = name.find(".")
            if dot < 0:
                return
            name = name[dot + 1:]

    def _check_address(self, kind: IndicatorType, text: str, owners: set[int]) -> None:
        owners.update(self._exact.get(text, ()))
        if kind is not IndicatorType.CIDR:
            # inet_pton is a tenth of the cost of ipaddress, which matters at a few microseconds a check
            family, version = (socket.AF_INET6, 6) if ":" in text else (socket.AF_INET, 4)
            try:
                address = int.from_bytes(socket.inet_pton(family, text), "big")
            except OSError:
                return
            owners.update(self._ranges[version].covering(address, address))
            return
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return
        owners.update(self._ranges[network.version].covering(int(network.network_address),
                                                             int(network.broadcast_address)))


# One index at a time: with every list it holds about 300 MB, so a changed selection replaces it.
@functools.lru_cache(maxsize=1)
def _built(enabled: frozenset[str] | None, folder: Path) -> WarninglistIndex:
    known = {info.name: info for info in _catalogue(folder)}
    if enabled is not None:
        unknown = sorted(enabled - set(known))
        if unknown:
            raise BadInput(f"no warninglist named {', '.join(repr(name) for name in unknown)}; see the available "
                           "lists", errors=[{"field": "warninglists", "message": f"unknown: {name}"}
                                            for name in unknown])
    wanted = enabled if enabled is not None else {
        name for name, info in known.items() if info.category == FALSE_POSITIVE and default_on(info)}
    return WarninglistIndex.from_lists(data for data in _read(folder) if data["name"] in wanted)
