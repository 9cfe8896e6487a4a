"""Slack incoming webhook: ``text`` (the notification's fallback) and Block Kit ``blocks``.

Slack answers 200 with the body ``ok``; anything else is a failure (``invalid_payload``, ``no_service``,
``channel_is_archived`` as 4xx, 429 when rate-limited). The webhook address is the credential, so it is
kept as a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from vigil.response.notifiers.base import (
    ConfigField,
    DeliveryFailed,
    RenderedMessage,
    check_fields,
    host_of,
    post_json,
)


def mrkdwn(value: str) -> str:
    """Text for Slack's mrkdwn: only &, < and > are control characters there."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blocks(message: RenderedMessage) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}}]
    if message.lines:
        found.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(map(mrkdwn, message.lines))}})
    if message.facts:
        found.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{mrkdwn(label)}*\n{mrkdwn(value)}"} for label, value in message.facts[:10]]})
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": label[:75]}, "url": url}
               for label, url in message.links()]
    if buttons:
        found.append({"type": "actions", "elements": buttons})
    return found


class SlackNotifier:
    fields = (ConfigField("url", "secret-url", required=True),)

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(self.fields, config)

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        url = str(config["url"])
        body = {"text": mrkdwn(message.title), "blocks": blocks(message)}
        response = post_json(client, url, body, timeout=timeout)
        if response.status_code != 200 or response.text.strip() != "ok":
            raise DeliveryFailed(f"Slack ({host_of(url)}) did not accept the message: HTTP {response.status_code}: "
                                 f"{response.text[:200]}", http_status=response.status_code, retryable=False)
        return response.status_code
