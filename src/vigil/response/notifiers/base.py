"""The ``vigil.notifiers`` plugin protocol and what every notifier shares.

A notifier is a class the entry point names; ``core.plugins.load_group`` instantiates it without
arguments. It declares its configuration as ``ConfigField`` s (which of them are secrets), checks a
channel's configuration (``check_config``) and delivers one ``RenderedMessage`` (``deliver``). A
delivery that fails raises ``DeliveryFailed`` saying why, with the HTTP status when there was one and
whether trying again may help; the sending service retries and records every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

import httpx

FieldType = Literal["url", "text", "secret", "secret-url", "int", "bool", "list", "choice"]
SECRET_TYPES = frozenset({"secret", "secret-url"})
# Statuses that may pass if tried again; any other 4xx is a refusal that will not change by itself.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ConfigField:
    """One setting of a channel kind: its name in the channel's config, its type, and whether it is needed."""

    name: str
    type: FieldType = "text"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()

    @property
    def secret(self) -> bool:
        return self.type in SECRET_TYPES


class ConfigProblem(Exception):
    """A channel configuration refused: one message per field (``field`` is the config key)."""

    def __init__(self, errors: Sequence[Mapping[str, str]]) -> None:
        self.errors = [dict(error) for error in errors]
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in self.errors))


class DeliveryFailed(Exception):
    """A delivery that did not go through; ``retryable`` when another attempt may succeed."""

    def __init__(self, reason: str, *, http_status: int | None = None, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.retryable = retryable


@dataclass(frozen=True)
class RenderedMessage:
    """A message in one language, ready for any platform: each notifier lays it out its own way.

    ``lines`` are sentences of plain text, ``facts`` labelled values; ``link`` opens the record in
    Vigil and ``ack_link`` (when set) acknowledges it. Nothing here is markup: each format escapes.
    """

    kind: str
    language: str
    title: str
    lines: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    severity: str = ""
    link: str = ""
    link_label: str = ""
    ack_link: str = ""
    ack_label: str = ""
    incident_id: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """Plain text: title, sentences, facts, links."""
        parts = [self.title, "", *self.lines]
        if self.facts:
            parts += ["", *(f"{label}: {value}" for label, value in self.facts)]
        if self.link:
            parts += ["", f"{self.link_label}: {self.link}"]
        if self.ack_link:
            parts.append(f"{self.ack_label}: {self.ack_link}")
        return "\n".join(parts).strip() + "\n"

    def markdown(self, *, heading: str = "### ") -> str:
        """The Markdown subset DingTalk and WeCom robots render (headings, bold, links, line breaks)."""
        parts = [f"{heading}{markdown_text(self.title)}", *(markdown_text(line) for line in self.lines)]
        parts += [f"**{markdown_text(label)}**: {markdown_text(value)}" for label, value in self.facts]
        links = [f"[{markdown_text(label)}]({url})" for label, url in self.links()]
        if links:
            parts.append(" | ".join(links))
        return "\n\n".join(parts)

    def links(self) -> list[tuple[str, str]]:
        found = [(self.link_label, self.link)] if self.link else []
        return found + ([(self.ack_label, self.ack_link)] if self.ack_link else [])

    def as_json(self) -> dict[str, Any]:
        """The message as the generic webhook sends it."""
        return {"kind": self.kind, "language": self.language, "title": self.title, "text": self.text(),
                "lines": list(self.lines), "facts": [{"label": k, "value": v} for k, v in self.facts],
                "severity": self.severity, "link": self.link, "ack_link": self.ack_link,
                "incident_id": self.incident_id}


def markdown_text(value: str) -> str:
    """A value shown as text in Markdown: it cannot become a link or an image, nor start a new block.

    The robots' Markdown dialects differ on backslash escapes (DingTalk shows them), so the link syntax is
    broken apart instead of escaped: ``](`` gets a space, and the value stays on one line."""
    return " ".join(value.split("\n")).replace("](", "] (").replace("![", "! [")


@runtime_checkable
class Notifier(Protocol):
    """A channel kind: ``fields`` it is configured with, a check of them, and the delivery of a message."""

    fields: tuple[ConfigField, ...]

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration cleaned (defaults filled, types fixed); ``ConfigProblem`` when it is wrong."""
        ...

    def deliver(self, config: Mapping[str, Any], message: RenderedMessage, *, client: httpx.Client,
                timeout: float) -> int | None:
        """Send ``message``; the HTTP status of the reply (None without HTTP); ``DeliveryFailed`` on failure."""
        ...


# --- checking configurations ------------------------------------------------------------------------


def check_fields(fields: Sequence[ConfigField], config: Mapping[str, Any]) -> dict[str, Any]:
    """The generic checks: no unknown keys, required fields present, each value of its type."""
    cleaned, errors = collect_field_errors(fields, config)
    if errors:
        raise ConfigProblem(errors)
    return cleaned


def collect_field_errors(fields: Sequence[ConfigField],
                         config: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``check_fields`` without raising: what passed, and every complaint (a notifier adds its own to them)."""
    errors: list[dict[str, str]] = []
    known = {f.name: f for f in fields}
    errors += [{"field": key, "message": f"unknown setting; known: {', '.join(known)}"}
               for key in config if key not in known]
    cleaned: dict[str, Any] = {}
    for spec in fields:
        value = config.get(spec.name)
        if value is None or value == "" or value == []:
            if spec.required:
                errors.append({"field": spec.name, "message": "required"})
            elif spec.default is not None:
                cleaned[spec.name] = spec.default
            continue
        try:
            cleaned[spec.name] = _typed(spec, value)
        except ValueError as exc:
            errors.append({"field": spec.name, "message": str(exc)})
    return cleaned, errors


def _typed(spec: ConfigField, value: Any) -> Any:
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("must be a whole number")
        try:
            return int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0", "yes", "no"):
            return value.lower() in ("true", "on", "1", "yes")
        raise ValueError("must be true or false")
    if spec.type == "list":
        items = value.replace(";", ",").split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a list of text values")
        return [item.strip() for item in items if item.strip()]
    if not isinstance(value, str):
        raise ValueError("must be text")
    value = value.strip()
    if "\x00" in value or len(value) > 2000:
        raise ValueError("must be text of at most 2000 characters without NUL")
    if spec.type in ("url", "secret-url"):
        check_url(value)
    if spec.type == "choice" and value not in spec.choices:
        raise ValueError(f"must be one of: {', '.join(spec.choices)}")
    return value


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// address")
    return value


# --- sending ----------------------------------------------------------------------------------------


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def post_json(client: httpx.Client, url: str, body: Any, *, timeout: float, params: Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None, content: bytes | None = None) -> httpx.Response:
    """POST ``body`` as JSON (or ``content`` as given); a network error or an error status is ``DeliveryFailed``."""
    try:
        if content is not None:
            response = client.post(url, content=content, params=params, timeout=timeout,
                                   headers={"Content-Type": "application/json", **(headers or {})})
        else:
            response = client.post(url, json=body, params=params, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc or 'no answer'} ({host_of(url)})") from None
    if response.status_code >= 400:
        raise DeliveryFailed(f"HTTP {response.status_code} from {host_of(url)}: {response.text[:300]}",
                             http_status=response.status_code, retryable=response.status_code in TRANSIENT_STATUSES)
    return response


def json_reply(response: httpx.Response, host: str) -> dict[str, Any]:
    try:
        reply = response.json()
    except ValueError:
        raise DeliveryFailed(f"{host} answered with something that is not JSON: {response.text[:200]}",
                             http_status=response.status_code, retryable=False) from None
    if not isinstance(reply, dict):
        raise DeliveryFailed(f"{host} answered with unexpected JSON: {response.text[:200]}",
                             http_status=response.status_code, retryable=False)
    return reply


def host_of(url: str) -> str:
    """Where a URL points, without its path or query (which may hold a token), for error messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "the endpoint"


def split_query_secret(config: dict[str, Any], *, url_field: str, into: str, parameter: str) -> None:
    """A pasted full webhook address (``...?access_token=X``): keep the address, and the token apart (it wins
    over a token given beside it: the address is what the platform's page showed)."""
    url = config.get(url_field)
    if not isinstance(url, str):
        return
    parts = urlsplit(url)
    token = parse_qs(parts.query).get(parameter)
    if token:
        config[into] = token[0]
        config[url_field] = parts._replace(query="").geturl()
