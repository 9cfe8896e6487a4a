"""Loading Sigma rules from files, folders (a git checkout too) and release zips.

One broken rule becomes one ``RuleError`` naming its file, line and reason; the others load. YAML files
that are not rules at all (CI workflows, a regression case's ``info.yml``) are passed over. A compiled
cache (``load_cached``) skips YAML and pySigma entirely when the rule files have not changed: hunts
start in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import threading
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.detection.sigma.placeholders import Placeholders
from vigil.detection.sigma.placeholders import digest as placeholders_digest
from vigil.detection.sigma.rules import Rule, RuleError

if TYPE_CHECKING:
    from sigma.exceptions import SigmaError

RULE_SUFFIXES = (".yml", ".yaml")
# Bump when the compiled form changes: older caches are then ignored.
CACHE_FORMAT = 3
_RULE_KEYS = frozenset({"detection", "logsource", "correlation", "filter"})
_QUOTED = re.compile(r"'([^'\n]{1,200})'")


@dataclass
class LoadResult:
    rules: list[Rule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # YAML files that are not rules
    # Files holding correlation rules, as (path, YAML text): ``vigil.detection.correlation_rules``
    # resolves them against ``rules`` (their other documents, base rules, are loaded here).
    correlation_sources: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Source:
    path: str  # shown in errors: a file, or "archive.zip!member"
    read: Any  # () -> bytes


def rule_from_yaml(text: str, *, path: str = "<inline>", pack: str = "local",
                   placeholders: Placeholders | None = None) -> Rule:
    """One rule from its YAML text; ``RuleError`` when it cannot be loaded. ``placeholders``: the values of
    ``%name%`` placeholders (``vigil.detection.sigma.placeholders``); one the rule uses without values refuses it."""
    result = LoadResult()
    _load_text(text, path, pack, result, placeholders)
    if result.errors:
        raise result.errors[0]
    if not result.rules:
        if result.correlation_sources:
            raise RuleError("a Sigma correlation rule: load it with vigil.detection.correlation.load_correlations",
                            path=path)
        raise RuleError("not a Sigma rule: no detection, logsource or correlation", path=path)
    return result.rules[0]


def load_rules(paths: Sequence[str | Path], *, pack: str = "local",
               placeholders: Placeholders | None = None) -> LoadResult:
    """Every rule under the paths (files, folders, zips); errors per rule, never raised. ``placeholders``:
    as ``rule_from_yaml``."""
    result = LoadResult()
    for source in _sources(paths, result):
        try:
            data = source.read()
        except OSError as exc:
            result.errors.append(RuleError(f"cannot read: {exc.strerror or exc}", path=source.path))
            continue
        text = data.decode("utf-8", errors="replace")
        _load_text(text, source.path, pack, result, placeholders)
    return result


def load_cached(paths: Sequence[str | Path], *, cache_dir: Path, pack: str = "local",
                placeholders: Placeholders | None = None) -> LoadResult:
    """``load_rules``, from a compiled cache when the files are unchanged (same names, sizes, times) and
    the placeholders' values are the same."""
    cached = cache_dir / f"rules-{cache_key(paths, pack, placeholders=placeholders)}.pickle"
    if cached.is_file():
        try:
            with cached.open("rb") as handle:
                loaded = pickle.load(handle)  # noqa: S301 - our own cache file, in the user's cache folder
            if isinstance(loaded, LoadResult):
                return loaded
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            pass  # a stale or damaged cache is rebuilt
    result = load_rules(paths, pack=pack, placeholders=placeholders)
    write_atomically(cached, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result


def write_atomically(path: Path, data: bytes) -> OSError | None:
    """Write a cache or state file whole or not at all (a reader never sees half of it; the partial file's
    name is this thread's own). A file that cannot be written is only a slower start next time: the
    error is returned for the caller to mention, never raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as exc:
        return exc
    return None


def cache_key(paths: Sequence[str | Path], pack: str = "local", *, placeholders: Placeholders | None = None) -> str:
    """A digest of the rule files under the paths (names, sizes, times), of the compiled form's format and
    of the placeholders' values."""
    values = placeholders_digest(placeholders)  # "" without placeholders: the key stays as it was
    parts = [f"{CACHE_FORMAT}\0{pack}{chr(0) + values if values else ''}"]
    for path in paths:
        # Resolved once, not file by file, and names as text, not Path objects: a hunt computes this before
        # anything else (2,400 files).
        for file in _rule_file_names(str(Path(path).resolve())):
            try:
                stat = os.stat(file)  # noqa: PTH116
            except OSError:
                continue
            parts.append(f"\0{file}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:32]


def _rule_files(path: Path) -> Iterator[Path]:
    for name in _rule_file_names(str(path)):
        yield Path(name)


def _rule_file_names(path: str) -> Iterator[str]:
    """The rule files in a folder (sorted, hidden folders left out), or the path itself when it is no folder."""
    if os.path.isdir(path):  # noqa: PTH112 - names as text (see cache_key)
        for root, folders, files in os.walk(path):
            folders[:] = sorted(name for name in folders if not name.startswith("."))  # .git, .github
            for name in sorted(files):
                if name.endswith(RULE_SUFFIXES):
                    yield os.path.join(root, name)  # noqa: PTH118
    else:
        yield path


def _sources(paths: Sequence[str | Path], result: LoadResult) -> Iterator[_Source]:
    for given in paths:
        path = Path(given)
        if not path.exists():
            result.errors.append(RuleError("no such file or folder", path=str(path)))
            continue
        for file in _rule_files(path):
            if file.suffix == ".zip":
                yield from _zip_sources(file, result)
            elif file.suffix in RULE_SUFFIXES or file == path:
                yield _Source(str(file), file.read_bytes)


def _zip_sources(file: Path, result: LoadResult) -> Iterator[_Source]:
    try:
        archive = zipfile.ZipFile(file)
    except (OSError, zipfile.BadZipFile) as exc:
        result.errors.append(RuleError(f"not a readable zip archive: {exc}", path=str(file)))
        return
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or not name.endswith(RULE_SUFFIXES) or any(p.startswith(".") for p in name.split("/")):
                continue
            yield _Source(f"{file}!{name}", lambda name=name: archive.read(name))


def _load_text(text: str, path: str, pack: str, result: LoadResult,
               placeholders: Placeholders | None = None) -> None:
    # Imported here, not at the top: YAML and pySigma are needed only to compile rules, and a hunt whose
    # rules come from the compiled cache starts 0.15 s sooner without them.
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    from vigil.detection.sigma.compile import to_rule

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, nesting beyond Python's stack
        result.errors.append(RuleError(f"unreadable YAML value: {exc}"[:300], path=path))
        return
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        result.errors.append(RuleError(f"broken YAML: {problem}", path=path,
                                       line=mark.line + 1 if mark is not None else None))
        return
    if not documents:
        result.skipped.append(path)
        return
    if not all(isinstance(doc, dict) for doc in documents):
        result.errors.append(RuleError("a Sigma rule is a YAML mapping", path=path, line=1))
        return
    if not any(_RULE_KEYS & doc.keys() for doc in documents):
        result.skipped.append(path)
        return
    if any("correlation" in doc for doc in documents):
        result.correlation_sources.append((path, text))
        documents = [doc for doc in documents if "correlation" not in doc]
        if not documents:
            return
    try:
        rules = [SigmaRule.from_dict(documents[0])] if len(documents) == 1 \
            else list(SigmaCollection.from_dicts(documents).rules)
    except SigmaError as exc:
        result.errors.append(RuleError(_reason(exc), path=path, line=_error_line(text, exc)))
        return
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # pySigma on shapes it does not expect
        result.errors.append(RuleError(f"invalid rule: {type(exc).__name__}: {exc}", path=path))
        return
    for rule in rules:
        if not isinstance(rule, SigmaRule):
            continue
        try:
            result.rules.append(to_rule(rule, path=path, pack=pack, yaml_text=text, placeholders=placeholders))
        except RuleError as exc:
            result.errors.append(RuleError(exc.reason, path=path, line=_error_line(text, exc), rule_id=exc.rule_id))


def _reason(exc: SigmaError) -> str:
    """pySigma's message without the location it appends (we say where ourselves)."""
    return str(getattr(exc, "args", [str(exc)])[0] if exc.args else exc)


def _error_line(text: str, exc: BaseException) -> int | None:
    """The line an error is about: the first line holding a token the message quotes, else the detection."""
    source = getattr(exc, "source", None)
    line = getattr(source, "line", None)
    if isinstance(line, int):
        return line
    message = str(exc)
    for token in _QUOTED.findall(message):
        found = _line_of(text, token)
        if found is not None:
            return found
    if "condition" in message.lower():
        return _line_of(text, "condition:") or _line_of(text, "detection:")
    return _line_of(text, "detection:")


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None
