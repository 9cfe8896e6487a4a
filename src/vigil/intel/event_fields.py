"""Which fields of an event carry which observable, and reading them out of an event cheaply.

The table covers the field names Vigil's parsers write (ECS, and the native Windows fields beside them)
and the names of documents that reach the store as they were sent (fast-path JSON: Sysmon/Windows event
data, Zeek and Suricata EVE records, cloud audit logs). An event is a nested dict (``{"source": {"ip":
..}}``) or has dotted keys at its top level (``{"source.ip": ..}``, Zeek's ``{"id.orig_h": ..}``); both are
read, and a list anywhere on the way is read item by item (``dns.answers[].data``, ``rcptto``).

``observe(event)`` yields ``(IndicatorType, field, value)``: the value as the event has it, cut to the part
that can be an indicator (a port split off an address, the host of a URL, the name of a file path, each
hash of Sysmon's ``Hashes``); the matcher normalises values the way indicators are. The type says which
index to look in: ``IPV4``/``IPV6`` for addresses (exact and CIDR), ``DOMAIN`` for host names (domains and
host names), ``URL``, ``MD5``/``SHA1``/``SHA256``, ``EMAIL``, ``FILENAME``. Odd values (numbers, None,
objects where text was expected, huge strings) are skipped, never an exception.

The matcher's fast path is ``Plan.walker``: for the indicator types an index holds, Python code generated
once (one dict lookup per field present, nested objects inline) that asks the matcher's memo about each
text value and calls it back only for values it has not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from vigil.intel.indicators import IndicatorType

T = IndicatorType

# Addresses, as ECS, Windows (Sysmon, Security), Zeek, Suricata and cloud audit logs write them; a host
# name found in one of them is matched as a host name.
ADDRESS_FIELDS: tuple[str, ...] = (
    "source.ip", "destination.ip", "client.ip", "server.ip", "related.ip", "source.nat.ip", "destination.nat.ip",
    "dns.resolved_ip",
    "SourceIp", "DestinationIp", "IpAddress", "SourceAddress", "DestAddress", "ClientAddress",
    "id.orig_h", "id.resp_h", "src", "dst", "tx_hosts", "rx_hosts",
    "src_ip", "dest_ip",
    "sourceIPAddress", "callerIpAddress", "ClientIP",
)
# Host names (matched against domains, with their subdomains, and host names); an address in one of them is
# matched as an address.
HOST_FIELDS: tuple[str, ...] = (
    "dns.question.name", "dns.answers.data", "url.domain", "destination.domain", "source.domain", "server.domain",
    "client.domain", "tls.client.server_name", "related.hosts", "x509.alternative_names",
    "QueryName", "DestinationHostname", "SourceHostname",
    "query", "server_name", "san.dns", "answers", "zeek.dns.answers",
    "dns.rrname", "dns.queries.rrname", "dns.answers.rrname", "dns.answers.rdata", "http.hostname", "tls.sni",
    "suricata.eve.dns.queries.rrname", "suricata.eve.dns.answers.rdata",
)
# URLs, each with the field holding its host when the URL is only a path ("/a?b", as web servers, Zeek and
# Suricata log it); "" when it is always a whole URL. A URL's host is read as a host name too, so Zeek's
# ``host`` is read with its ``uri`` (a top-level "host" is ECS's object in most events: not read alone).
URL_FIELDS: dict[str, str] = {
    "url.original": "url.domain", "url.full": "url.domain", "http.request.referrer": "",
    "uri": "host", "referrer": "",
    "http.url": "http.hostname", "http.http_refer": "",
}
# Hashes: a file's, a process's, a loaded library's, a certificate's; the algorithm is read from the length.
HASH_FIELDS: tuple[str, ...] = (
    "file.hash.md5", "file.hash.sha1", "file.hash.sha256", "process.hash.md5", "process.hash.sha1",
    "process.hash.sha256", "process.parent.hash.md5", "process.parent.hash.sha1", "process.parent.hash.sha256",
    "dll.hash.md5", "dll.hash.sha1", "dll.hash.sha256", "tls.server.hash.sha1", "tls.server.hash.sha256",
    "related.hash",
    "md5", "sha1", "sha256", "fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256",
)
# Sysmon's "MD5=…,SHA1=…,SHA256=…,IMPHASH=…" (the algorithms its configuration asks for).
HASH_LIST_FIELDS: tuple[str, ...] = ("Hashes", "Hash")
EMAIL_FIELDS: tuple[str, ...] = (
    "email.from.address", "email.to.address", "email.cc.address", "email.bcc.address", "email.reply_to.address",
    "email.sender.address",
    "mailfrom", "rcptto", "zeek.smtp.mailfrom", "zeek.smtp.rcptto", "zeek.smtp.from", "zeek.smtp.to",
    "smtp.mail_from", "smtp.rcpt_to", "email.from", "email.to", "email.cc",
    "suricata.eve.smtp.mail_from", "suricata.eve.smtp.rcpt_to", "suricata.eve.email.from", "suricata.eve.email.to",
)
# Paths: their last part is matched as a file name.
PATH_FIELDS: tuple[str, ...] = (
    "file.path", "process.executable", "process.parent.executable", "dll.path",
    "Image", "ParentImage", "TargetFilename", "ImageLoaded", "SourceImage", "TargetImage", "NewProcessName",
    "ParentProcessName", "ProcessName", "ServiceFileName", "Application",
    "fileinfo.filename",
)
FILENAME_FIELDS: tuple[str, ...] = (
    "file.name", "process.name", "process.parent.name", "dll.name", "process.pe.original_file_name",
    "email.attachments.file.name", "OriginalFileName", "filename",
)

_ADDRESS_TYPES = (T.IPV4, T.IPV6, T.CIDR)
_HOST_TYPES = (T.DOMAIN, T.HOSTNAME)


def _table() -> dict[IndicatorType, tuple[str, ...]]:
    urls = tuple(URL_FIELDS)
    hosts = HOST_FIELDS + ADDRESS_FIELDS + urls  # a URL's host, an address field holding a name
    addresses = ADDRESS_FIELDS + HOST_FIELDS + urls  # a name field holding an address, a URL's address
    hashes = HASH_FIELDS + HASH_LIST_FIELDS
    return {
        T.IPV4: addresses, T.IPV6: addresses, T.CIDR: addresses, T.DOMAIN: hosts, T.HOSTNAME: hosts,
        T.URL: urls, T.MD5: hashes, T.SHA1: hashes, T.SHA256: hashes, T.EMAIL: EMAIL_FIELDS,
        T.FILENAME: FILENAME_FIELDS + PATH_FIELDS,
    }


# A URL field and its host field are siblings (the generated walk reads the host beside the path).
assert all(host.rpartition(".")[0] == url.rpartition(".")[0] for url, host in URL_FIELDS.items() if host)

# For each indicator type, the fields whose values can match it.
FIELDS: dict[IndicatorType, tuple[str, ...]] = _table()

# How a field's text is read (what it can hold).
ADDRESS, URL, HASH, HASH_LIST, EMAIL, PATH, FILENAME = range(7)
_READERS: dict[int, tuple[str, ...]] = {
    ADDRESS: ADDRESS_FIELDS + HOST_FIELDS, URL: tuple(URL_FIELDS), HASH: HASH_FIELDS, HASH_LIST: HASH_LIST_FIELDS,
    EMAIL: EMAIL_FIELDS, PATH: PATH_FIELDS, FILENAME: FILENAME_FIELDS,
}
# The readers an index needs for the types it holds: no time is spent on fields no indicator can match.
_READERS_FOR: dict[IndicatorType, tuple[int, ...]] = {
    T.IPV4: (ADDRESS, URL), T.IPV6: (ADDRESS, URL), T.CIDR: (ADDRESS, URL), T.DOMAIN: (ADDRESS, URL),
    T.HOSTNAME: (ADDRESS, URL), T.URL: (URL,), T.MD5: (HASH, HASH_LIST), T.SHA1: (HASH, HASH_LIST),
    T.SHA256: (HASH, HASH_LIST), T.EMAIL: (EMAIL,), T.FILENAME: (PATH, FILENAME),
}

MEMO_LIMIT = 50_000  # remembered values per reader (the matcher's memos); a full memo starts again
# An address field's text that ``split_address`` reads as an IPv4 address as it is (at most 15 characters,
# digits at both ends, no port, no space): one test, written for the generated walk (``{v}`` is the value)
# and compiled for the matcher's other paths.
_AS_IPV4 = "len({v}) < 16 and '0' <= {v}[:1] <= '9' and '0' <= {v}[-1:] <= '9' and ':' not in {v} and ' ' not in {v}"
reads_as_ipv4: Callable[[str], bool] = eval(f"lambda v: {_AS_IPV4.format(v='v')}")  # noqa: S307 - own text
MAX_LIST_ITEMS = 64  # a list longer than this is read in part (related.ip of a scan, rcptto of a mass mailing)
MAX_TEXT = 512  # longer text is no address, host, hash, e-mail address or file name
MAX_URL = 8192

Observed = tuple[IndicatorType, str, str]  # (type to look up, field, value)
# What the matcher does with a text value it has not seen: (reader, field, value, event) -> a result, kept in
# its memo when the reader's results depend on the value alone; a falsy result is "nothing here".
Slow = Callable[[int, str, str, Mapping[str, Any]], Any]
# A compiled walk over one event: appends (field, value, result) for each value with a truthy result.
Walk = Callable[[Mapping[str, Any], list[tuple[str, str, Any]]], None]


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a field path: what a text value here is (its reader, or None), and the steps below."""

    id: int
    field: str
    reader: int | None
    children: Mapping[str, Node]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one plan per set of readers
class Plan:
    """The fields to read for a set of readers: top-level key → its node (a field is found nested and as a
    dotted top-level key)."""

    readers: frozenset[int]
    roots: Mapping[str, Node]
    nodes: tuple[Node, ...]  # by id

    @classmethod
    def for_types(cls, types: Collection[IndicatorType | str]) -> Plan:
        """The plan reading the fields that can hold an indicator of these types."""
        return _plan(frozenset(reader for kind in types if kind in _READERS_FOR for reader in _READERS_FOR[T(kind)]))

    def walker(self, memos: Mapping[int, Mapping[str, Any]], slow: Slow,
               addresses: Mapping[str, Any] | None = None) -> Walk:
        """The walk over an event: a value's result is looked up in ``memos[reader]`` first, and only on a
        miss does ``slow`` read it (and keep it there). Straight-line code generated for the plan: one
        dict lookup per field that is present, no loop over the fields of the table.

        ``addresses``: the IPv4 addresses that can match, when nothing else can match an address (no IPv4
        network is indexed). An address field's text that ``reads_as_ipv4`` and is not among them is then
        nothing, without a call to ``slow`` (and remembered while the memo has room): most addresses in
        traffic are seen once or a few times, and the call costs more than the check."""
        functions: dict[int, Callable[..., None]] = {}
        other = _other_values(self, functions, memos, slow)
        factory = _factory(self)
        walk: Walk = factory({reader: memos.get(reader, {}) for reader in _READERS}, slow, other, functions,
                             frozenset(self.roots), None if addresses is None else addresses.get)
        return walk


@lru_cache(maxsize=32)
def _plan(readers: frozenset[int]) -> Plan:
    tree: dict[str, Any] = {}  # a mutable trie first: name -> {"reader", "field", "children"}

    def add(path: list[str], field: str, reader: int) -> None:
        level = tree
        for position, part in enumerate(path):
            slot = level.setdefault(part, {"reader": None, "field": "", "children": {}})
            if position == len(path) - 1:
                slot["reader"] = reader
                slot["field"] = field
            level = slot["children"]

    for reader in sorted(readers):
        for field in _READERS[reader]:
            add(field.split("."), field, reader)
            if "." in field:
                add([field], field, reader)  # the same field as a dotted top-level key
    nodes: list[Node] = []

    def freeze(slots: dict[str, Any], prefix: str) -> dict[str, Node]:
        frozen = {}
        for name, slot in slots.items():
            path = f"{prefix}.{name}" if prefix else name
            node = Node(len(nodes), slot["field"] or path, slot["reader"], {})
            nodes.append(node)
            object.__setattr__(node, "children", freeze(slot["children"], path))
            frozen[name] = node
        return frozen

    roots = freeze(tree, "")
    return Plan(readers, roots, tuple(nodes))


@lru_cache(maxsize=32)
def _factory(plan: Plan) -> Callable[..., Walk]:
    """Python source for the plan's walk, compiled once per plan (the closure binds the matcher's memos).

    Each top-level key the plan reads gets a function holding the code for everything below it, nested
    objects inline (no call per level); each node with children also gets a function of its own, for the
    items of a list (``other``)."""
    lines = ["def factory(memos, slow, other, functions, names, address):"]
    lines += [f"    memo_{reader} = memos[{reader}]" for reader in sorted(_READERS)]
    for node in plan.nodes:
        if node.children:
            lines.append(f"    def f_{node.id}(v0, event, found):")
            lines += _children(node, 0, "        ")
            lines.append(f"    functions[{node.id}] = f_{node.id}")
    for node in plan.roots.values():
        lines.append(f"    def r_{node.id}(v0, event, found):")
        lines += _handle(node, 0, "        ")
    lines.append("    roots = {" + ", ".join(f"{key!r}: r_{node.id}" for key, node in plan.roots.items()) + "}")
    lines += ["    def walk(event, found):",
              "        for key in names.intersection(event):",
              "            roots[key](event[key], event, found)",
              "    return walk"]
    scope: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<intel walk {sorted(plan.readers)}>", "exec"), scope)  # noqa: S102 - own code
    factory: Callable[..., Walk] = scope["factory"]
    return factory


def _children(node: Node, depth: int, indent: str) -> list[str]:
    """The code reading the children of ``node`` from the dict ``v<depth>``."""
    lines = [f"{indent}get{depth} = v{depth}.get"]
    for name, child in node.children.items():
        lines += [f"{indent}v{depth + 1} = get{depth}({name!r})", f"{indent}if v{depth + 1} is not None:"]
        lines += _handle(child, depth + 1, indent + "    ")
    return lines


def _handle(node: Node, depth: int, indent: str) -> list[str]:
    """The code for a value ``v<depth>`` found at ``node``: text read through the memo, an object's children
    read, a list (or anything else) through ``other``."""
    v = f"v{depth}"
    lines = []
    branch = "if"
    if node.reader is not None:
        field = repr(node.field)
        lines.append(f"{indent}if {v}.__class__ is str:")
        partner = URL_FIELDS.get(node.field) if node.reader == URL else None
        if partner:  # a path's URL is the path on its host: it is remembered joined to that host
            host = f"event.get({partner!r})" if depth == 0 else f"get{depth - 1}({partner.rsplit('.', 1)[-1]!r})"
            lines += [f"{indent}    if {v}[:1] != '/':", f"{indent}        r = memo_{node.reader}.get({v})",
                      f"{indent}    else:", f"{indent}        h = {host}",
                      f"{indent}        r = memo_{node.reader}.get(h + {v}) if h.__class__ is str else None"]
        else:
            lines.append(f"{indent}    r = memo_{node.reader}.get({v})")
        lines.append(f"{indent}    if r is None:")
        if node.reader == ADDRESS:
            lines += [f"{indent}        if address is not None and {_AS_IPV4.format(v=v)} and address({v}) is None:",
                      f"{indent}            r = ()",
                      f"{indent}            if len(memo_{ADDRESS}) < {MEMO_LIMIT}:",
                      f"{indent}                memo_{ADDRESS}[{v}] = r",
                      f"{indent}        else:",
                      f"{indent}            r = slow({node.reader}, {field}, {v}, event)"]
        else:
            lines.append(f"{indent}        r = slow({node.reader}, {field}, {v}, event)")
        lines += [f"{indent}    if r:", f"{indent}        found.append(({field}, {v}, r))"]
        branch = "elif"
    lines.append(f"{indent}{branch} {v}.__class__ is dict:")
    if node.children:
        lines += _children(node, depth, indent + "    ")
    else:
        lines.append(f"{indent}    pass")  # an object where text belongs
    return [*lines, f"{indent}else:", f"{indent}    other({v}, {node.id}, event, found)"]


def _other_values(plan: Plan, functions: Mapping[int, Callable[..., None]], memos: Mapping[int, Mapping[str, Any]],
                  slow: Slow) -> Callable[[Any, int, Mapping[str, Any], list[tuple[str, str, Any]]], None]:
    """The walk's slow path: lists (each item read as the field's value), str and dict subclasses; anything
    else (numbers, booleans, nested lists) is no observable."""

    def other(value: Any, node_id: int, event: Mapping[str, Any], found: list[tuple[str, str, Any]],
              listed: bool = False) -> None:
        node = plan.nodes[node_id]
        if isinstance(value, str):
            if node.reader is not None:
                text = str(value)
                memo = memos.get(node.reader)
                result = memo.get(text) if memo is not None else None
                if result is None:
                    result = slow(node.reader, node.field, text, event)
                if result:
                    found.append((node.field, text, result))
        elif isinstance(value, Mapping):
            if node.children:
                functions[node_id](value, event, found)
        elif isinstance(value, list | tuple) and not listed:
            for item in value[:MAX_LIST_ITEMS]:
                if item is not None:
                    other(item, node_id, event, found, True)

    return other


ALL = Plan.for_types(list(T))


def observe(event: Mapping[str, Any], plan: Plan = ALL) -> list[Observed]:
    """The event's observables, in no particular order: (type to look up, field, value as seen)."""
    found: list[tuple[str, str, Any]] = []
    _reading(plan)(event, found)
    return [(kind, field, value) for field, _, observed in found for kind, value in observed]


@lru_cache(maxsize=32)
def _reading(plan: Plan) -> Walk:
    return plan.walker({}, read)  # empty memos: every value is read


def read(reader: int, field: str, value: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    """What one text value of a field holds: (type to look up, the part that can be an indicator)."""
    try:
        return _READ[reader](value, field, event)
    except Exception:  # odd text is no observable; matching never stops on it
        return []


def value_of(event: Mapping[str, Any], field: str) -> Any:
    """A field's value: the dotted top-level key, else the nested path; None when absent."""
    value = event.get(field)
    if value is not None or "." not in field:
        return value
    node: Any = event
    for part in field.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def split_address(text: str) -> tuple[IndicatorType, str] | None:
    """An address or host name as (IPV4 | IPV6 | DOMAIN, bare value): the port, the brackets around IPv6
    and its zone split off; an IPv4-mapped IPv6 address is the IPv4 one. None when it is none of them."""
    text = text.strip()
    if not text or len(text) > MAX_TEXT or " " in text:
        return None
    colons = text.count(":")
    if text[0] == "[":
        end = text.find("]")
        if end < 0:
            return None
        text, colons = text[1:end], 2
    elif colons == 1:
        text = text[: text.find(":")]
        colons = 0
    if colons:
        text = text.partition("%")[0]
        if text[:7].lower() == "::ffff:" and "." in text:
            return T.IPV4, text[7:]
        return T.IPV6, text
    if not text or text == "-":
        return None
    if "0" <= text[-1] <= "9" and "0" <= text[0] <= "9":
        return T.IPV4, text
    return (T.DOMAIN, text) if "." in text else None  # one label ("wpad", "WS01"): no indicator is one


def url_host(url: str) -> str:
    """The host[:port] of a URL with a scheme, or of a scheme-less ``host/path``; "" when there is none."""
    return split_url(url)[0]


def split_url(url: str) -> tuple[str, str]:
    """(host[:port], what follows it) of a URL, without its scheme and user name."""
    start = url.find("://")
    # A scheme only ends before any '/', '?' or '#' (else the "://" is inside the path or query).
    if start < 0 or any(url.find(mark, 0, start) >= 0 for mark in "/?#"):
        start = 0
    else:
        start += 3
    end = len(url)
    for mark in "/?#":
        at = url.find(mark, start, end)
        if at >= 0:
            end = at
    host = url[start:end]
    return host[host.rfind("@") + 1:], url[end:]  # user:password@host


def _address(value: str, field: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    split = split_address(value)
    return [] if split is None else [split]


def url_with_host(field: str, path: str, event: Mapping[str, Any]) -> str | None:
    """A URL field's path joined to the host its partner field holds ("evil.example/a?b"); None without one."""
    host = value_of(event, URL_FIELDS.get(field) or "")
    if not isinstance(host, str) or path.startswith("//"):
        return None
    host = host.strip()
    if not host or len(host) > MAX_TEXT or "/" in host or " " in host:
        return None
    if host.count(":") > 1 and host[0] != "[":  # a bare IPv6 address
        host = f"[{host}]"
    return host + path


def _url(value: str, field: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    value = value.strip()
    if not value or len(value) > MAX_URL:
        return []
    if value[0] == "/":  # only a path: the host is in the partner field
        joined = url_with_host(field, value, event)
        if joined is None:
            return []
        value = joined
    if "://" not in value and (" " in value or ("." not in value and value[0] != "[")):
        return []
    split = split_address(url_host(value))
    return [(T.URL, value)] if split is None else [(T.URL, value), split]


_HASH_LENGTHS = {32: T.MD5, 40: T.SHA1, 64: T.SHA256}
_HASH_NAMES = {"MD5": T.MD5, "SHA1": T.SHA1, "SHA256": T.SHA256}


def _hash(value: str, field: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    value = value.strip()
    kind = _HASH_LENGTHS.get(len(value))
    return [] if kind is None else [(kind, value)]


def _hash_list(value: str, field: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    if "=" not in value or len(value) > MAX_TEXT:
        return _hash(value, field, event)  # a bare hash
    found = []
    for part in value.split(","):
        name, _, digest = part.partition("=")
        kind = _HASH_NAMES.get(name.strip().upper())
        digest = digest.strip()
        if kind is not None and _HASH_LENGTHS.get(len(digest)) is kind:
            found.append((kind, digest))
    return found


def _email(value: str, field: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    return [(T.EMAIL, value.strip())] if "@" in value and len(value) <= MAX_TEXT else []


def basename(path: str) -> str:
    """The last part of a Windows or POSIX path."""
    return path[max(path.rfind("\\"), path.rfind("/")) + 1:]


def _path(value: str, field: str, event: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    if len(value) > MAX_TEXT:
        return []
    name = basename(value).strip().strip('"').strip()
    return [(T.FILENAME, name)] if name else []


_READ: dict[int, Callable[[str, str, Mapping[str, Any]], list[tuple[IndicatorType, str]]]] = {
    ADDRESS: _address, URL: _url, HASH: _hash, HASH_LIST: _hash_list, EMAIL: _email, PATH: _path,
    FILENAME: _path,  # a "name" that holds a path is read as one
}
