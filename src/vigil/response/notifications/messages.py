"""What a notification says, in 简体中文 or English: a ``Message`` from the caller, rendered per channel.

The texts are gettext messages of the UI's catalogues (``web/locale``), so the same review and the same
test (tests/web/test_catalogues.py) keep both languages complete. A caller gives the facts (what
happened, to which incident, how severe, where to look, how to acknowledge); ``render`` turns them into a
``RenderedMessage`` in the channel's language, which each notifier lays out its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from vigil.core import i18n
from vigil.response.notifiers.base import RenderedMessage


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    return message


class MessageKind(StrEnum):
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_UPDATED = "incident_updated"
    ESCALATION = "escalation"
    ACKNOWLEDGED = "acknowledged"
    TEST = "test"


SEVERITIES = ("P1", "P2", "P3", "P4")

# Per kind: the title (with the subject) and the opening sentence.
TITLES: Mapping[MessageKind, str] = {
    MessageKind.INCIDENT_OPENED: N_("Incident opened: %(subject)s"),
    MessageKind.INCIDENT_UPDATED: N_("Incident updated: %(subject)s"),
    MessageKind.ESCALATION: N_("Escalated: %(subject)s"),
    MessageKind.ACKNOWLEDGED: N_("Acknowledged: %(subject)s"),
    MessageKind.TEST: N_("Test message from Vigil"),
}
OPENINGS: Mapping[MessageKind, str] = {
    MessageKind.INCIDENT_OPENED: N_("A new incident needs attention."),
    MessageKind.INCIDENT_UPDATED: N_("An incident you follow has changed."),
    MessageKind.ESCALATION: N_("Nobody acknowledged this in time, so it is escalated."),
    MessageKind.ACKNOWLEDGED: N_("Someone is working on this now."),
    MessageKind.TEST: N_("This test message shows that the channel %(channel)s reaches you."),
}
LABEL_SEVERITY = N_("Severity")
LABEL_INCIDENT = N_("Incident")
LABEL_RECIPIENT = N_("On call")
LABEL_LEVEL = N_("Escalation level")
LABEL_BY = N_("By")
LABEL_OPEN = N_("Open in Vigil")
LABEL_ACK = N_("Acknowledge")


@dataclass(frozen=True)
class Message:
    """A notification to send, before it is put into a language.

    ``subject`` names what it is about (an incident's title) and ``summary`` adds a sentence of the
    caller's own; both are shown as given, untranslated. ``link`` opens the record in Vigil,
    ``ack_link`` acknowledges it (a signed link, when the caller has one). ``recipient`` is whom an
    escalation pages, ``level`` its step, ``by`` who acknowledged.
    """

    kind: MessageKind
    subject: str = ""
    severity: str = ""
    summary: str = ""
    link: str = ""
    ack_link: str = ""
    incident_id: int | None = None
    recipient: str = ""
    level: int | None = None
    by: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


def render(message: Message, *, language: str, channel: str = "") -> RenderedMessage:
    """``message`` in ``language`` (a language Vigil does not know falls back to English)."""
    gettext: Callable[[str], str] = i18n.gettext_for(language if language in i18n.LANGUAGES else "en")

    def _(text: str, **values: object) -> str:
        translated = gettext(text)
        return translated % values if values else translated

    kind = MessageKind(message.kind)
    title = _(TITLES[kind], subject=message.subject) if kind != MessageKind.TEST else _(TITLES[kind])
    if message.severity:
        title = f"[{message.severity}] {title}"
    opening = _(OPENINGS[kind], channel=channel) if kind == MessageKind.TEST else _(OPENINGS[kind])
    lines = tuple(line for line in (opening, message.summary.strip()) if line)
    facts: list[tuple[str, str]] = []
    if message.incident_id is not None:
        facts.append((_(LABEL_INCIDENT), f"#{message.incident_id}"))
    if message.severity:
        facts.append((_(LABEL_SEVERITY), message.severity))
    if message.recipient:
        facts.append((_(LABEL_RECIPIENT), message.recipient))
    if message.level is not None:
        facts.append((_(LABEL_LEVEL), str(message.level)))
    if message.by:
        facts.append((_(LABEL_BY), message.by))
    return RenderedMessage(
        kind=str(kind), language=language, title=title, lines=lines, facts=tuple(facts), severity=message.severity,
        link=message.link, link_label=_(LABEL_OPEN) if message.link else "", ack_link=message.ack_link,
        ack_label=_(LABEL_ACK) if message.ack_link else "", incident_id=message.incident_id, extra=dict(message.extra))
