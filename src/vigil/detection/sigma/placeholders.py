"""Sigma placeholders: the values a deployment gives ``%name%`` in a value with the ``expand`` modifier.

The Sigma specification leaves a placeholder's values to each deployment (pySigma reads them from a
pipeline's ``vars``). Vigil keeps them in a platform-wide table (``RulePlaceholder``, set with ``vigil
rules placeholders set``) and ``vigil hunt`` takes them with ``--placeholder``/``--placeholders``. A
placeholder becomes the OR of its values (each value a Sigma string: ``*`` and ``?`` are wildcards); in a
regular expression (``|re|expand``) a value is inserted as regular-expression text, as pySigma does. A
placeholder with no values refuses the rule, as the specification asks.

This module is light (no pySigma, no YAML at import): ``vigil hunt`` uses it before it knows whether the
rules come from its compiled cache.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_VALUES = 1_000
MAX_VALUE_CHARS = 1_024
# pySigma's placeholder syntax (``SigmaString.insert_placeholders``): %name%, not preceded by a backslash.
_USED = re.compile(r"(?<!\\)%([^%\n]+)%")

Placeholders = Mapping[str, Sequence[str]]
# The hashable, sorted form a cache key and a worker process get: ((name, (value, ...)), ...).
Frozen = tuple[tuple[str, tuple[str, ...]], ...]


class PlaceholderError(ValueError):
    """A placeholder name or value list that is not allowed (the message says why)."""


def check_name(name: str) -> str:
    name = name.strip().strip("%")
    if not NAME.fullmatch(name):
        raise PlaceholderError(f"the placeholder name {name!r} is not allowed: use 1 to 64 letters, digits and "
                               "_ - . (the text between the % signs)")
    return name


def check_values(values: Iterable[Any]) -> list[str]:
    """The values as a list of strings, duplicates dropped (order kept); at least one, at most ``MAX_VALUES``."""
    items = list(values)
    if any(not isinstance(value, str | int | float) or isinstance(value, bool) for value in items):
        raise PlaceholderError("a placeholder's values are strings (or numbers)")
    texts = list(dict.fromkeys(str(value) for value in items))
    if not texts:
        raise PlaceholderError("give a placeholder at least one value")
    if len(texts) > MAX_VALUES:
        raise PlaceholderError(f"a placeholder holds at most {MAX_VALUES:,} values ({len(texts):,} given)")
    for text in texts:
        if not text:
            raise PlaceholderError("a placeholder value cannot be empty")
        if len(text) > MAX_VALUE_CHARS:
            raise PlaceholderError(f"a placeholder value holds at most {MAX_VALUE_CHARS:,} characters "
                                   f"({text[:40]!r}... has {len(text):,})")
    return texts


def frozen(placeholders: Placeholders | None) -> Frozen:
    """The mapping, sorted and hashable."""
    return tuple(sorted((name, tuple(values)) for name, values in (placeholders or {}).items()))


def digest(placeholders: Placeholders | None) -> str:
    """A digest of the names and values ("" for none): part of every compiled cache's key."""
    items = frozen(placeholders)
    if not items:
        return ""
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()[:16]


def names_in(text: str) -> set[str]:
    """Every ``%name%`` in the text (a valid name only)."""
    return {name for name in _USED.findall(text) if NAME.fullmatch(name)}


def used_in(text: str) -> set[str]:
    """The placeholder names a rule's YAML may use (``%name%`` in a file with the ``expand`` modifier)."""
    return names_in(text) if "expand" in text else set()


def for_text(placeholders: Placeholders | None, text: str) -> dict[str, list[str]]:
    """The placeholders (of those given) that the rule's YAML uses: what its compiled form depends on."""
    if not placeholders:
        return {}
    names = used_in(text)
    return {name: list(values) for name, values in placeholders.items() if name in names}


def parse_assignment(text: str) -> tuple[str, list[str]]:
    """``NAME=V1,V2`` (``vigil hunt --placeholder``) as a name and its values."""
    name, sep, values = text.partition("=")
    if not sep:
        raise PlaceholderError(f"{text!r}: write NAME=VALUE or NAME=VALUE1,VALUE2")
    return check_name(name), check_values(value for value in values.split(",") if value)


def read_file(path: Path) -> dict[str, list[str]]:
    """A YAML or JSON file mapping each placeholder's name to its value (or list of values)."""
    import yaml  # only when a file is given

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlaceholderError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PlaceholderError(f"{path} is not YAML or JSON: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlaceholderError(f"{path}: write a mapping of placeholder names to lists of values")
    found: dict[str, list[str]] = {}
    for name, values in data.items():
        try:
            found[check_name(str(name))] = check_values(values if isinstance(values, list) else [values])
        except PlaceholderError as exc:
            raise PlaceholderError(f"{path}: {name}: {exc}") from None
    return found


def missing_message(names: Sequence[str]) -> str:
    """Why a rule using placeholders without values is refused, and how to give them values."""
    shown = ", ".join(f"%{name}%" for name in names)
    first = names[0] if names else "NAME"
    return (f"placeholder {shown} has no values, so the rule is refused (as the Sigma specification asks): "
            f"define them with `vigil rules placeholders set {first} VALUE...` and import the pack again, "
            f"or for a hunt on files give `--placeholder {first}=VALUE1,VALUE2`")
