"""E-mail over SMTP: a plain-text and an HTML part, the subject in UTF-8 (encoded words for 中文).

Connection security is ``starttls`` (port 587, the default), ``ssl`` (implicit TLS, port 465) or
``none`` (a relay on the local network); user name and password are optional. A refused recipient or
a refused login will not pass by itself and is not retried; a dropped connection or a 4xx reply is.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any

import httpx

from vigil.response.notifiers.base import (
    ConfigField,
    ConfigProblem,
    DeliveryFailed,
    RenderedMessage,
    collect_field_errors,
)

SECURITY = ("starttls", "ssl", "none")


def _address(value: str) -> bool:
    _name, address = parseaddr(value)
    local, _, domain = address.partition("@")
    return bool(local and domain and "." in domain.strip(".") and not any(c.isspace() for c in address))


def html_body(message: RenderedMessage) -> str:
    e = html.escape
    parts = [f"<h2>{e(message.title)}</h2>", *(f"<p>{e(line)}</p>" for line in message.lines)]
    if message.facts:
        rows = "".join(f"<tr><th align=\"left\">{e(label)}</th><td>{e(value)}</td></tr>"
                       for label, value in message.facts)
        parts.append(f"<table>{rows}</table>")
    links = " | ".join(f"<a href=\"{e(url)}\">{e(label)}</a>" for label, url in message.links())
    if links:
        parts.append(f"<p>{links}</p>")
    return f"<!doctype html><html lang=\"{e(message.language.replace('_', '-'))}\"><body>{''.join(parts)}</body></html>"


def build_email(config: Mapping[str, Any], message: RenderedMessage) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = str(config["from_address"])
    mail["To"] = ", ".join(config["to"])
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=parseaddr(str(config["from_address"]))[1].partition("@")[2] or None)
    mail.set_content(message.text())
    mail.add_alternative(html_body(message), subtype="html")
    return mail


class EmailNotifier:
    fields = (
        ConfigField("host", "text", required=True),
        ConfigField("port", "int", default=587),
        ConfigField("security", "choice", default="starttls", choices=SECURITY),
        ConfigField("username", "text"),
        ConfigField("password", "secret"),
        ConfigField("from_address", "text", required=True),
        ConfigField("to", "list", required=True),
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cleaned, errors = collect_field_errors(self.fields, config)
        if "port" in cleaned and not 1 <= cleaned["port"] <= 65535:
            errors.append({"field": "port", "message": "must be a port number from 1 to 65535"})
        if "from_address" in cleaned and not _address(cleaned["from_address"]):
            errors.append({"field": "from_address", "message": "must be an e-mail address"})
        bad = [value for value in cleaned.get("to", []) if not _address(value)]
        if bad:
            errors.append({"field": "to", "message": f"not e-mail addresses: {', '.join(bad)}"})
        if cleaned.get("password") and not cleaned.get("username"):
            errors.append({"field": "username", "message": "required when a password is set"})
        if errors:
            raise ConfigProblem(errors)
        return cleaned

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        mail = build_email(config, message)
        host, port, security = str(config["host"]), int(config.get("port") or 587), config.get("security", "starttls")
        try:
            smtp: smtplib.SMTP = (smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
                                  if security == "ssl" else smtplib.SMTP(host, port, timeout=timeout))
            with smtp:
                if security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if config.get("username"):
                    smtp.login(str(config["username"]), str(config.get("password") or ""))
                refused = smtp.send_message(mail)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise DeliveryFailed(f"the mail server {host}:{port} refused: {exc}", retryable=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(f"the mail server {host}:{port} cannot do this: {exc}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"mail to {host}:{port} failed: {type(exc).__name__}: {exc}") from None
        if refused:
            named = ", ".join(formataddr(("", address)) for address in refused)
            raise DeliveryFailed(f"the mail server {host}:{port} refused some recipients: {named}", retryable=False)
        return None
