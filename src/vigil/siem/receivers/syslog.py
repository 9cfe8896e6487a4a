"""(being written)"""

from vigil.core.config import Settings
from vigil.siem.runtime import ReceiverFactory


def factories(settings: Settings) -> list[ReceiverFactory]:
    """The syslog receivers the settings turn on (UDP, TCP, TLS)."""
    return []
