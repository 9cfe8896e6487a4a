"""The screen of live matching: which raw JSON documents and events may hold an observable an indicator matches.

Plain JSON reaches the event store as text, never decoded (the store's fast path). Matching it would decode
every document only to find nothing in nearly all of them: that decoding cost more than the ingest itself.
The screen (``_screen.c``, compiled when the package is installed) reads the JSON text instead: each string
value is read as the matcher's readers read a field (an address or host name without its port, a URL's host,
a hash and the hashes of a list, an e-mail address, a path's file name) and looked up in a set of the
indicators' keys. Only the documents it names are decoded and matched, by the matcher, which decides.
Events that are already dicts (parsed, or decoded for detection) are screened the same way, their string
values read where they lie (``candidate_events``): a C loop over an event's values costs less than the
matcher's walk through the fields it reads, so only the events it names are matched.

It never misses a document the matcher would match: it reads every string, not only the fields the matcher
reads, and answers "maybe" for what it cannot read (strings over 16 KB, broken JSON) and for text beyond ASCII
the matcher could turn into ASCII (a host name IDNA may write as ASCII, the Kelvin sign that lower() makes a 'k').
An index with STIX patterns evaluated per event gets no screen (a pattern can compare any field), nor does
an installation without the compiled module (no C compiler when it was installed): plain JSON is then
decoded and matched in the parse workers, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol

from vigil.intel.indicators import IndicatorType

if TYPE_CHECKING:
    from vigil.intel.matcher import IndicatorIndex

log = logging.getLogger(__name__)



class Screen(Protocol):
    """An index's keys, built for screening: each method gives the positions of the candidates."""

    def candidates(self, documents: Sequence[str | bytes], /) -> list[int]: ...

    def candidate_events(self, events: Sequence[Any], /) -> list[int]: ...


try:
    from vigil.intel import _screen
except ImportError:  # installed without a C compiler
    _screen = None  # type: ignore[assignment]

T = IndicatorType


def available() -> bool:
    return _screen is not None


def screen_for(index: IndicatorIndex) -> Screen | None:
    """The screen of an index's keys; None when there is nothing to screen for, the index holds STIX
    patterns, or the module is not built."""
    if _screen is None or index.patterns or not len(index):
        return None
    # The index's keys as it holds them (lower case, as the matcher compares them), read without copies; a URL
    # indicator's host is lowered here, as the host of an odd URL ("a://b:1://C.example") keeps its case there.
    v4, v6 = index.networks[4], index.networks[6]
    exact = index.exact
    built = _screen.Screen(
        names=chain(exact[T.DOMAIN], exact[T.HOSTNAME]),
        hashes=chain(exact[T.MD5], exact[T.SHA1], exact[T.SHA256]),
        emails=exact[T.EMAIL],
        files=exact[T.FILENAME],
        url_hosts=(host.lower() for host in index.url_hosts),
        ipv4=index.ipv4,
        ipv4_networks=((network, prefix) for prefix, table in v4.by_prefix.items() for network in table),
        ipv6=(number.to_bytes(16, "big") for number in index.ipv6),
        ipv6_networks=((network.to_bytes(16, "big"), prefix) for prefix, table in v6.by_prefix.items()
                       for network in table),
    )
    log.debug("intel: document screen of %d indicators built (%d bytes)", len(index), built.nbytes)
    return built
