"""Evidence files of an incident: streamed in, hashed while streaming, kept under a generated name, and followed
by a chain of custody (upload, every download, every hand-over, every verification).

The client's file name is never a path: it is reduced to a display name (``safe_name``) and offered back only in
``Content-Disposition``. A file grows in ``<evidence_dir>/incoming/`` while it arrives; over the size limit it is
deleted and the upload refused (413), so nothing is kept. Only a complete file is moved into place, and if the
transaction that records it rolls back, the moved file is deleted again.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from vigil.core.context import Context
from vigil.core.errors import BadInput, NotFound, PayloadTooLarge
from vigil.core.i18n import N_
from vigil.incidents.common import can_read_incidents, get_incident, get_open_incident, note, users_by_name
from vigil.incidents.evidence_models import CustodyEntry, Evidence
from vigil.incidents.models import Incident

CHUNK_BYTES = 64 * 1024
MAX_NAME = 200
FORBIDDEN_IN_NAME = frozenset('/\\:*?"<>|')
PENDING_KEY = "vigil_evidence_pending"


def safe_name(raw: str) -> str:
    """A display name from the client's file name: its last path part, without control characters, NUL,
    quotes or separators, never a dot-only name; at most 200 characters. Never used to build a path."""
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(ch for ch in unicodedata.normalize("NFC", last)
                   if ch not in FORBIDDEN_IN_NAME and unicodedata.category(ch)[0] != "C")
    kept = kept.strip(" .")
    return kept[:MAX_NAME] or "evidence.bin"


class Incoming:
    """A file arriving in chunks: written to a part file, counted and hashed as it comes; over ``limit`` bytes
    the part file is deleted and ``PayloadTooLarge`` raised."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()
        incoming = folder / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        self.path = incoming / f"{secrets.token_hex(16)}.part"
        self._file = self.path.open("xb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise PayloadTooLarge(f"the evidence file is larger than the limit of {self.limit} bytes; nothing "
                                  "was kept", limit=self.limit)
        self.hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> Received:
        self._file.close()
        if self.size == 0:
            self.discard()
            raise BadInput("the evidence file is empty", errors=[{"field": "file", "message": "empty file"}])
        return Received(path=self.path, size=self.size, sha256=self.hash.hexdigest())

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Received:
    path: Path  # the complete part file, still in incoming/
    size: int
    sha256: str


def receive_file(stream: Any, *, folder: Path, limit: int) -> Received:
    """Copy a readable binary stream (an uploaded form file) chunk by chunk into a part file."""
    incoming = Incoming(folder, limit)
    try:
        while chunk := stream.read(CHUNK_BYTES):
            incoming.write(chunk)
    except BaseException:
        incoming.discard()
        raise
    return incoming.finish()


def _forget_on_rollback(session: Session, path: Path) -> None:
    """Delete ``path`` if the transaction (or savepoint) it was stored in rolls back; keep it once the whole
    transaction commits."""
    pending: list[tuple[Path, SessionTransaction]] | None = session.info.get(PENDING_KEY)
    if pending is None:
        pending = session.info[PENDING_KEY] = []

        @event.listens_for(session, "after_commit")
        def committed(_session: Session) -> None:
            pending.clear()

        @event.listens_for(session, "after_soft_rollback")
        def rolled_back(_session: Session, previous: SessionTransaction) -> None:
            for entry in list(pending):
                stored, owner = entry
                if _within(owner, previous):
                    stored.unlink(missing_ok=True)
                    pending.remove(entry)
    owner = session.get_nested_transaction() or session.get_transaction()
    assert owner is not None  # add_evidence runs inside the caller's transaction
    pending.append((path, owner))


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _custody(ctx: Context, evidence: Evidence, action: str, **fields: Any) -> CustodyEntry:
    entry = CustodyEntry(evidence_id=evidence.id, action=action, actor=ctx.actor.name, actor_id=ctx.actor.user_id,
                         source_ip=ctx.actor.source_ip, **fields)
    ctx.session.add(entry)
    ctx.session.flush()
    return entry


def add_evidence(ctx: Context, *, incident_id: int, received: Received, folder: Path, name: str,
                 content_type: str = "", description: str = "") -> Evidence:
    """Keep a received file as evidence of the incident (under a generated name) with its first custody step."""
    incident = get_open_incident(ctx.session, incident_id)
    if len(description) > 5000:
        raise BadInput("the description is too long", errors=[{"field": "description", "message": "too long"}])
    stored_name = f"{secrets.token_hex(16)}.bin"
    target = folder / stored_name
    received.path.replace(target)
    _forget_on_rollback(ctx.session, target)
    display = safe_name(name)
    evidence = Evidence(incident_id=incident.id, stored_name=stored_name, original_name=display,
                        content_type=(content_type or "application/octet-stream")[:100], size=received.size,
                        sha256=received.sha256, description=description, holder=ctx.actor.name,
                        uploaded_by=ctx.actor.name)
    ctx.session.add(evidence)
    ctx.session.flush()
    _custody(ctx, evidence, "upload", sha256=received.sha256, to_holder=ctx.actor.name)
    note(ctx, incident, "evidence", N_("Evidence %(name)s added (SHA-256 %(sha256)s)"),
         params={"name": display, "sha256": received.sha256}, evidence_id=evidence.id, sha256=received.sha256,
         size=received.size)
    ctx.audit("incident.evidence.add", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "evidence_id": evidence.id, "name": display, "size": received.size,
                       "sha256": received.sha256})
    return evidence


def evidence_of(session: Session, incident_id: int) -> Sequence[Evidence]:
    incident = get_incident(session, incident_id)
    return session.scalars(select(Evidence).where(Evidence.incident_id == incident.id).order_by(Evidence.id)).all()


def get_evidence(session: Session, incident_id: int, evidence_id: int) -> tuple[Incident, Evidence]:
    """The incident (scoped: another unit's is not found) and its evidence file."""
    incident = get_incident(session, incident_id)
    found = session.scalar(select(Evidence).where(Evidence.id == evidence_id, Evidence.incident_id == incident.id))
    if found is None:
        raise NotFound(f"evidence {evidence_id} of incident {incident_id} does not exist or is outside your "
                       "organisation units")
    return incident, found


def custody_of(session: Session, evidence_ids: Sequence[int]) -> dict[int, list[CustodyEntry]]:
    found: dict[int, list[CustodyEntry]] = {i: [] for i in evidence_ids}
    for entry in session.scalars(select(CustodyEntry).where(CustodyEntry.evidence_id.in_(evidence_ids))
                                 .order_by(CustodyEntry.id)):
        found[entry.evidence_id].append(entry)
    return found


def stored_path(folder: Path, evidence: Evidence) -> Path:
    return folder / evidence.stored_name


def record_download(ctx: Context, *, incident_id: int, evidence_id: int, folder: Path) -> tuple[Evidence, Path]:
    """The file to send, after recording the download in the chain of custody."""
    incident, evidence = get_evidence(ctx.session, incident_id, evidence_id)
    path = stored_path(folder, evidence)
    if not path.is_file():
        raise NotFound(f"the file of evidence {evidence_id} is missing from the evidence store")
    _custody(ctx, evidence, "download")
    ctx.audit("incident.evidence.download", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "evidence_id": evidence.id})
    return evidence, path


def hand_over(ctx: Context, *, incident_id: int, evidence_id: int, to_username: str, note_text: str = ""
              ) -> Evidence:
    """Pass the evidence to another custodian, who must be able to read the incident."""
    taker = _user_named(ctx.session, to_username)
    incident, evidence = get_evidence(ctx.session, incident_id, evidence_id)
    if taker is None or not can_read_incidents(ctx.session, taker, incident.unit_id):
        raise BadInput(f"{to_username!r} is no user who may read this incident",
                       errors=[{"field": "to", "message": "unknown user or no access"}])
    if len(note_text) > 5000:
        raise BadInput("the note is too long", errors=[{"field": "note", "message": "too long"}])
    previous = evidence.holder
    evidence.holder = to_username
    _custody(ctx, evidence, "handover", to_holder=to_username, note=note_text)
    note(ctx, incident, "evidence", N_("Evidence %(name)s handed over from %(holder)s to %(to)s"),
         params={"name": evidence.original_name, "holder": previous, "to": to_username}, evidence_id=evidence.id)
    ctx.audit("incident.evidence.handover", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "evidence_id": evidence.id, "from": previous, "to": to_username})
    return evidence


def _user_named(session: Session, username: str) -> int | None:
    user = users_by_name(session, [username]).get(username.lower())
    return user.id if user is not None else None


def verify(ctx: Context, *, incident_id: int, evidence_id: int, folder: Path) -> CustodyEntry:
    """Hash the stored file again and record whether it still matches: intact, mismatch or missing."""
    incident, evidence = get_evidence(ctx.session, incident_id, evidence_id)
    path = stored_path(folder, evidence)
    digest = ""
    if path.is_file():
        hashed = hashlib.sha256()
        with path.open("rb") as stored:
            while chunk := stored.read(CHUNK_BYTES):
                hashed.update(chunk)
        digest = hashed.hexdigest()
        outcome = "intact" if digest == evidence.sha256 else "mismatch"
    else:
        outcome = "missing"
    entry = _custody(ctx, evidence, "verify", sha256=digest, outcome=outcome)
    verified = {"intact": N_("Evidence %(name)s verified: intact"),
                "mismatch": N_("Evidence %(name)s verified: mismatch"),
                "missing": N_("Evidence %(name)s verified: missing")}
    note(ctx, incident, "evidence", verified[outcome],
         params={"name": evidence.original_name}, evidence_id=evidence.id, outcome=outcome)
    ctx.audit("incident.evidence.verify", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "evidence_id": evidence.id, "outcome": outcome})
    return entry
