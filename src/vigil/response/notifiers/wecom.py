"""WeCom (企业微信) group robot: a Markdown message to ``.../cgi-bin/webhook/send?key=...``.

The robot answers ``{"errcode": 0, "errmsg": "ok"}``; any other errcode is a refusal (a wrong key,
a message too long, too many messages: 45009, which is worth another attempt later).
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
    json_reply,
    post_json,
    split_query_secret,
)

DEFAULT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
MAX_CONTENT_BYTES = 4096  # the robot refuses longer Markdown content
RATE_LIMITED = frozenset({45009})


def clip_utf8(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit - 3].decode(errors="ignore") + "..."


class WeComNotifier:
    fields = (
        ConfigField("url", "url", default=DEFAULT_URL),
        ConfigField("key", "secret", required=True),
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        given = dict(config)
        split_query_secret(given, url_field="url", into="key", parameter="key")
        return check_fields(self.fields, given)

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        body = {"msgtype": "markdown",
                "markdown": {"content": clip_utf8(message.markdown(heading="## "), MAX_CONTENT_BYTES)}}
        url = str(config.get("url") or DEFAULT_URL)
        response = post_json(client, url, body, params={"key": str(config["key"])}, timeout=timeout)
        reply = json_reply(response, host_of(url))
        code = reply.get("errcode", 0)
        if code != 0:
            raise DeliveryFailed(f"WeCom refused the message: errcode {code}: {reply.get('errmsg', '')}",
                                 http_status=response.status_code, retryable=code in RATE_LIMITED)
        return response.status_code
