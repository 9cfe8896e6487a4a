"""Importing rule packs: a folder (a git checkout too), a release zip or one rule file becomes a ``RulePack``
and its ``DetectionRule`` rows, with a diff of what changed since the last import.

A pack is replaced as a whole: rules of the new version are added or updated (their YAML changed), rules
that are gone are removed. The SOC's own settings of a rule (enabled, level override, notes, hit counts)
survive updates. A rule whose file no longer loads keeps its previous version, and the reason is
reported. Zips are unpacked here, never trusted: a member with a path trick (absolute, ``..``, a link)
refuses the archive, and so does an archive that unpacks past ``MAX_UNPACKED_BYTES`` (a zip bomb).
Vigil's starter pack also brings each rule's test cases (``STARTER_TESTS_DIR``), stored on the rules at
every install; imported packs bring none. Rules are compiled with the Sigma placeholders' values
(``placeholders_service``); a rule using a placeholder without values is refused like a broken one, and
loads when its pack is imported again once the placeholder is set.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil import __version__
from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.core.errors import BadInput
from vigil.detection.correlation import load_correlations
from vigil.detection.correlation_store import CORRELATION_KIND
from vigil.detection.live_correlation import as_rule
from vigil.detection.models import DetectionRule, RulePack
from vigil.detection.placeholders_service import values_of
from vigil.detection.rule_tests import set_pack_cases, starter_cases
from vigil.detection.rules_service import pack_read, remember_compiled
from vigil.detection.schemas_rules import EnablePolicy, ImportResult, RuleChange
from vigil.detection.sigma import LoadResult, Rule, RuleError, load_rules
from vigil.detection.sigma.placeholders import Placeholders

STARTER_DIR = Path(__file__).resolve().parent / "rules" / "starter"
# The starter rules' test cases, one file per rule at the same place as the rule: <area>/<rule file>.
STARTER_TESTS_DIR = Path(__file__).resolve().parent / "rules" / "starter_tests"
STARTER_PACK = "vigil-starter"
PACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$")
RULE_SUFFIXES = (".yml", ".yaml")
MAX_MEMBERS = 50_000  # SigmaHQ's full release holds about 3,600 rules
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_RATIO = 200  # YAML compresses about tenfold; a member far beyond that is a bomb
NEVER_ENABLED = frozenset({"deprecated", "unsupported"})
STABLE_TEST = frozenset({"stable", "test"})
_HAS_ID = re.compile(r"(?m)^id:\s*\S")
_UID_NAMESPACE = uuid.UUID("8c1f3c52-5d0e-4bb4-9a35-2a0a4c1b7e61")
_COPY_CHUNK = 1024 * 1024


@dataclass
class LoadedPack:
    """A pack's content as read from disk: its rules (paths relative to the pack), errors, version."""

    rules: list[Rule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    version: str = ""
    # Correlation rules, stored beside the others (kind "correlation") as the rule the alert names.
    correlations: list[Rule] = field(default_factory=list)
    # The placeholders' values the rules were compiled with (``placeholders_service``).
    placeholders: dict[str, list[str]] = field(default_factory=dict)


def check_pack_name(name: str) -> str:
    if not PACK_NAME.fullmatch(name):
        raise BadInput(f"the pack name {name!r} is not allowed: use 1 to 200 letters, digits and . _ : @ + -, "
                       "starting with a letter or digit")
    return name


def default_pack_name(path: Path) -> str:
    """A pack's name from where it came from: the folder's or file's name, cleaned up."""
    base = path.stem if path.suffix.lower() in (*RULE_SUFFIXES, ".zip") else path.resolve().name
    cleaned = re.sub(r"[^A-Za-z0-9_.:@+-]+", "-", base).strip("-._") or "local"
    return check_pack_name(cleaned[:200] if cleaned[0].isalnum() else f"pack-{cleaned}"[:200])


def enabled_on_import(status: str | None, policy: EnablePolicy) -> bool:
    """Whether a newly imported rule starts enabled (see ``EnablePolicy``)."""
    if status in NEVER_ENABLED:
        return False
    if policy is EnablePolicy.all:
        return True
    if policy is EnablePolicy.stable_test:
        return status is None or status in STABLE_TEST
    return False


# --- reading a pack --------------------------------------------------------------------------------------


def unpack_zip(archive: Path, target: Path) -> int:
    """The archive's rule files written under ``target``; how many. ``BadInput`` for a hostile archive."""
    try:
        handle = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{archive.name} is not a readable zip archive: {exc}") from None
    with handle:
        members = handle.infolist()
        if len(members) > MAX_MEMBERS:
            raise BadInput(f"{archive.name} holds {len(members):,} entries; at most {MAX_MEMBERS:,} are accepted")
        wanted: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in members:
            name = PurePosixPath(info.filename)
            outside = name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", info.filename)
            if outside or "\\" in info.filename:
                raise BadInput(f"{archive.name} is refused: the entry {info.filename!r} points outside the archive")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise BadInput(f"{archive.name} is refused: the entry {info.filename!r} is a symbolic link")
            if info.is_dir() or not info.filename.lower().endswith(RULE_SUFFIXES):
                continue
            if any(part.startswith(".") for part in name.parts):
                continue  # .github workflows and the like
            wanted.append((info, name))
        declared = sum(info.file_size for info, _ in wanted)
        if declared > MAX_UNPACKED_BYTES:
            raise BadInput(f"{archive.name} would unpack to {declared:,} bytes of rules; at most "
                           f"{MAX_UNPACKED_BYTES:,} are accepted")
        written = 0
        for info, name in wanted:
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise BadInput(f"{archive.name} is refused: {info.filename!r} expands {info.file_size:,} times "
                               "its packed size (a zip bomb?)")
            destination = target.joinpath(*name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            # Sizes in the header can lie: count what is actually unpacked.
            with handle.open(info) as source, destination.open("wb") as sink:
                while chunk := source.read(_COPY_CHUNK):
                    written += len(chunk)
                    if written > MAX_UNPACKED_BYTES:
                        raise BadInput(f"{archive.name} unpacks past {MAX_UNPACKED_BYTES:,} bytes of rules (a zip "
                                       "bomb?)")
                    sink.write(chunk)
        return len(wanted)


def _git_commit(folder: Path) -> str | None:
    """The commit checked out when ``folder`` is (in) a git work tree; None otherwise or without git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # A fixed argument list: the folder is an argument of -C, never a shell word.
        done = subprocess.run([git, "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,  # noqa: S603
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def _content_digest(loaded: LoadedPack) -> str:
    digest = hashlib.sha256()
    for path, text in sorted({(rule.path, rule.yaml) for rule in loaded.rules}):
        digest.update(f"{path}\0{text}\0".encode())
    for error in sorted(str(error) for error in loaded.errors):
        digest.update(f"{error}\0".encode())
    return "sha256:" + digest.hexdigest()[:16]


def _relative(path: str, root: Path, prefix: str) -> str:
    text = str(root)
    inner = path[len(text):].lstrip("/\\") if path.startswith(text) else path
    return f"{prefix}{inner}" if prefix else inner


def _stable(rule: Rule, path: str) -> Rule:
    """The rule with its path inside the pack; a rule without an id gets one from that path and its title
    (the engine would derive it from where the files happened to be)."""
    uid = rule.id if _HAS_ID.search(rule.yaml) else str(uuid.uuid5(_UID_NAMESPACE, f"{path}\0{rule.title}"))
    return replace(rule, id=uid, path=path)


def read_pack(path: Path, *, pack: str, display: str | None = None,
              placeholders: Placeholders | None = None) -> LoadedPack:
    """Load the rules of a folder, a zip or a rule file; paths in rules and errors relative to the pack.
    ``display``: the name shown for an archive (an upload's original file name). ``placeholders``: the
    values of Sigma placeholders (a rule using one without values is refused: an error of the pack)."""
    if not path.exists():
        raise BadInput(f"no such file or folder: {path}")
    values = {name: list(items) for name, items in (placeholders or {}).items()}
    loaded = LoadedPack(placeholders=values)
    if path.is_file() and path.suffix.lower() == ".zip":
        label = display or path.name
        with tempfile.TemporaryDirectory(prefix="vigil-pack-") as folder:
            root = Path(folder)
            unpack_zip(path, root)
            result = load_rules([root], pack=pack, placeholders=values)
            _collect(loaded, result.rules, result.errors, root, f"{label}!")
            _collect_correlations(loaded, result, root, f"{label}!", pack)
        return _finish(loaded, version=f"{label} {_file_digest(path)}")
    if path.is_dir():
        result = load_rules([path], pack=pack, placeholders=values)
        _collect(loaded, result.rules, result.errors, path, "")
        _collect_correlations(loaded, result, path, "", pack)
        commit = _git_commit(path)
        return _finish(loaded, version=commit or "")
    if path.suffix.lower() not in RULE_SUFFIXES:
        raise BadInput(f"{path.name}: import a folder of rules, a .zip archive or a .yml/.yaml rule file")
    result = load_rules([path], pack=pack, placeholders=values)
    _collect(loaded, result.rules, result.errors, path.parent, "")
    _collect_correlations(loaded, result, path.parent, "", pack)
    if display:
        loaded.rules = [_stable(rule, display) for rule in loaded.rules]
        loaded.errors = [RuleError(e.reason, path=display, line=e.line, rule_id=e.rule_id) for e in loaded.errors]
    return _finish(loaded, version="")


def _collect(loaded: LoadedPack, rules: Iterable[Rule], errors: Iterable[RuleError], root: Path,
             prefix: str) -> None:
    loaded.rules.extend(_stable(rule, _relative(rule.path, root, prefix)) for rule in rules)
    loaded.errors.extend(RuleError(e.reason, path=_relative(e.path, root, prefix), line=e.line, rule_id=e.rule_id)
                         for e in errors)


def _collect_correlations(loaded: LoadedPack, result: LoadResult, root: Path, prefix: str, pack: str) -> None:
    """The pack's correlation rules, resolved against its own rules (a broken one is an error like any)."""
    if not result.correlation_sources:
        return
    correlations, errors = load_correlations(result.correlation_sources, result.rules, pack=pack)
    loaded.correlations.extend(replace(as_rule(c), path=_relative(c.path, root, prefix)) for c in correlations)
    loaded.errors.extend(RuleError(e.reason, path=_relative(e.path, root, prefix), line=e.line, rule_id=e.rule_id)
                         for e in errors)


def _finish(loaded: LoadedPack, *, version: str) -> LoadedPack:
    loaded.version = version or _content_digest(loaded)
    return loaded


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


# --- storing a pack --------------------------------------------------------------------------------------


def yaml_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _change(rule: Rule | DetectionRule) -> RuleChange:
    if isinstance(rule, DetectionRule):
        return RuleChange(rule_uid=rule.rule_uid, title=rule.title, path=rule.path, status=rule.status, id=rule.id)
    return RuleChange(rule_uid=rule.id, title=rule.title, path=rule.path, status=rule.status)


def _set_metadata(row: DetectionRule, rule: Rule, digest: str) -> None:
    row.title = rule.title[:500]
    row.level = rule.level
    row.status = rule.status
    row.product, row.category, row.service = rule.product, rule.category, rule.service
    row.tags = list(rule.tags)
    row.author = rule.author
    row.references = list(rule.references)
    row.description = rule.description
    row.falsepositives = list(rule.falsepositives)
    row.path = rule.path
    row.yaml = rule.yaml
    row.digest = digest


def store_pack(ctx: Context, loaded: LoadedPack, *, name: str, source: str,
               enable: EnablePolicy = EnablePolicy.stable_test, merge: bool = False) -> ImportResult:
    """Upsert the pack and its rules from ``loaded``; the diff of what changed. Never commits.
    ``merge``: add and update only, removing nothing (one rule added to a pack)."""
    check_pack_name(name)
    session = ctx.session
    pack = session.scalar(select(RulePack).where(RulePack.name == name))
    created = pack is None
    existing: dict[str, DetectionRule] = {}
    if pack is None:
        pack = RulePack(name=name)
        session.add(pack)
        session.flush()
    else:
        existing = {row.rule_uid: row for row in session.scalars(
            select(DetectionRule).where(DetectionRule.pack_id == pack.id))}
    correlation_ids = {rule.id for rule in loaded.correlations}
    if not loaded.rules and existing:
        raise BadInput(f"no rule could be loaded from {source}; the pack {name} keeps its {len(existing)} rules"
                       + (f" (first problem: {loaded.errors[0]})" if loaded.errors else ""))
    errors = [str(error) for error in loaded.errors]
    broken_paths = {error.path for error in loaded.errors}
    added: list[RuleChange] = []
    updated: list[RuleChange] = []
    left_disabled: list[RuleChange] = []
    unchanged = 0
    seen: dict[str, Rule] = {}
    new_rows: dict[str, DetectionRule] = {}
    now = utcnow()
    for rule in [*loaded.rules, *loaded.correlations]:
        if rule.id in seen:
            errors.append(f"{rule.path}: the rule id {rule.id} is also used by {seen[rule.id].path}; this copy is "
                          "left out")
            continue
        seen[rule.id] = rule
        digest = yaml_digest(rule.yaml)
        row = existing.get(rule.id)
        if row is None:
            row = DetectionRule(pack_id=pack.id, rule_uid=rule.id, enabled=enabled_on_import(rule.status, enable),
                                kind=CORRELATION_KIND if rule.id in correlation_ids else "sigma",
                                created_at=now, updated_at=now, updated_by=ctx.actor.name)
            _set_metadata(row, rule, digest)
            session.add(row)
            new_rows[rule.id] = row
            added.append(_change(rule))
            if not row.enabled:
                left_disabled.append(_change(rule))
        elif row.digest != digest:
            _set_metadata(row, rule, digest)
            row.updated_at, row.updated_by = now, ctx.actor.name
            updated.append(_change(row))
        else:
            row.path = rule.path  # a file moved inside the pack without changing
            unchanged += 1
        if rule.id not in correlation_ids:
            remember_compiled(digest, rule.id, rule, loaded.placeholders)
    removed: list[RuleChange] = []
    kept = 0
    for uid, row in existing.items():
        if uid in seen:
            continue
        if merge or row.path in broken_paths:  # its new version does not load: keep the old one running
            kept += 1
            continue
        removed.append(_change(row))
        session.delete(row)
    pack.source = source if not merge or created else pack.source
    pack.version = (loaded.version if not merge else _rows_digest(existing, seen))[:200]
    pack.rule_count = len(seen) + kept
    pack.errors = errors
    pack.imported_at = now
    pack.imported_by = ctx.actor.name
    session.flush()
    for change in (*added, *left_disabled):
        change.id = new_rows[change.rule_uid].id
    ctx.audit("detection.rule_pack.import", target_type="rule_pack", target_id=pack.id, details={
        "name": name, "source": source, "version": pack.version, "created": created, "enable": str(enable),
        "added": len(added), "updated": len(updated), "removed": len(removed), "unchanged": unchanged + kept,
        "errors": len(errors)})
    return ImportResult(pack=pack_read(pack), created=created, added=added, updated=updated, removed=removed,
                        unchanged=unchanged + kept, errors=errors, enable=enable, left_disabled=left_disabled)


def _rows_digest(existing: dict[str, DetectionRule], seen: dict[str, Rule]) -> str:
    """A merged pack's version: a digest of every rule it now holds."""
    digests = {uid: row.digest for uid, row in existing.items()}
    digests.update({uid: yaml_digest(rule.yaml) for uid, rule in seen.items()})
    return "sha256:" + hashlib.sha256("".join(f"{uid}\0{d}\n" for uid, d in sorted(digests.items()))
                                      .encode()).hexdigest()[:16]


def import_into(ctx: Context, *, path: Path, name: str | None = None,
                enable: EnablePolicy = EnablePolicy.stable_test, display: str | None = None,
                merge: bool = False) -> ImportResult:
    """Read the pack at ``path`` and store it in the caller's transaction."""
    pack_name = check_pack_name(name) if name else default_pack_name(Path(display) if display else path)
    loaded = read_pack(path, pack=pack_name, display=display, placeholders=values_of(ctx.session))
    return store_pack(ctx, loaded, name=pack_name, source=display or str(path), enable=enable, merge=merge)


def import_pack(db: Database, *, path: str | Path, name: str | None = None, actor: audit.Actor,
                enable: EnablePolicy = EnablePolicy.stable_test) -> ImportResult:
    """Import the pack at ``path`` (folder, git checkout, zip or rule file) in a transaction of its own."""
    with db.transaction(Scope.system()) as session:
        return import_into(Context(session=session, actor=actor), path=Path(path), name=name, enable=enable)


def install_starter_pack(db: Database, *, actor: audit.Actor | None = None) -> ImportResult:
    """Vigil's starter pack as ``vigil-starter``, every rule enabled; a second call changes nothing."""
    with db.transaction(Scope.system()) as session:
        if actor is None:
            actor = audit.Actor(None, "system", accounts.root_unit_id(session))
        loaded = read_pack(STARTER_DIR, pack=STARTER_PACK, placeholders=values_of(session))
        loaded.version = f"vigil {__version__} {_content_digest(loaded)}"
        ctx = Context(session=session, actor=actor)
        pack = session.scalar(select(RulePack).where(RulePack.name == STARTER_PACK))
        if pack is not None and pack.version == loaded.version:
            result = ImportResult(pack=pack_read(pack), created=False, added=[], updated=[], removed=[],
                                  unchanged=pack.rule_count, errors=list(pack.errors), enable=EnablePolicy.all,
                                  left_disabled=[])
        else:
            result = store_pack(ctx, loaded, name=STARTER_PACK, source="vigil:starter", enable=EnablePolicy.all)
        install_starter_tests(session, result.pack.id)
        return result


def install_starter_tests(session: Session, pack_id: int) -> int:
    """Each starter rule's test cases from ``STARTER_TESTS_DIR`` (the SOC's own cases kept); how many rules'
    cases changed. Run at every install, so a database whose rules predate the cases gets them too."""
    changed = 0
    for row in session.scalars(select(DetectionRule).where(DetectionRule.pack_id == pack_id)):
        path = STARTER_TESTS_DIR / PurePosixPath(row.path.replace("\\", "/"))
        cases = starter_cases(path) if row.path and path.is_file() else []
        changed += set_pack_cases(row, cases)
    if changed:
        session.flush()
    return changed


def upload_name(filename: str) -> str:
    """An uploaded file's name without any folder part, checked to be a rule file or a zip."""
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    if not name or not name.lower().endswith((*RULE_SUFFIXES, ".zip")) or any(ord(char) < 32 for char in name):
        raise BadInput("upload a .zip archive of Sigma rules or one .yml/.yaml rule file")
    return name[-200:]


def import_upload(ctx: Context, *, filename: str, content: bytes, name: str | None = None,
                  enable: EnablePolicy = EnablePolicy.stable_test) -> ImportResult:
    """An uploaded zip or rule file as a pack (named after the file unless ``name`` is given); the upload
    replaces that pack's rules."""
    display = upload_name(filename)
    if not content:
        raise BadInput(f"{display} is empty")
    with tempfile.TemporaryDirectory(prefix="vigil-upload-") as folder:
        path = Path(folder) / ("upload.zip" if display.lower().endswith(".zip") else "upload.yml")
        path.write_bytes(content)
        return import_into(ctx, path=path, name=name, enable=enable, display=display)


def add_rule_text(ctx: Context, *, text: str, pack: str = "local",
                  enable: EnablePolicy = EnablePolicy.stable_test) -> ImportResult:
    """One rule's YAML added to (or updated in) ``pack``; the pack's other rules stay."""
    if not text.strip():
        raise BadInput("the rule's YAML is empty")
    check_pack_name(pack)
    with tempfile.TemporaryDirectory(prefix="vigil-rule-") as folder:
        path = Path(folder) / "rule.yml"
        path.write_text(text, encoding="utf-8")
        loaded = read_pack(path, pack=pack, placeholders=values_of(ctx.session))
    if not loaded.rules:
        raise BadInput("the rule was not imported: " + ("; ".join(str(e) for e in loaded.errors) or "no rule found"))
    slug = re.sub(r"[^a-z0-9]+", "_", loaded.rules[0].title.lower()).strip("_")[:80] or "rule"
    loaded.rules = [replace(rule, path=f"{slug}.yml") for rule in loaded.rules]
    return store_pack(ctx, loaded, name=pack, source="pasted rules", enable=enable, merge=True)
