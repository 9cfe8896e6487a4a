"""The built-in action plugins: block an IP, disable an account, isolate a host, run a configured script.

Each is declared under ``[project.entry-points."vigil.actions"]`` and loads through the same path as a
third-party plugin. LDAP for ``disable_account`` is not built: the ``ldap3`` library is not among Vigil's
dependencies, so accounts are disabled through a webhook (a directory's own API or a small bridge).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from vigil.response.actions.base import (
    HOST_PATTERN,
    CommandStep,
    ConfigField,
    ConfigProblem,
    HttpStep,
    Plan,
    TargetRefused,
    check_config_fields,
    check_ip,
    check_name,
    check_networks,
    placeholders_known,
    substitute,
)

METHODS = ("POST", "PUT", "PATCH", "DELETE")
TIMEOUT = ConfigField("timeout_seconds", "int", default=10)
WEBHOOK_FIELDS = (
    ConfigField("url", "url", required=True),
    ConfigField("method", "choice", default="POST", choices=METHODS),
    ConfigField("undo_url", "url"),
    ConfigField("undo_method", "choice", default="POST", choices=METHODS),
    ConfigField("token", "secret"),
    TIMEOUT,
)
DEFAULT_ARGUMENT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:/@=,+-]{0,255}"


def _raise(errors: list[dict[str, str]]) -> None:
    if errors:
        raise ConfigProblem(errors)


def _check_timeout(cleaned: dict[str, Any], errors: list[dict[str, str]]) -> None:
    if not 1 <= int(cleaned.get("timeout_seconds", 10)) <= 600:
        errors.append({"field": "timeout_seconds", "message": "must be between 1 and 600"})


def _check_template(cleaned: Mapping[str, Any], name: str, allowed: Sequence[str],
                    errors: list[dict[str, str]]) -> None:
    template = cleaned.get(name)
    if not template:
        return
    unknown = placeholders_known(template, allowed)
    if unknown:
        errors.append({"field": name, "message": "unknown placeholder(s) " + ", ".join("{" + u + "}" for u in unknown)
                       + "; allowed: " + ", ".join("{" + a + "}" for a in allowed)})
    if not PurePosixPath(template[0]).is_absolute():
        errors.append({"field": name, "message": "the program must be an absolute path (e.g. /usr/sbin/nft)"})


def _headers(config: Mapping[str, Any]) -> tuple[dict[str, str], frozenset[str]]:
    token = str(config.get("token") or "")
    if not token:
        return {}, frozenset()
    return {"Authorization": f"Bearer {token}"}, frozenset({"Authorization"})


def _webhook(config: Mapping[str, Any], *, undo: bool, body: Mapping[str, Any]) -> Plan | None:
    url = config.get("undo_url" if undo else "url")
    if not url:
        return None
    headers, secret = _headers(config)
    method = str(config.get("undo_method" if undo else "method") or "POST")
    return Plan((HttpStep(method, str(url), body, headers, secret, float(config.get("timeout_seconds", 10))),))


def _context(parameters: Mapping[str, str]) -> dict[str, str]:
    """What a request body carries besides the target: the reason and the incident, when given."""
    return {key: parameters[key] for key in ("reason", "incident", "execution") if parameters.get(key)}


class BlockIp:
    """Block one IP address: an nftables/iptables command template (``{ip}``), or a firewall's HTTP API."""

    target_label = "IP address"
    fields = (
        ConfigField("mode", "choice", required=True, choices=("command", "http")),
        ConfigField("command", "list"),
        ConfigField("undo_command", "list"),
        ConfigField("url", "url"),
        ConfigField("method", "choice", default="POST", choices=METHODS),
        ConfigField("undo_url", "url"),
        ConfigField("undo_method", "choice", default="DELETE", choices=METHODS),
        ConfigField("token", "secret"),
        ConfigField("protected_networks", "list"),
        TIMEOUT,
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cleaned, errors = check_config_fields(self.fields, config, templates=("command", "undo_command"))
        mode = cleaned.get("mode")
        if mode == "command" and not cleaned.get("command"):
            errors.append({"field": "command", "message": "required in command mode"})
        if mode == "http" and not cleaned.get("url"):
            errors.append({"field": "url", "message": "required in http mode"})
        for name in ("command", "undo_command"):
            _check_template(cleaned, name, ("ip",), errors)
            if cleaned.get(name) and not any("{ip}" in arg for arg in cleaned[name]):
                errors.append({"field": name, "message": "must contain {ip}"})
        try:
            cleaned["protected_networks"] = check_networks(cleaned.get("protected_networks") or [])
        except ValueError as exc:
            errors.append({"field": "protected_networks", "message": str(exc)})
        _check_timeout(cleaned, errors)
        _raise(errors)
        return cleaned

    def check_target(self, config: Mapping[str, Any], target: str) -> str:
        return check_ip(target, protected=config.get("protected_networks") or [])

    def _plan(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str], undo: bool) -> Plan | None:
        ip = self.check_target(config, target)
        if config.get("mode") == "command":
            template = config.get("undo_command" if undo else "command")
            if not template:
                return None
            return Plan((CommandStep(substitute(template, {"ip": ip}), float(config.get("timeout_seconds", 10))),))
        body = {"ip": ip, "action": "unblock" if undo else "block", **_context(parameters)}
        return _webhook(config, undo=undo, body=body)

    def plan(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan:
        found = self._plan(config, target, parameters, False)
        assert found is not None  # check_config demands the command or the url
        return found

    def undo(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan | None:
        return self._plan(config, target, parameters, True)


class _WebhookAction:
    """An action that POSTs ``{<noun>: target, "action": verb}`` to a webhook (and the undo verb to ``undo_url``)."""

    fields = WEBHOOK_FIELDS
    target_label = ""
    noun = ""
    verbs = ("", "")

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cleaned, errors = check_config_fields(self.fields, config)
        _check_timeout(cleaned, errors)
        _raise(errors)
        return cleaned

    def check_target(self, config: Mapping[str, Any], target: str) -> str:
        return check_name(target, what=self.target_label)

    def plan(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan:
        body = {self.noun: self.check_target(config, target), "action": self.verbs[0], **_context(parameters)}
        found = _webhook(config, undo=False, body=body)
        assert found is not None  # the url is required
        return found

    def undo(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan | None:
        body = {self.noun: self.check_target(config, target), "action": self.verbs[1], **_context(parameters)}
        return _webhook(config, undo=True, body=body)


class DisableAccount(_WebhookAction):
    """Disable an account through a webhook (a directory's API or a bridge); ``undo_url`` enables it again."""

    target_label = "account"
    noun = "account"
    verbs = ("disable", "enable")


class IsolateHost(_WebhookAction):
    """Isolate a host through an EDR's webhook; ``undo_url`` releases it."""

    target_label = "host"
    noun = "host"
    verbs = ("isolate", "release")

    def check_target(self, config: Mapping[str, Any], target: str) -> str:
        text = target.strip()
        try:
            return check_ip(text)
        except TargetRefused:
            return check_name(text, what="host name or IP address", pattern=HOST_PATTERN)


class RunScript:
    """Run a configured script with the target as an argument (checked against ``argument_pattern``)."""

    target_label = "argument"
    fields = (
        ConfigField("command", "list", required=True),
        ConfigField("undo_command", "list"),
        ConfigField("argument_pattern", "text", default=DEFAULT_ARGUMENT_PATTERN),
        ConfigField("timeout_seconds", "int", default=60),
    )

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cleaned, errors = check_config_fields(self.fields, config, templates=("command", "undo_command"))
        for name in ("command", "undo_command"):
            _check_template(cleaned, name, ("target",), errors)
        try:
            re.compile(str(cleaned.get("argument_pattern", DEFAULT_ARGUMENT_PATTERN)))
        except re.error as exc:
            errors.append({"field": "argument_pattern", "message": f"not a regular expression: {exc}"})
        _check_timeout(cleaned, errors)
        _raise(errors)
        return cleaned

    def check_target(self, config: Mapping[str, Any], target: str) -> str:
        text = target.strip()
        pattern = str(config.get("argument_pattern") or DEFAULT_ARGUMENT_PATTERN)
        if text.startswith("-") or not re.fullmatch(pattern, text):
            raise TargetRefused(f"{target!r} does not match the script's argument pattern {pattern}")
        return text

    def _plan(self, config: Mapping[str, Any], target: str, undo: bool) -> Plan | None:
        argument = self.check_target(config, target)
        template = config.get("undo_command" if undo else "command")
        if not template:
            return None
        timeout = float(config.get("timeout_seconds", 60))
        return Plan((CommandStep(substitute(template, {"target": argument}), timeout),))

    def plan(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan:
        found = self._plan(config, target, False)
        assert found is not None
        return found

    def undo(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan | None:
        return self._plan(config, target, True)
