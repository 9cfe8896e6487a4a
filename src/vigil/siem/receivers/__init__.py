"""Network receivers that run beside the web server (the HTTP ones are routes in ``vigil.siem.api``)."""

from typing import Protocol


class Receiver(Protocol):
    """A network listener that `vigil serve` starts and stops with the app (syslog UDP, TCP, TLS)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> dict[str, int | str]:
        """Counters for the status page (address, connections, messages, bytes, dropped, errors)."""
        ...
