"""The ``vigil.actions`` plugin protocol, the plans an action makes, and running them.

An action plugin never runs anything itself: from a configuration and a checked target it makes a ``Plan``,
a list of steps, each a command (an argument list, run without a shell) or an HTTP request. The same plan is
what a dry-run shows and what an execution runs, so what was previewed is exactly what runs. ``undo`` makes the
plan that reverses it (unblock, enable, release), or None when the action cannot be reversed.

Targets are checked before anything is planned (``check_target``): an IP address must parse as one, an account
or host name must match a strict pattern, so ``1.2.3.4; rm -rf /`` or ``$(id)`` is refused before any step
exists. Templates only substitute the named placeholders (``{ip}``, ``{target}``...) by plain replacement,
never ``str.format``, so a template cannot reach into Python objects either.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from vigil.core.db import utcnow
from vigil.response.notifiers.base import ConfigField, ConfigProblem, collect_field_errors, host_of

__all__ = ["Action", "CommandStep", "ConfigField", "ConfigProblem", "HttpStep", "Plan", "StepResult",
           "TargetRefused", "check_config_fields", "run_plan"]

OUTPUT_LIMIT = 8000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\\-]{0,255}$")
HOST_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")


class TargetRefused(ValueError):
    """A target (IP address, account, host, script argument) that must not reach a command or request."""


@dataclass(frozen=True)
class CommandStep:
    argv: tuple[str, ...]
    timeout: float = 30.0

    def describe(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class HttpStep:
    method: str
    url: str
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_headers: frozenset[str] = frozenset()  # shown as *** in a dry-run and never stored
    timeout: float = 10.0

    def describe(self) -> str:
        shown = {name: ("***" if name in self.secret_headers else value) for name, value in self.headers.items()}
        heads = "".join(f"\n{name}: {value}" for name, value in shown.items())
        return f"{self.method} {self.url}{heads}\n\n{json.dumps(dict(self.body), ensure_ascii=False)}"


Step = CommandStep | HttpStep


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps]


@dataclass(frozen=True)
class StepResult:
    describe: str
    ok: bool
    output: str = ""
    exit_code: int | None = None
    http_status: int | None = None
    seconds: float = 0.0

    def as_record(self, phase: Literal["do", "undo"]) -> dict[str, Any]:
        return {"phase": phase, "describe": self.describe, "ok": self.ok, "output": self.output,
                "exit_code": self.exit_code, "http_status": self.http_status, "seconds": self.seconds,
                "at": utcnow().isoformat()}


@runtime_checkable
class Action(Protocol):
    """An action kind: its settings, what a target is, and the plans that do and undo it."""

    fields: tuple[ConfigField, ...]
    target_label: str  # "IP address", "account", "host", "argument": what ``check_target`` accepts

    def check_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration cleaned; ``ConfigProblem`` naming each wrong field."""
        ...

    def check_target(self, config: Mapping[str, Any], target: str) -> str:
        """The target normalised; ``TargetRefused`` when it is not one this action may act on."""
        ...

    def plan(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan:
        ...

    def undo(self, config: Mapping[str, Any], target: str, parameters: Mapping[str, str]) -> Plan | None:
        ...


# --- checks the built-in actions share --------------------------------------------------------------


def check_config_fields(fields: Sequence[ConfigField], config: Mapping[str, Any],
                        templates: Sequence[str] = ()) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The generic checks, with command templates given as a string split like a shell would (but never run
    by one) or as a JSON list of arguments."""
    given = dict(config)
    errors: list[dict[str, str]] = []
    for name in templates:
        value = given.get(name)
        if isinstance(value, str):
            try:
                given[name] = shlex.split(value)
            except ValueError as exc:
                errors.append({"field": name, "message": f"cannot be split into arguments: {exc}"})
                given.pop(name)
        elif value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            errors.append({"field": name, "message": "must be a list of arguments"})
            given.pop(name)
    cleaned, more = collect_field_errors(fields, given)
    for name in templates:  # the list type would split "a,b" at commas: keep the arguments as given
        if isinstance(given.get(name), list) and not any(e["field"] == name for e in more):
            cleaned[name] = [arg for arg in given[name] if arg != ""]
    return cleaned, errors + more


def check_ip(value: str, *, protected: Sequence[str] = ()) -> str:
    """One IPv4 or IPv6 address, nothing else; never a loopback, unspecified, multicast or protected one."""
    text = value.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise TargetRefused(f"{value!r} is not an IP address") from None
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        raise TargetRefused(f"{address} is a loopback, unspecified or multicast address; it is never blocked")
    for network in protected:
        if address in ipaddress.ip_network(network, strict=False):
            raise TargetRefused(f"{address} lies in the protected network {network}")
    return str(address)


def check_name(value: str, *, what: str, pattern: re.Pattern[str] = NAME_PATTERN) -> str:
    text = value.strip()
    if not pattern.fullmatch(text):
        raise TargetRefused(f"{value!r} is not a valid {what} (letters, digits and . _ @ - only)")
    return text


def check_networks(values: Sequence[str]) -> list[str]:
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP network") from None
    return networks


def substitute(template: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """Each argument with ``{name}`` replaced by its checked value: plain replacement, one argument stays one."""
    result = []
    for argument in template:
        for name, value in values.items():
            argument = argument.replace("{" + name + "}", value)
        result.append(argument)
    return tuple(result)


def placeholders_known(template: Sequence[str], names: Sequence[str]) -> list[str]:
    """The ``{placeholders}`` of a template that are not among ``names``."""
    found = {match for argument in template for match in re.findall(r"\{([^{}]*)\}", argument)}
    return sorted(found - set(names))


# --- running a plan ---------------------------------------------------------------------------------


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n[... cut]"


def run_command(step: CommandStep) -> StepResult:
    started = time.monotonic()
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8"}
    try:
        done = subprocess.run(list(step.argv), shell=False, capture_output=True, timeout=step.timeout, env=env,  # noqa: S603 - an argument list from a checked template, never a shell
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        return StepResult(step.describe(), False, f"{step.argv[0]}: no such program", None, None,
                          round(time.monotonic() - started, 3))
    except PermissionError as exc:
        return StepResult(step.describe(), False, f"{step.argv[0]}: {exc.strerror}", None, None,
                          round(time.monotonic() - started, 3))
    except subprocess.TimeoutExpired as exc:
        partial = (exc.stdout or b"").decode("utf-8", "replace") + (exc.stderr or b"").decode("utf-8", "replace")
        return StepResult(step.describe(), False, _clip(partial + f"\ntimed out after {step.timeout:g} s"), None,
                          None, round(time.monotonic() - started, 3))
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    return StepResult(step.describe(), done.returncode == 0, _clip(output), done.returncode, None,
                      round(time.monotonic() - started, 3))


def run_http(step: HttpStep, client: httpx.Client) -> StepResult:
    started = time.monotonic()
    try:
        response = client.request(step.method, step.url, json=dict(step.body), headers=dict(step.headers),
                                  timeout=step.timeout)
    except httpx.HTTPError as exc:
        return StepResult(step.describe(), False, f"{type(exc).__name__}: {exc or 'no answer'} ({host_of(step.url)})",
                          None, None, round(time.monotonic() - started, 3))
    ok = 200 <= response.status_code < 300
    return StepResult(step.describe(), ok, _clip(response.text), None, response.status_code,
                      round(time.monotonic() - started, 3))


def run_plan(plan: Plan, *, client: httpx.Client | None = None) -> list[StepResult]:
    """Run the steps in order, stopping at the first that fails; the results of those that ran."""
    results: list[StepResult] = []
    http = client or httpx.Client(follow_redirects=False)
    try:
        for step in plan.steps:
            result = run_command(step) if isinstance(step, CommandStep) else run_http(step, http)
            results.append(result)
            if not result.ok:
                break
    finally:
        if client is None:
            http.close()
    return results
