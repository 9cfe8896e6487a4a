"""DingTalk (钉钉) custom group robot: a Markdown message, signed when the robot has a secret (加签).

The signature is ``base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))`` with the timestamp in
milliseconds; both go in the query string (URL-encoded) beside ``access_token``. The robot answers
``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a refusal (wrong token or signature, a missing
keyword, too many messages).
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
    post_json,
    split_query_secret,
)

DEFAULT_URL = "https://oapi.dingtalk.com/robot/send"
RATE_LIMITED = frozenset({130101})  # "send too fast": another attempt later may pass


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """The 加签 signature before URL encoding (httpx encodes query parameters)."""
    return base64.b64encode(hmac_sha256(secret.encode(), f"{timestamp_ms}\n{secret}".encode())).decode()


class DingTalkNotifier:
    fields = (
        ConfigField("url", "url", default=DEFAULT_URL),
        ConfigField("access_token", "secret", required=True),
        ConfigField("secret", "secret"),
        ConfigField("at_mobiles", "list"),
        ConfigField("at_all", "bool", default=False),
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        given = dict(config)
        split_query_secret(given, url_field="url", into="access_token", parameter="access_token")
        return check_fields(self.fields, given)

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        params = {"access_token": str(config["access_token"])}
        if config.get("secret"):
            timestamp = str(int(time.time() * 1000))
            params.update(timestamp=timestamp, sign=dingtalk_sign(str(config["secret"]), timestamp))
        mobiles = [str(m) for m in config.get("at_mobiles") or []]
        text = message.markdown()
        if mobiles:  # DingTalk highlights a mention only when the text names it too
            text += "\n\n" + " ".join(f"@{mobile}" for mobile in mobiles)
        body = {"msgtype": "markdown", "markdown": {"title": message.title, "text": text},
                "at": {"atMobiles": mobiles, "isAtAll": bool(config.get("at_all"))}}
        url = str(config.get("url") or DEFAULT_URL)
        response = post_json(client, url, body, params=params, timeout=timeout)
        reply = json_reply(response, host_of(url))
        code = reply.get("errcode", 0)
        if code != 0:
            raise DeliveryFailed(f"DingTalk refused the message: errcode {code}: {reply.get('errmsg', '')}",
                                 http_status=response.status_code, retryable=code in RATE_LIMITED)
        return response.status_code
