from collections.abc import Iterable, Sequence
from typing import Any

class Screen:
    nbytes: int

    def __init__(self, *, names: Iterable[str], hashes: Iterable[str], emails: Iterable[str], files: Iterable[str],
                 url_hosts: Iterable[str], ipv4: Iterable[str], ipv4_networks: Iterable[tuple[int, int]],
                 ipv6: Iterable[bytes], ipv6_networks: Iterable[tuple[bytes, int]]) -> None: ...
    def candidates(self, documents: Sequence[str | bytes]) -> list[int]: ...
    def candidate_events(self, events: Sequence[Any]) -> list[int]: ...
