"""A generic webhook: the message as JSON, signed with HMAC-SHA256 so the receiver can trust it.

Headers: ``X-Vigil-Timestamp`` (Unix seconds) and ``X-Vigil-Signature: sha256=<hex>`` where the hex is
``HMAC-SHA256(key=secret, msg=f"{timestamp}.{body}")`` over the exact bytes of the body. A receiver
recomputes it from the raw body, compares in constant time, and refuses timestamps older than a few
minutes (docs/notifications.md). Any 2xx reply is a success.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from vigil.response.notifiers.base import ConfigField, RenderedMessage, check_fields, post_json

TIMESTAMP_HEADER = "X-Vigil-Timestamp"
SIGNATURE_HEADER = "X-Vigil-Signature"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier:
    fields = (
        ConfigField("url", "url", required=True),
        ConfigField("secret", "secret"),
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(self.fields, config)

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        body = orjson.dumps(message.as_json())
        timestamp = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: timestamp, "User-Agent": "Vigil notifications"}
        if config.get("secret"):
            headers[SIGNATURE_HEADER] = webhook_signature(str(config["secret"]), timestamp, body)
        response = post_json(client, str(config["url"]), None, content=body, headers=headers, timeout=timeout)
        return response.status_code
