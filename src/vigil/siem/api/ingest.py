"""`POST /api/v1/ingest`: events as NDJSON lines or one JSON array, answered once they are on disk.

A shipper's API token (role ``shipper``: the ``events:ingest`` permission) sends a batch; the reply
(202) comes only after the whole batch is fsync'd in the spool, so an acknowledged batch survives a
crash. A line that is not a JSON object never costs the rest of the batch: it is accepted and stored
as a parse-failure event (``event.kind:pipeline_error``); the reply counts such lines. When the spool's
disk quota is used up the reply is 503 with ``Retry-After`` and nothing of the batch is taken.

Ingestion is not written to the audit trail: one record per batch would drown it. The log-sources
page and the pipeline's counters say what arrived.

The helpers here (reading a possibly gzip'd body, choosing the parser, the unit and the source name)
serve the Elasticsearch-compatible ``_bulk`` endpoint too (``vigil.siem.api.elastic``).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from vigil.core.auth import ROLE_PERMISSIONS, Permission, Principal
from vigil.core.errors import BadInput, PayloadTooLarge, VigilError
from vigil.siem.parsers.base import ParseContext, Parser, detect
from vigil.siem.parsers.json import split_records
from vigil.siem.parsers.registry import SPECIFIC_JSON, parser, parsers
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta, SpoolFull
from vigil.siem.store.base import SpoolPosition
from vigil.web.deps import SessionDep, client_ip, require, settings_of
from vigil.web.problems import problem

router = APIRouter(prefix="/api/v1", tags=["events"])

SOURCE_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_UNSAFE_SOURCE_CHARACTERS = re.compile(r"[^A-Za-z0-9._:-]+")
# A gzip'd body may unpack to this many times the request body limit (log text packs about 10:1).
DECOMPRESSED_FACTOR = 10
# Form encodings would make the CSRF check parse the body as a form; no shipper sends them.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
JSON_FORMATS = frozenset({*SPECIFIC_JSON, "json"})
# Records taken into the spool over HTTP, by way in ("http": /api/v1/ingest, "bulk": _bulk); refusals
# show in vigil_http_requests_total by status (503: spool full).
ACCEPTED = Counter("vigil_ingest_records_total", "Records accepted into the spool over HTTP", ["transport"])


class UnsupportedMediaType(VigilError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


# --- shared with the _bulk endpoint ----------------------------------------------------------------


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body unpacked (all its members, as ``gzip.decompress`` would), refused past ``limit`` bytes."""
    unpacked = bytearray()
    rest = body
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            unpacked += inflater.decompress(rest, limit + 1 - len(unpacked))
        except zlib.error as exc:
            raise BadInput(f"the body says Content-Encoding: gzip but is not gzip data ({exc})") from None
        if len(unpacked) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the gzip'd body unpacks to more than {limit:,} bytes; send smaller batches")
        if not inflater.eof:
            raise BadInput("the gzip'd body is cut short; nothing of it was taken")
        rest = inflater.unused_data
    return bytes(unpacked)


async def request_body(request: Request) -> bytes:
    """The raw body, gunzip'd when sent with ``Content-Encoding: gzip`` (Filebeat, Vector, Fluent Bit can).

    A dependency listed before the principal's, so the body is read before the records session opens:
    a slow upload never holds a database transaction open.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        raise UnsupportedMediaType(
            f"send events as application/x-ndjson or application/json, not {content_type} "
            "(with curl: --data-binary @file -H 'Content-Type: application/x-ndjson')")
    body = await request.body()
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        # In a worker thread: unpacking tens of megabytes must not hold up the event loop.
        unpacked: bytes = await run_in_threadpool(_gunzip, body,
                                                  settings_of(request).ingest_max_body_bytes * DECOMPRESSED_FACTOR)
        return unpacked
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    return body


# Every specific JSON parser's sniff needs one of these key names (winlogbeat "winlog..., windows_json
# "Event", suricata "event_type", zeek "ts"): a record with none of them is plain JSON without asking
# each sniff (one scan instead of several; a test keeps this in step with the sniffs).
MAY_BE_SPECIFIC = re.compile(rb'"(?:winlog|Event"|event_type"|ts")')


def _specific_json_parsers() -> list[Parser]:
    known = parsers()
    return [known[name] for name in SPECIFIC_JSON if name in known]


def choose_format(records: Sequence[bytes]) -> str | None:
    """The parser for a batch of JSON documents, by cheap byte sniffs (no JSON is decoded here).

    Winlogbeat, Windows-JSON, Suricata and Zeek documents go through their own parser; other objects
    are ``json``, the pipeline's fast path. A batch mixing them is left to the pipeline to detect record
    by record (None). Lines that are not objects do not count: any parser stores them as failures.
    """
    specific = _specific_json_parsers()
    names: set[str] = set()
    claimed: tuple[Parser, bytes] | None = None  # the specific parser and the first record it claimed
    for record in records:
        if record.lstrip()[:1] != b"{":
            continue
        hit = detect(specific, record) if MAY_BE_SPECIFIC.search(record) else None
        names.add(hit.name if hit is not None else "json")
        if len(names) > 1:
            return None
        if hit is not None and claimed is None:
            claimed = (hit, record)
    if claimed is None:
        return "json"
    # Sniffs look for key names anywhere: an ECS document of Filebeat's Suricata module mentions
    # "event_type" too. One record parsed proves the batch is really of that format (else: plain ECS).
    found, sample = claimed
    try:
        found.parse_one(sample, ParseContext(source="sniff"))
    except Exception:  # a ParseError, or a parser bug: either way it does not claim the batch
        return "json"
    return found.name


def batch_format(request: Request, source: str, records: Sequence[bytes],
                 requested: str | None) -> tuple[str | None, str | None]:
    """(the format to spool the batch with, the format its records will be read with).

    The request's ``?format=`` comes first, then the format an administrator set for the source on the
    log-sources page (the batch then carries none, so the pipeline reads the source's setting), then
    what the documents look like."""
    if requested:
        return requested, requested
    siem: Siem = request.app.state.siem
    configured = siem.source_configs(source).format
    if configured:
        return None, configured
    detected = choose_format(records)
    return detected, detected


def not_json_objects(records: Sequence[bytes]) -> int:
    """Records that plainly are not JSON objects (a cheap look at the first and last byte, no decoding).

    A lower bound of the parse failures the pipeline will record: a record that looks like an object
    can still be invalid JSON inside.
    """
    return sum(1 for record in records if record.strip()[:1] != b"{" or record.rstrip()[-1:] != b"}")


def ingest_unit(principal: Principal) -> int:
    """The unit the principal's events belong to: its own unit if it may ingest there, else the first
    unit it was granted ingestion on."""
    if principal.unit_id in principal.units_for(Permission.EVENTS_INGEST):
        return principal.unit_id
    granted = sorted(grant.unit_id for grant in principal.effective_grants
                     if Permission.EVENTS_INGEST in ROLE_PERMISSIONS[grant.role])
    return granted[0]


def safe_source_name(name: str) -> str:
    """A token or user name made fit for a source name (letters, digits and ``._:-``, at most 64)."""
    return _UNSAFE_SOURCE_CHARACTERS.sub("-", name).strip("-")[:64] or "unnamed"


def position_json(position: SpoolPosition) -> dict[str, int]:
    segment, offset = position
    return {"segment": segment, "offset": offset}


def submit(request: Request, records: Sequence[bytes], meta: BatchMeta) -> SpoolPosition:
    """Hand the batch to the spool (it fsyncs; call it from a worker thread); its position once on disk."""
    siem: Siem = request.app.state.siem
    position = siem.submit(records, meta)
    ACCEPTED.labels(meta.transport).inc(len(records))
    return position


def spool_full_problem(request: Request, exc: SpoolFull) -> JSONResponse:
    response = problem(exc.status, exc.code, exc.title, exc.detail, request, retry_after=exc.retry_after)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


# --- the endpoint ----------------------------------------------------------------------------------


class IngestPosition(BaseModel):
    segment: int
    offset: int


class IngestResult(BaseModel):
    accepted: int  # records taken, bad ones included (they are stored as parse-failure events)
    not_json: int  # records that plainly are not JSON objects (stored as parse-failure events); 0 for text formats
    format: str  # the parser chosen for the batch, or "detect" (record by record)
    source: str
    position: IngestPosition  # where the batch sits in the spool: on disk when this reply was sent


def end_transaction(session: SessionDep) -> None:
    """Listed after the permission guard: once the caller is known, the records transaction ends, so the
    spool write (an fsync) never holds SQLite's write lock, which every transaction takes."""
    session.commit()


Body = Annotated[bytes, Depends(request_body)]
Shipper = Annotated[Principal, Depends(require(Permission.EVENTS_INGEST))]
TransactionEnded = Annotated[None, Depends(end_transaction)]


@router.post(
    "/ingest",
    status_code=202,
    response_model=IngestResult,
    summary="Send events (NDJSON or a JSON array)",
    responses={503: {"description": "The spool is full: retry after Retry-After seconds; nothing was taken"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-ndjson": {"schema": {"type": "string", "description": "One JSON object a line"}},
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    }}},
)
def ingest(
    request: Request,
    body: Body,
    principal: Shipper,
    _ended: TransactionEnded,
    source: Annotated[str | None, Query(pattern=SOURCE_PATTERN,
                                        description="Input name; events get source http:<name>. "
                                                    "Default: the user's name.")] = None,
    format_name: Annotated[str | None, Query(alias="format", pattern=r"^[a-z0-9_]{1,40}$",
                                             description="Parser name; default: detected.")] = None,
) -> Response:
    """Accept a batch; answered with 202 only once it is safely in the spool.

    A plain function: FastAPI runs it in a worker thread, so splitting, sniffing and the spool's fsync
    never hold up the event loop."""
    if format_name is not None:
        parser(format_name)  # an unknown name is a 422 naming the known ones
    records = list(split_records(body))
    if not records:
        raise BadInput("the body holds no events: send NDJSON lines or a JSON array of objects")
    name = f"http:{source or safe_source_name(principal.username)}"
    chosen, effective = batch_format(request, name, records, format_name)
    meta = BatchMeta(source=name, unit_id=ingest_unit(principal), format=chosen, transport="http",
                     peer=client_ip(request))
    try:
        position = submit(request, records, meta)
    except SpoolFull as exc:
        return spool_full_problem(request, exc)
    # With a text format (?format=syslog, say) lines are not meant to be JSON: nothing to count.
    suspect = not_json_objects(records) if effective is None or effective in JSON_FORMATS else 0
    result: dict[str, Any] = {"accepted": len(records), "not_json": suspect,
                              "format": effective or "detect", "source": name, "position": position_json(position)}
    return JSONResponse(result, status_code=202)
