"""The IOC matcher: one index per indicator type, built from the active indicators, matching events.

``IndicatorIndex.build(entries)`` takes (indicator id, type, canonical value) rows (values as
``indicators.normalise`` spells them) and ``index.match(event)`` returns a ``Hit`` for every indicator an
observable of the event matches (``event_fields`` says which fields hold which observable):

- exact values (hashes, e-mail addresses, host names, file names) in hash tables;
- addresses as integers: an IP indicator is looked up exactly, a CIDR as the observed address masked to
  each prefix length present (a bitmap of the /16 blocks any network covers answers "none" first);
- a domain matches itself and every subdomain: the observed name and each of its parent domains are
  looked up;
- a URL matches an observed URL that equals it or extends it (a query string, a deeper path): for an
  observed URL on a host some URL indicator names, each of its prefixes that ends where a path segment,
  the query or a parameter ends is looked up. (An Aho-Corasick automaton gives the same answer but holds
  a node per character of every URL: 130 MB for 75,000 URLs, against none here.) URLs compare without
  their scheme, since the same resource is reported as http and https, and path-only logs (web servers,
  Zeek, Suricata) do not say which.

Observed values are normalised the way indicators are (lower-case hosts, hashes, addresses and file names,
IPv6 as an integer) with string methods, not ``normalise()``; what a value matched is remembered (a
bounded memo per type), since events repeat their addresses, hosts and paths. An event with the same
observable in two fields gives one hit per (indicator, field).

``IndexHolder`` keeps the current index for the matching thread and replaces it in one reference
assignment; a rebuild runs in a background thread, so matching never waits for one.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.intel.event_fields import (
    ADDRESS,
    MEMO_LIMIT,
    URL,
    Plan,
    read,
    reads_as_ipv4,
    split_url,
    url_host,
    url_with_host,
)
from vigil.intel.feeds.stix_patterns import ComplexPattern, PatternError, compile_pattern
from vigil.intel.indicators import IndicatorType
from vigil.intel.screen import Screen, screen_for

log = logging.getLogger(__name__)

T = IndicatorType
Entry = tuple[int, str, str]  # (indicator id, type, canonical value)
Ref = tuple[int, str, str]  # (indicator id, type, indicator value): what an observed value matched
Found = tuple[int, str, str, str]  # a Ref and the observed value it matched
Ids = int | tuple[int, ...]

MEMO_MAX_TEXT = 256  # longer values (long URLs, odd text) are read each time rather than kept
_BLOCK_BITS = 16  # the CIDR prefilter's blocks: the first 16 bits of an address
_V4, _V6 = 4, 6
_BITS = {_V4: 32, _V6: 128}
_STRING_TYPES = (T.MD5, T.SHA1, T.SHA256, T.EMAIL, T.FILENAME, T.DOMAIN, T.HOSTNAME)


@dataclass(frozen=True, slots=True)
class Hit:
    indicator_id: int
    type: str  # an IndicatorType value
    value: str  # the indicator's value
    field: str  # the event field it was seen in
    observed: str  # the value in that field (its address without the port, the name of a path, ...)


def _add(table: dict[Any, Ids], key: Any, indicator_id: int) -> None:
    held = table.get(key)
    if held is None:
        table[key] = indicator_id
    elif isinstance(held, int):
        if held != indicator_id:
            table[key] = (held, indicator_id)
    elif indicator_id not in held:
        table[key] = (*held, indicator_id)


def _ids(held: Ids) -> tuple[int, ...]:
    return (held,) if isinstance(held, int) else held


def _address_int(text: str, family: int) -> int | None:
    try:
        packed = socket.inet_pton(socket.AF_INET if family == _V4 else socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    return int.from_bytes(packed, "big")


def _address_text(number: int, family: int) -> str:
    if family == _V4:
        return socket.inet_ntoa(number.to_bytes(4, "big"))
    return ipaddress.IPv6Address(number).compressed


def url_key(url: str) -> str:
    """A URL as URLs are compared: no scheme, no user name, the host in lower case, no lone trailing '/'."""
    host, rest = split_url(url)
    return host.lower() + ("" if rest == "/" else rest)


class _Networks:
    """The CIDR indicators of one address family: per prefix length, network integer → ids."""

    def __init__(self, family: int) -> None:
        self.family = family
        self.by_prefix: dict[int, dict[int, Ids]] = {}
        self.masks: tuple[tuple[int, int, dict[int, Ids]], ...] = ()
        self.blocks = bytearray(1 << _BLOCK_BITS)

    def add(self, network: int, prefix: int, indicator_id: int) -> None:
        bits = _BITS[self.family]
        mask = ((1 << prefix) - 1) << (bits - prefix)
        _add(self.by_prefix.setdefault(prefix, {}), network & mask, indicator_id)
        shift = bits - _BLOCK_BITS
        first = (network & mask) >> shift
        span = 1 << max(0, _BLOCK_BITS - prefix)
        self.blocks[first:first + span] = b"\x01" * span

    def freeze(self) -> None:
        bits = _BITS[self.family]
        self.masks = tuple((prefix, ((1 << prefix) - 1) << (bits - prefix), table)
                           for prefix, table in sorted(self.by_prefix.items()))

    def lookup(self, number: int) -> list[Ref]:
        if not self.masks or not self.blocks[number >> (_BITS[self.family] - _BLOCK_BITS)]:
            return []
        refs: list[Ref] = []
        for prefix, mask, table in self.masks:
            held = table.get(number & mask)
            if held is not None:
                value = f"{_address_text(number & mask, self.family)}/{prefix}"
                refs.extend((indicator_id, T.CIDR.value, value) for indicator_id in _ids(held))
        return refs


class IndicatorIndex:
    """The active indicators, indexed for matching events; immutable once built (a new set is a new index)."""

    def __init__(self) -> None:
        self.exact: dict[IndicatorType, dict[str, Ids]] = {kind: {} for kind in _STRING_TYPES}
        # IPv4 addresses by their text: inet_pton takes only the canonical dotted quad, so an observed address
        # is either that text or no address (no conversion per event); IPv6 ones by number (many spellings).
        self.ipv4: dict[str, Ids] = {}
        self.ipv6: dict[int, Ids] = {}
        self.networks = {_V4: _Networks(_V4), _V6: _Networks(_V6)}
        # Tuples, not lists: the collector stops tracking tuples of text and numbers, so a million indicators
        # add no work to each of its full passes over the process (measured: 0.07 s a pass with lists).
        self.urls: dict[str, tuple[tuple[int, str], ...]] = {}
        self.url_hosts: set[str] = set()
        self.counts: dict[str, int] = {}
        self.skipped = 0  # rows not indexed: unknown types, patterns not decidable on one event, bad values
        # STIX patterns too complex to index, evaluated on each event (only those decidable on one event).
        self.patterns: list[tuple[int, str, ComplexPattern]] = []
        self.plan = Plan.for_types(())
        # Which raw JSON documents and events may match (``screen.screen_for``): built by live matching only.
        self.screen: Screen | None = None
        # What a field's text matched, by reader (event_fields.ADDRESS, ...).
        self._memos: dict[int, dict[str, tuple[Found, ...]]] = {}
        self._lookups: dict[IndicatorType, Callable[[str], tuple[Ref, ...]]] = {}
        self._walk = self.plan.walker({}, self._slow)

    # --- building -----------------------------------------------------------------------------------

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> IndicatorIndex:
        index = cls()
        for entry in entries:
            try:
                indicator_id, kind, value = entry
                added = index._add(int(indicator_id), kind, value)
            except (TypeError, ValueError):
                added = False
            if not added:
                index.skipped += 1
        index._freeze()
        return index

    @classmethod
    def empty(cls) -> IndicatorIndex:
        return cls.build(())

    def with_screen(self) -> IndicatorIndex:
        """This index with its screen (none when it cannot have one, or building it failed: every event is then
        matched, and plain JSON decoded to be)."""
        try:
            self.screen = screen_for(self)
        except (MemoryError, TypeError, ValueError):
            log.exception("intel: no screen for the new index; every event is matched")
        return self

    def _add(self, indicator_id: int, kind: str, value: str) -> bool:
        if not isinstance(value, str) or not value:
            return False
        if kind == T.IPV4:
            number = _address_int(value, _V4)
            if number is None:
                return False
            _add(self.ipv4, _address_text(number, _V4), indicator_id)
        elif kind == T.IPV6:
            number = _address_int(value, _V6)
            if number is None:
                return False
            _add(self.ipv6, number, indicator_id)
        elif kind == T.CIDR:
            address, _, length = value.partition("/")
            family = _V6 if ":" in address else _V4
            number = _address_int(address, family)
            if number is None or not length.isdigit() or int(length) > _BITS[family]:
                return False
            self.networks[family].add(number, int(length), indicator_id)
        elif kind == T.URL:
            key = url_key(value)
            host = url_host(key)
            if not host:
                return False
            refs = self.urls.get(key, ())
            if (indicator_id, value) not in refs:
                self.urls[key] = (*refs, (indicator_id, value))
            self.url_hosts.add(host)
        elif kind == T.PATTERN:
            try:
                compiled = compile_pattern(value)
            except PatternError:
                return False
            if not isinstance(compiled, ComplexPattern) or not compiled.live:
                return False
            self.patterns.append((indicator_id, value, compiled))
        elif kind in self.exact:
            # Canonical values are lower case already; lowering again costs little and forgives a feed that
            # stored them otherwise.
            _add(self.exact[T(kind)], value.lower().rstrip(".") if kind != T.FILENAME else value.lower(),
                 indicator_id)
        else:
            return False
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return True

    def _freeze(self) -> None:
        for networks in self.networks.values():
            networks.freeze()
        lookups: dict[IndicatorType, Callable[[str], tuple[Ref, ...]]] = {}
        if self.ipv4 or self.networks[_V4].masks:
            lookups[T.IPV4] = self._ipv4
        if self.ipv6 or self.networks[_V6].masks:
            lookups[T.IPV6] = self._ipv6
        if self.exact[T.DOMAIN] or self.exact[T.HOSTNAME]:
            lookups[T.DOMAIN] = self._name
        for kind in (T.MD5, T.SHA1, T.SHA256):
            if self.exact[kind]:
                lookups[kind] = self._hash_lookup(kind)
        if self.exact[T.EMAIL]:
            lookups[T.EMAIL] = self._email
        if self.exact[T.FILENAME]:
            lookups[T.FILENAME] = self._filename
        if self.urls:
            lookups[T.URL] = self._url
        self._lookups = lookups
        self.plan = Plan.for_types(self.counts)
        self._memos = {reader: {} for reader in self.plan.readers}
        self._walk = self.plan.walker(self._memos, self._slow,
                                      None if self.networks[_V4].masks else self.ipv4)

    # --- matching -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(self.counts.values())

    def to_match(self, events: Sequence[Any]) -> Sequence[int]:
        """The positions of the events that may hold a match: those the screen names, all without one."""
        if self.screen is not None:
            try:
                return self.screen.candidate_events(events)
            except Exception:  # an object the screen could not read: the matcher reads every event instead
                log.exception("intel: the screen failed on a batch of %d events; matching them all", len(events))
        return range(len(events))

    def match(self, event: Mapping[str, Any]) -> list[Hit]:
        """The hits of one event, one per (indicator, field); [] for anything that is not an event. A STIX
        pattern's hit names no single field: ``field`` is ``stix-pattern`` and ``observed`` the paths it compares."""
        if event.__class__ is not dict and not isinstance(event, Mapping):
            return []
        hits: list[Hit] = []
        if self._lookups:
            found: list[tuple[str, str, tuple[Found, ...]]] = []
            self._walk(event, found)
            if found:
                hits = _distinct([Hit(seen[0], seen[1], seen[2], field, seen[3])
                                  for field, _, refs in found for seen in refs])
        for indicator_id, text, pattern in self.patterns:
            if pattern.matches(event):
                hits.append(Hit(indicator_id, T.PATTERN, text, T.PATTERN, ", ".join(pattern.paths)[:500]))
        return hits

    def _slow(self, reader: int, field: str, value: str, event: Mapping[str, Any]) -> tuple[Found, ...]:
        """A text value not in the memo: read, looked up, and kept. A URL that is only a path is joined to its
        host first, and kept as that whole URL (the same path on another host is another URL)."""
        if reader == ADDRESS and reads_as_ipv4(value):  # most addresses: no need to read them apart
            result = tuple((*ref, value) for ref in self._ipv4(value))
            _keep(self._memos[ADDRESS], value, result)
            return result
        if reader == URL and value.lstrip()[:1] == "/":
            joined = url_with_host(field, value.strip(), event)
            if joined is None:
                return ()
            kept = self._memos[URL].get(joined)
            return kept if kept is not None else self._slow(URL, field, joined, event)
        found: list[Found] = []
        for kind, observed in read(reader, field, value, event):
            look = self._lookups.get(kind)
            if look is not None:
                found.extend((*ref, observed) for ref in look(observed))
        result = tuple(found)
        _keep(self._memos[reader], value, result)
        return result

    def lookup(self, kind: IndicatorType | str, value: str) -> list[Ref]:
        """What one observed value matches, as ``event_fields`` reads it (``IPV4``/``IPV6`` look in addresses
        and networks; ``DOMAIN`` in domains, with their subdomains, and host names)."""
        look = self._lookups.get(T(kind))
        return list(look(value)) if look is not None else []

    def _ipv4(self, text: str) -> tuple[Ref, ...]:
        held = self.ipv4.get(text)
        refs = [] if held is None else [(indicator_id, T.IPV4.value, text) for indicator_id in _ids(held)]
        networks = self.networks[_V4]
        if networks.masks:
            number = _address_int(text, _V4)
            if number is not None:
                refs += networks.lookup(number)
        return tuple(refs)

    def _ipv6(self, text: str) -> tuple[Ref, ...]:
        number = _address_int(text, _V6)
        if number is None:
            return ()
        refs = self.networks[_V6].lookup(number)
        held = self.ipv6.get(number)
        if held is not None:
            value = _address_text(number, _V6)
            refs[:0] = [(indicator_id, T.IPV6.value, value) for indicator_id in _ids(held)]
        return tuple(refs)

    def _name(self, text: str) -> tuple[Ref, ...]:
        name = text.lower().rstrip(".")
        if not name or " " in name:
            return ()
        if not name.isascii():
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                return ()
        if "0" <= name[-1] <= "9":  # no name: a top-level domain is letters (an address is looked up as one)
            return ()
        refs: list[Ref] = []
        held = self.exact[T.HOSTNAME].get(name)
        if held is not None:
            refs.extend((indicator_id, T.HOSTNAME.value, name) for indicator_id in _ids(held))
        domains = self.exact[T.DOMAIN]
        if domains:
            suffix = name
            while True:
                held = domains.get(suffix)
                if held is not None:
                    refs.extend((indicator_id, T.DOMAIN.value, suffix) for indicator_id in _ids(held))
                dot = suffix.find(".")
                if dot < 0:
                    break
                suffix = suffix[dot + 1:]
        return tuple(refs)

    def _hash_lookup(self, kind: IndicatorType) -> Callable[[str], tuple[Ref, ...]]:
        table = self.exact[kind]

        def look(text: str) -> tuple[Ref, ...]:
            digest = text.lower()
            held = table.get(digest)
            return () if held is None else tuple((indicator_id, kind.value, digest) for indicator_id in _ids(held))
        return look

    def _email(self, text: str) -> tuple[Ref, ...]:
        address = text.strip()
        if "<" in address:  # "Name <a@b>" or SMTP's "<a@b>"
            address = address[address.find("<") + 1:].partition(">")[0]
        address = address.strip().lower().removeprefix("mailto:").rstrip(".")
        held = self.exact[T.EMAIL].get(address)
        return () if held is None else tuple((indicator_id, T.EMAIL.value, address) for indicator_id in _ids(held))

    def _filename(self, text: str) -> tuple[Ref, ...]:
        name = text.lower()
        held = self.exact[T.FILENAME].get(name)
        return () if held is None else tuple((indicator_id, T.FILENAME.value, name) for indicator_id in _ids(held))

    def _url(self, text: str) -> tuple[Ref, ...]:
        key = url_key(text)
        if url_host(key) not in self.url_hosts:  # the cheap answer for almost every URL
            return ()
        refs: list[Ref] = []
        for listed in _url_prefixes(key):
            held = self.urls.get(listed)
            if held is not None:
                refs.extend((indicator_id, T.URL.value, value) for indicator_id, value in held)
        return tuple(refs)


_URL_MARKS = re.compile(r"[/?#&=]")


def _url_prefixes(key: str) -> list[str]:
    """The URL indicators (as keys) an observed URL is, or is inside: itself, and each prefix that stops
    before a '/', '?' or '#' (or a '&' in the query), or just after a '/', '?', '&' or '='; in that order."""
    ends = {len(key)}
    for mark in _URL_MARKS.finditer(key):
        at = mark.start()
        char = key[at]
        if char in "/?#" or (char == "&" and "?" in key[:at]):
            ends.add(at)
        if char != "#":
            ends.add(at + 1)
    return [key[:end] for end in sorted(ends, reverse=True) if end]


def _keep(memo: dict[str, Any], value: str, result: Any) -> None:
    if len(value) > MEMO_MAX_TEXT:
        return
    if len(memo) >= MEMO_LIMIT:  # a bounded memo: start again rather than grow with every new value
        memo.clear()
    memo[value] = result


def _distinct(hits: list[Hit]) -> list[Hit]:
    if len(hits) == 1:
        return hits
    seen: set[tuple[int, str]] = set()
    distinct = []
    for hit in sorted(hits, key=lambda hit: (hit.field, hit.indicator_id)):
        if (hit.indicator_id, hit.field) not in seen:
            seen.add((hit.indicator_id, hit.field))
            distinct.append(hit)
    return distinct


class IndexHolder:
    """The index matching uses now; ``swap`` puts a new one in place in one reference assignment, so a
    matching thread sees the old index or the new one, never a half-built one."""

    def __init__(self, index: IndicatorIndex | None = None) -> None:
        self._index = index if index is not None else IndicatorIndex.empty()
        self.last_error = ""

    @property
    def index(self) -> IndicatorIndex:
        return self._index

    def swap(self, new: IndicatorIndex) -> IndicatorIndex:
        """Put ``new`` in place; the index it replaces."""
        old, self._index = self._index, new
        return old

    def match(self, event: Mapping[str, Any]) -> list[Hit]:
        return self._index.match(event)

    def rebuild(self, entries: Iterable[Entry] | Callable[[], Iterable[Entry]],
                then: Callable[[IndicatorIndex], None] | None = None) -> threading.Thread:
        """Build an index of ``entries`` in a background thread and swap it in when built (matching goes on
        with the current one meanwhile); ``then`` is called with the new index after the swap."""

        def run() -> None:
            try:
                index = IndicatorIndex.build(entries() if callable(entries) else entries)
            except Exception as exc:  # the current index stays; the reason is kept for the status
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("intel: the indicator index could not be rebuilt; matching goes on with the old one")
                return
            self.swap(index)
            if then is not None:
                then(index)

        thread = threading.Thread(target=run, name="vigil-intel-index", daemon=True)
        thread.start()
        return thread
