"""Each built-in notifier against a stand-in of its platform on 127.0.0.1 (tests/response/platforms.py): the
message format each platform takes, the signature recomputed on the server from the timestamp it received,
a wrong secret refused by the server and reported as such; e-mail through aiosmtpd; settings checked."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from vigil.core.plugins import load_group
from vigil.response.notifications.messages import Message, MessageKind, render
from vigil.response.notifiers.base import ConfigProblem, DeliveryFailed, Notifier, RenderedMessage
from vigil.response.notifiers.dingtalk import DingTalkNotifier
from vigil.response.notifiers.email import EmailNotifier
from vigil.response.notifiers.feishu import FeishuNotifier
from vigil.response.notifiers.slack import SlackNotifier
from vigil.response.notifiers.webhook import WebhookNotifier
from vigil.response.notifiers.wecom import WeComNotifier

from . import platforms

MESSAGE = Message(MessageKind.INCIDENT_OPENED, subject="web01 上的勒索软件 [ransomware]", severity="P1",
                  summary="Files on web01 are being encrypted.", incident_id=42,
                  link="https://vigil.example.cn/incidents/42", ack_link="https://vigil.example.cn/ack/abc",
                  recipient="alice")


def rendered(language: str = "zh_CN") -> RenderedMessage:
    return render(MESSAGE, language=language)


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client() as http:
        yield http


def test_every_built_in_notifier_loads_through_the_entry_points() -> None:
    loaded = load_group("vigil.notifiers", Notifier)  # type: ignore[type-abstract]
    assert sorted(loaded.plugins) == ["dingtalk", "email", "feishu", "slack", "webhook", "wecom"]
    assert loaded.broken == []


def test_messages_render_in_chinese_and_english() -> None:
    chinese, english = rendered("zh_CN"), rendered("en")
    assert chinese.title == "[P1] 新事件：web01 上的勒索软件 [ransomware]"
    assert english.title == "[P1] Incident opened: web01 上的勒索软件 [ransomware]"
    assert chinese.lines[0] == "有新的安全事件需要处理。" and english.lines[0] == "A new incident needs attention."
    assert ("值班人员", "alice") in chinese.facts and ("On call", "alice") in english.facts
    assert "[在 Vigil 中查看](https://vigil.example.cn/incidents/42)" in chinese.markdown()
    # A subject cannot smuggle a link into the Markdown.
    sneaky = render(Message(MessageKind.INCIDENT_OPENED, subject="[click](https://evil.example)"), language="en")
    assert "[click] (https://evil.example)" in sneaky.markdown()
    test = render(Message(MessageKind.TEST), language="en", channel="SOC group")
    assert test.title == "Test message from Vigil" and "SOC group" in test.lines[0]


# --- DingTalk -----------------------------------------------------------------------------------------


def test_dingtalk_signed_markdown_is_accepted(client: httpx.Client) -> None:
    notifier = DingTalkNotifier()
    with platforms.serve(platforms.dingtalk("TOKEN123", secret="SEC-dingtalk-secret")) as server:
        config = notifier.check_config({"url": f"{server.url}/robot/send", "access_token": "TOKEN123",
                                        "secret": "SEC-dingtalk-secret", "at_mobiles": "13800138000"})
        assert notifier.deliver(config, rendered(), client=client, timeout=5) == 200
    body = server.received[0].json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "[P1] 新事件：web01 上的勒索软件 [ransomware]"
    assert body["markdown"]["text"].startswith("### [P1] 新事件")
    assert "@13800138000" in body["markdown"]["text"]
    assert body["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}
    # The stand-in recomputed the sign from this millisecond timestamp (a base64 sign with + or / passes only
    # when it travelled URL-encoded).
    assert len(server.received[0].query["timestamp"]) == 13


def test_dingtalk_wrong_secret_is_refused_with_the_robots_reason(client: httpx.Client) -> None:
    notifier = DingTalkNotifier()
    with platforms.serve(platforms.dingtalk("TOKEN123", secret="the-right-secret")) as server:
        config = notifier.check_config({"url": f"{server.url}/robot/send", "access_token": "TOKEN123",
                                        "secret": "a-wrong-secret"})
        with pytest.raises(DeliveryFailed) as failed:
            notifier.deliver(config, rendered(), client=client, timeout=5)
    assert "errcode 310000" in failed.value.reason and "sign not match" in failed.value.reason
    assert not failed.value.retryable


def test_dingtalk_takes_a_pasted_webhook_address() -> None:
    config = DingTalkNotifier().check_config({"url": "https://oapi.dingtalk.com/robot/send?access_token=abc123"})
    assert config["url"] == "https://oapi.dingtalk.com/robot/send" and config["access_token"] == "abc123"


# --- WeCom --------------------------------------------------------------------------------------------


def test_wecom_markdown_is_accepted_and_a_wrong_key_refused(client: httpx.Client) -> None:
    notifier = WeComNotifier()
    with platforms.serve(platforms.wecom("KEY-693a91f6")) as server:
        url = f"{server.url}/cgi-bin/webhook/send"
        assert notifier.deliver(notifier.check_config({"url": url, "key": "KEY-693a91f6"}), rendered(),
                                client=client, timeout=5) == 200
        with pytest.raises(DeliveryFailed, match="errcode 93000: invalid webhook url"):
            notifier.deliver(notifier.check_config({"url": url, "key": "KEY-wrong"}), rendered(), client=client,
                             timeout=5)
    content = server.received[0].json()["markdown"]["content"]
    assert content.startswith("## [P1] 新事件") and "**严重程度**: P1" in content


# --- Feishu -------------------------------------------------------------------------------------------


def test_feishu_signed_card_is_accepted(client: httpx.Client) -> None:
    notifier = FeishuNotifier()
    with platforms.serve(platforms.feishu("hook-5f1c", secret="feishu-secret")) as server:
        config = notifier.check_config({"url": f"{server.url}/open-apis/bot/v2/hook/hook-5f1c",
                                        "secret": "feishu-secret"})
        assert notifier.deliver(config, rendered("en"), client=client, timeout=5) == 200
    body = server.received[0].json()
    assert body["msg_type"] == "interactive" and isinstance(body["timestamp"], str)
    card = body["card"]
    assert card["header"]["title"]["content"] == "[P1] Incident opened: web01 上的勒索软件 [ransomware]"
    assert card["header"]["template"] == "red"
    buttons = card["elements"][-1]["actions"]
    assert [(b["text"]["content"], b["url"]) for b in buttons] == [
        ("Open in Vigil", "https://vigil.example.cn/incidents/42"), ("Acknowledge", "https://vigil.example.cn/ack/abc")]


def test_feishu_wrong_secret_is_refused(client: httpx.Client) -> None:
    notifier = FeishuNotifier()
    with platforms.serve(platforms.feishu("hook-5f1c", secret="feishu-secret")) as server:
        config = notifier.check_config({"url": f"{server.url}/open-apis/bot/v2/hook/hook-5f1c", "secret": "nope"})
        with pytest.raises(DeliveryFailed, match="code 19021"):
            notifier.deliver(config, rendered(), client=client, timeout=5)


# --- Slack --------------------------------------------------------------------------------------------


def test_slack_blocks_are_accepted_and_a_wrong_address_fails(client: httpx.Client) -> None:
    notifier = SlackNotifier()
    with platforms.serve(platforms.slack("/services/T0/B0/xyz")) as server:
        assert notifier.deliver(notifier.check_config({"url": f"{server.url}/services/T0/B0/xyz"}), rendered("en"),
                                client=client, timeout=5) == 200
        with pytest.raises(DeliveryFailed, match="HTTP 404"):
            notifier.deliver({"url": f"{server.url}/services/T0/B0/gone"}, rendered("en"), client=client, timeout=5)
    body = server.received[0].json()
    assert body["text"] == "[P1] Incident opened: web01 上的勒索软件 [ransomware]"
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "section", "actions"]


# --- the signed webhook -------------------------------------------------------------------------------


def test_webhook_signature_verifies_on_the_receiver(client: httpx.Client) -> None:
    notifier = WebhookNotifier()
    with platforms.serve(platforms.webhook("whsec-1")) as server:
        assert notifier.deliver(notifier.check_config({"url": f"{server.url}/hooks/vigil", "secret": "whsec-1"}),
                                rendered("en"), client=client, timeout=5) == 202
        with pytest.raises(DeliveryFailed, match="HTTP 401"):
            notifier.deliver({"url": f"{server.url}/hooks/vigil", "secret": "whsec-2"}, rendered("en"),
                             client=client, timeout=5)
    first = server.received[0]
    expected = hmac.new(b"whsec-1", first.headers["x-vigil-timestamp"].encode() + b"." + first.body,
                        hashlib.sha256).hexdigest()
    assert first.headers["x-vigil-signature"] == f"sha256={expected}"
    assert first.json()["incident_id"] == 42 and first.json()["ack_link"] == "https://vigil.example.cn/ack/abc"


# --- e-mail -------------------------------------------------------------------------------------------


def test_email_reaches_the_mail_server_with_a_chinese_subject_and_both_parts(client: httpx.Client) -> None:
    notifier = EmailNotifier()
    with platforms.smtp_server() as mailbox:
        config = notifier.check_config({"host": mailbox.host, "port": mailbox.port, "security": "none",
                                        "from_address": "Vigil <vigil@example.cn>",
                                        "to": "oncall@example.cn, soc-lead@example.cn"})
        assert notifier.deliver(config, rendered(), client=client, timeout=5) is None
    mail_from, recipients, mail = mailbox.messages[0]
    assert mail_from == "vigil@example.cn"
    assert recipients == ["oncall@example.cn", "soc-lead@example.cn"]
    assert mail["Subject"] == "[P1] 新事件：web01 上的勒索软件 [ransomware]"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "有新的安全事件需要处理。" in text.get_content()
    assert "值班人员: alice" in text.get_content()
    assert '<a href="https://vigil.example.cn/ack/abc">确认</a>' in html.get_content() or \
        "https://vigil.example.cn/ack/abc" in html.get_content()


def test_email_logs_in_and_a_wrong_password_is_not_retried(client: httpx.Client) -> None:
    notifier = EmailNotifier()
    with platforms.smtp_server(user="vigil", password="mail-pass-31") as mailbox:
        base = {"host": mailbox.host, "port": mailbox.port, "security": "none", "username": "vigil",
                "from_address": "vigil@example.cn", "to": ["oncall@example.cn"]}
        notifier.deliver(notifier.check_config({**base, "password": "mail-pass-31"}), rendered("en"), client=client,
                         timeout=5)
        with pytest.raises(DeliveryFailed) as refused:
            notifier.deliver(notifier.check_config({**base, "password": "wrong"}), rendered("en"), client=client,
                             timeout=5)
    assert [recipients for _, recipients, _ in mailbox.messages] == [["oncall@example.cn"]]
    assert "refused" in refused.value.reason and not refused.value.retryable
    assert "wrong" not in refused.value.reason


def test_email_to_a_closed_port_fails_and_may_be_retried(client: httpx.Client) -> None:
    config = EmailNotifier().check_config({"host": "127.0.0.1", "port": platforms.free_port(), "security": "none",
                                           "from_address": "vigil@example.cn", "to": ["a@example.cn"]})
    with pytest.raises(DeliveryFailed) as failed:
        EmailNotifier().deliver(config, rendered(), client=client, timeout=5)
    assert "mail to 127.0.0.1" in failed.value.reason and failed.value.retryable


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("notifier", "config", "field", "words"), [
    (DingTalkNotifier(), {"access_token": "x", "url": "ftp://oapi.dingtalk.com/robot/send"}, "url", "http"),
    (DingTalkNotifier(), {}, "access_token", "required"),
    (WeComNotifier(), {"key": "k", "colour": "red"}, "colour", "unknown setting"),
    (FeishuNotifier(), {"url": "javascript:alert(1)"}, "url", "http"),
    (SlackNotifier(), {}, "url", "required"),
    (WebhookNotifier(), {"url": "http://"}, "url", "http"),
    (EmailNotifier(), {"host": "smtp.example.cn", "from_address": "vigil", "to": ["a@example.cn"]},
     "from_address", "e-mail address"),
    (EmailNotifier(), {"host": "smtp.example.cn", "from_address": "v@example.cn", "to": ["a@example.cn"],
                       "security": "tls13"}, "security", "one of"),
    (EmailNotifier(), {"host": "smtp.example.cn", "from_address": "v@example.cn", "to": "a@example.cn",
                       "port": "seventy"}, "port", "whole number"),
])
def test_a_wrong_setting_is_named(notifier: Notifier, config: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ConfigProblem) as problem:
        notifier.check_config(config)
    assert any(error["field"] == field and words in error["message"] for error in problem.value.errors), \
        problem.value.errors
