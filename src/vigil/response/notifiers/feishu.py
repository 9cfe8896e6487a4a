"""Feishu (飞书) / Lark custom bot: an interactive card, signed when the bot has a secret (签名校验).

The signature is ``base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))`` with the timestamp in
seconds; both travel in the JSON body (``timestamp`` as a string, ``sign``). The bot answers
``{"code": 0, "msg": "success"}`` (older bots ``{"StatusCode": 0}``); any other code is a refusal.
The webhook address holds the bot's token in its path, so it is kept as a secret.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any

import httpx

from vigil.response.notifiers.base import (
    ConfigField,
    DeliveryFailed,
    RenderedMessage,
    check_fields,
    hmac_sha256,
    host_of,
    json_reply,
    markdown_text,
    post_json,
)

RATE_LIMITED = frozenset({9499, 11232})  # "too many requests"
SEVERITY_COLOURS = {"P1": "red", "P2": "orange", "P3": "yellow", "P4": "blue"}


def feishu_sign(secret: str, timestamp_s: str) -> str:
    return base64.b64encode(hmac_sha256(f"{timestamp_s}\n{secret}".encode(), b"")).decode()


def card(message: RenderedMessage) -> dict[str, Any]:
    content = [markdown_text(line) for line in message.lines]
    content += [f"**{markdown_text(label)}**: {markdown_text(value)}" for label, value in message.facts]
    elements: list[dict[str, Any]] = [{"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(content)}}]
    buttons = [{"tag": "button", "text": {"tag": "plain_text", "content": label}, "url": url,
                "type": "primary" if index == 0 else "default"}
               for index, (label, url) in enumerate(message.links())]
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    return {"config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": message.title},
                       "template": SEVERITY_COLOURS.get(message.severity, "blue")},
            "elements": elements}


class FeishuNotifier:
    fields = (
        ConfigField("url", "secret-url", required=True),
        ConfigField("secret", "secret"),
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(self.fields, config)

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        body: dict[str, Any] = {"msg_type": "interactive", "card": card(message)}
        if config.get("secret"):
            timestamp = str(int(time.time()))
            body.update(timestamp=timestamp, sign=feishu_sign(str(config["secret"]), timestamp))
        url = str(config["url"])
        response = post_json(client, url, body, timeout=timeout)
        reply = json_reply(response, host_of(url))
        code = reply.get("code", reply.get("StatusCode", 0))
        if code != 0:
            reason = reply.get("msg") or reply.get("StatusMessage") or ""
            raise DeliveryFailed(f"Feishu refused the message: code {code}: {reason}",
                                 http_status=response.status_code, retryable=code in RATE_LIMITED)
        return response.status_code
