"""Elasticsearch-compatible ingestion: Filebeat, Winlogbeat, Fluent Bit and Vector ship here unchanged.

Shippers configured with their Elasticsearch output first probe the server (``GET /`` for the version,
``/_license``, ``/_xpack``, index templates, ILM policies, ingest pipelines), then send ``_bulk``
requests. Vigil answers the probes as an Elasticsearch 8.17 cluster would, and turns each ``_bulk``
request into one spool batch: answered, item by item in Elasticsearch's response shape, once the batch
is on disk. Templates, policies and pipelines a shipper installs are acknowledged and remembered for the
life of the process (so "does it exist?" gets a consistent answer); Vigil does not apply them.

Credentials as Elasticsearch clients send them, each carrying a Vigil API token with the
``events:ingest`` permission: ``Authorization: Bearer <token>``, ``ApiKey base64(<id>:<token>)`` (the id
is ignored: Filebeat's ``api_key: "vigil:<token>"``), or ``Basic`` with the token as the password.
Every response carries ``X-Elastic-Product: Elasticsearch``, without which Elastic's own clients refuse
the server; errors have Elasticsearch's ``{"error": {...}, "status": n}`` shape.

``GET /`` and ``HEAD /`` are served here only for a request that carries an ``Authorization`` header
(or is a HEAD): a browser opening ``/`` still gets the web UI's home page.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope as AsgiScope

from vigil import __version__
from vigil.accounts import service as accounts
from vigil.accounts import signin
from vigil.core import audit
from vigil.core.auth import TOKEN_PREFIX, Permission, Principal
from vigil.core.db import Scope, set_scope
from vigil.core.errors import NotAuthenticated, PermissionDenied, VigilError
from vigil.siem.api.ingest import (
    SOURCE_PATTERN,
    batch_format,
    ingest_unit,
    request_body,
    safe_source_name,
    submit,
)
from vigil.siem.spool import BatchMeta, SpoolFull
from vigil.web.deps import SessionDep, client_ip, database_of

log = logging.getLogger(__name__)

ES_VERSION = "8.17.0"
PRODUCT_HEADER = ("X-Elastic-Product", "Elasticsearch")
JSON = "application/json"
# What Elasticsearch offers a client without credentials (one WWW-Authenticate header each).
CHALLENGES = ('Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey")
ACTIONS = frozenset({"index", "create", "delete", "update"})
# An action line, recognised without decoding it: used to resynchronise after a malformed line.
_ACTION_LINE = re.compile(rb'^\s*\{\s*"(?:index|create|delete|update)"\s*:\s*\{')
_seq_no = itertools.count()
SHARDS = {"total": 1, "successful": 1, "failed": 0}  # one copy, written once: the spool


# --- responses --------------------------------------------------------------------------------------


def es_json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def es_error(status: int, kind: str, reason: str, **more: Any) -> dict[str, Any]:
    """Elasticsearch's error object: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""
    cause = {"type": kind, "reason": reason, **more}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


ERROR_KINDS = {401: "security_exception", 403: "security_exception", 404: "resource_not_found_exception",
               413: "content_too_long_exception", 503: "es_rejected_execution_exception"}


def _audit_refusal(request: Request, exc: VigilError) -> None:
    """A refused credential or permission is on the audit trail, as for every other endpoint."""
    principal: Principal | None = getattr(request.state, "principal", None)
    action = "auth.denied" if isinstance(exc, PermissionDenied) else "auth.token"
    try:
        with database_of(request).transaction(Scope.system()) as session:
            actor = audit.Actor(principal.user_id if principal else None,
                                principal.username if principal else "anonymous",
                                principal.unit_id if principal else accounts.root_unit_id(session),
                                client_ip(request))
            audit.record(session, actor=actor, action=action, outcome=audit.Outcome.DENIED,
                         target_type="endpoint", target_id=f"{request.method} {request.url.path}",
                         details={"reason": exc.detail, "code": exc.code})
    except Exception:  # the refusal itself must still reach the caller
        log.exception("could not audit a refusal")


def is_audited_refusal(exc: VigilError) -> bool:
    """A permission denied, or a credential that was sent and refused (not a request without any)."""
    sent = isinstance(exc, NotAuthenticated) and bool(exc.extra.get("credential"))
    return isinstance(exc, PermissionDenied) or sent


def error_response(request: Request, exc: VigilError) -> Response:
    if is_audited_refusal(exc):
        _audit_refusal(request, exc)
    kind = ERROR_KINDS.get(exc.status, "illegal_argument_exception" if exc.status < 500 else "exception")
    response = es_json(es_error(exc.status, kind, exc.detail), exc.status)
    if exc.status == 401:
        for challenge in CHALLENGES:
            response.headers.append("WWW-Authenticate", challenge)
    if isinstance(exc, SpoolFull):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


class ElasticRoute(APIRoute):
    """Errors in Elasticsearch's shape (a shipper logs them as they are) and the product header always."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except VigilError as exc:
                # The request's records transaction is still open here (FastAPI closes it after this
                # handler); end it first, or auditing the refusal would wait for its lock.
                session: Session | None = getattr(request.state, "session", None)
                if session is not None and is_audited_refusal(exc):
                    await run_in_threadpool(session.rollback)
                response = await run_in_threadpool(error_response, request, exc)
            except RequestValidationError as exc:
                reason = "; ".join(str(error.get("msg", "")) for error in exc.errors())
                response = es_json(es_error(400, "illegal_argument_exception", reason), 400)
            response.headers[PRODUCT_HEADER[0]] = PRODUCT_HEADER[1]
            return response

        return answer


class ElasticRootRoute(ElasticRoute):
    """``/`` answers as Elasticsearch only to a client that sends credentials (or a HEAD): a browser on
    ``/`` still reaches the web UI's home page, which is routed after this one."""

    def matches(self, scope: AsgiScope) -> tuple[Match, AsgiScope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        has_credentials = any(name == b"authorization" for name, _ in scope.get("headers", ()))
        if has_credentials or scope.get("method") == "HEAD":
            return match, child
        return Match.NONE, {}


router = APIRouter(tags=["elasticsearch-compatible"], route_class=ElasticRoute)


# --- credentials ------------------------------------------------------------------------------------


def token_from_header(header: str) -> str:
    """The Vigil token in an Authorization header as Elasticsearch clients send it (Bearer, ApiKey, Basic)."""
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not value:
        raise NotAuthenticated("missing authentication credentials for REST request: send a Vigil API token "
                               "(Bearer, ApiKey or Basic with the token as the password)")
    if scheme == "bearer" or (scheme == "apikey" and value.startswith(TOKEN_PREFIX)):
        return value  # an ApiKey may also be the token itself, unencoded
    if scheme in ("apikey", "basic"):
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated(f"the {scheme} credentials are not base64 of 'id:token'",
                                   credential=scheme) from None
        _, colon, secret = decoded.partition(":")
        if not colon or not secret:
            raise NotAuthenticated(f"the {scheme} credentials must be base64 of 'name:token'", credential=scheme)
        return secret
    raise NotAuthenticated(f"unsupported authentication scheme {scheme!r}: use Bearer, ApiKey or Basic",
                           credential=scheme)


@dataclass(frozen=True)
class Shipper:
    principal: Principal
    token_name: str


def elastic_shipper(request: Request, session: SessionDep) -> Shipper:
    """The caller, by its API token; it must hold ``events:ingest`` (role ``shipper``)."""
    header = request.headers.get("authorization", "")
    if not header:
        raise NotAuthenticated(f"missing authentication credentials for REST request [{request.url.path}]")
    resolved = signin.resolve_token(session, secret=token_from_header(header))
    if resolved is None:
        raise NotAuthenticated("the API token is invalid, expired or revoked", credential="token")
    token, user = resolved
    principal = signin.principal_for(user, tree=accounts.load_unit_tree(session), token_roles=token.roles_set())
    request.state.principal = principal
    units = principal.units_for(Permission.EVENTS_INGEST)
    if not units:
        raise PermissionDenied(f"this needs the permission {Permission.EVENTS_INGEST}: a token of a user with the "
                               "role shipper", permission=str(Permission.EVENTS_INGEST))
    set_scope(session, Scope(units))
    # The rest (a spool write with its fsync) needs no records store: end the transaction now, so that
    # SQLite's write lock, which every transaction takes, is not held while the batch is written.
    session.commit()
    return Shipper(principal, token.name)


ShipperDep = Annotated[Shipper, Depends(elastic_shipper)]
Body = Annotated[bytes, Depends(request_body)]


# --- handshake: what shippers ask before they send ------------------------------------------------


def cluster_info() -> dict[str, Any]:
    return {
        "name": "vigil",
        "cluster_name": "vigil",
        "cluster_uuid": "vigil-siem-000000000000",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "vigil",
            "build_hash": f"vigil-{__version__}",
            "build_date": "2026-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }


def root(shipper: ShipperDep) -> Response:
    """Cluster information, as shippers read it to learn the version."""
    return es_json(cluster_info())


router.add_api_route("/", root, methods=["GET"], summary="Cluster information (for shippers)",
                     route_class_override=ElasticRootRoute)
router.add_api_route("/", root, methods=["HEAD"], include_in_schema=False, route_class_override=ElasticRootRoute)


@router.get("/_license", summary="License (for shippers)")
def license_info(shipper: ShipperDep) -> Response:
    return es_json({"license": {"status": "active", "uid": "vigil", "type": "basic", "issue_date_in_millis": 0,
                                "max_nodes": 1000, "max_resource_units": None, "issued_to": "vigil",
                                "issuer": "vigil", "start_date_in_millis": -1}})


@router.get("/_xpack", summary="Features (for shippers)")
def xpack(shipper: ShipperDep) -> Response:
    feature = {"available": True, "enabled": True}
    return es_json({"build": {"hash": f"vigil-{__version__}", "date": "2026-01-01T00:00:00.000Z"},
                    "license": {"uid": "vigil", "type": "basic", "mode": "basic", "status": "active"},
                    "features": {"ilm": feature, "security": feature, "monitoring": feature}})


@router.get("/_nodes", summary="Nodes (for shippers)")
def nodes(shipper: ShipperDep) -> Response:
    return es_json({"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": "vigil",
                    "nodes": {"vigil": {"name": "vigil", "version": ES_VERSION, "roles": ["data", "ingest", "master"],
                                        "http": {"publish_address": "127.0.0.1:9200"}}}})


@router.get("/_cluster/health", summary="Cluster health (for shippers)")
def cluster_health(shipper: ShipperDep) -> Response:
    return es_json({"cluster_name": "vigil", "status": "green", "timed_out": False, "number_of_nodes": 1,
                    "number_of_data_nodes": 1, "active_primary_shards": 1, "active_shards": 1,
                    "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0})


@router.get("/_cat/{what:path}", summary="Cat APIs, minimal (for shippers)")
def cat(what: str, shipper: ShipperDep, format_name: Annotated[str, Query(alias="format")] = "") -> Response:
    if format_name == "json":
        return es_json([])
    return Response(b"", media_type="text/plain; charset=UTF-8")


# Bounds of what shippers may install (memory of a process, not storage): names, and bodies up to a size.
MAX_INSTALLED = 256
MAX_KEPT_BODY = 64 * 1024


class Installed:
    """Templates, policies and pipelines shippers installed: acknowledged, remembered per process, not applied.

    A body larger than ``MAX_KEPT_BODY`` (Filebeat's full index template) is remembered by name only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._things: dict[tuple[str, str], Any] = {}

    def put(self, kind: str, name: str, body: Any) -> bool:
        """Remember it; False when the registry is full (a new name beyond ``MAX_INSTALLED``)."""
        with self._lock:
            if (kind, name) not in self._things and len(self._things) >= MAX_INSTALLED:
                return False
            self._things[(kind, name)] = body
            return True

    def get(self, kind: str, name: str) -> Any:
        with self._lock:
            return self._things.get((kind, name))


_registry_lock = threading.Lock()


def installed_of(request: Request) -> Installed:
    """The app's registry (one per app: a test's second app starts empty, as a restarted server does)."""
    with _registry_lock:
        registry: Installed | None = getattr(request.app.state, "elastic_installed", None)
        if registry is None:
            registry = Installed()
            request.app.state.elastic_installed = registry
        return registry


NOT_FOUND = {"index_template": "index template matching [{}] not found", "template": "index_template [{}] missing",
             "ilm_policy": "Lifecycle policy not found: {}", "pipeline": "pipeline [{}] is missing"}


def _installed_or_404(request: Request, kind: str, name: str, found: Callable[[Any], Any]) -> Response:
    body = installed_of(request).get(kind, name)
    if body is None:
        return es_json(es_error(404, "resource_not_found_exception", NOT_FOUND[kind].format(name)), 404)
    return es_json(found(body))


def _remember(request: Request, raw: bytes, kind: str, name: str) -> Response:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        return es_json(es_error(400, "parse_exception", f"request body is not JSON: {exc}"), 400)
    if not installed_of(request).put(kind, name, body if len(raw) <= MAX_KEPT_BODY else {}):
        return es_json(es_error(400, "illegal_argument_exception",
                                f"Vigil remembers at most {MAX_INSTALLED} templates, policies and pipelines"), 400)
    return es_json({"acknowledged": True})


@router.get("/_index_template/{name}", summary="Index template (for shippers)")
@router.head("/_index_template/{name}", include_in_schema=False)
def get_index_template(name: str, request: Request, shipper: ShipperDep) -> Response:
    return _installed_or_404(request, "index_template", name,
                             lambda body: {"index_templates": [{"name": name, "index_template": body}]})


@router.put("/_index_template/{name}", summary="Install an index template (acknowledged, not applied)")
def put_index_template(name: str, request: Request, body: Body, shipper: ShipperDep) -> Response:
    return _remember(request, body, "index_template", name)


@router.get("/_template/{name}", summary="Legacy template (for shippers)")
@router.head("/_template/{name}", include_in_schema=False)
def get_legacy_template(name: str, request: Request, shipper: ShipperDep) -> Response:
    return _installed_or_404(request, "template", name, lambda body: {name: body})


@router.put("/_template/{name}", summary="Install a legacy template (acknowledged, not applied)")
def put_legacy_template(name: str, request: Request, body: Body, shipper: ShipperDep) -> Response:
    return _remember(request, body, "template", name)


@router.get("/_ilm/policy/{name}", summary="ILM policy (for shippers)")
@router.head("/_ilm/policy/{name}", include_in_schema=False)
def get_ilm_policy(name: str, request: Request, shipper: ShipperDep) -> Response:
    def shown(body: Any) -> dict[str, Any]:
        policy = body.get("policy", body) if isinstance(body, dict) else body
        return {name: {"version": 1, "policy": policy}}

    return _installed_or_404(request, "ilm_policy", name, shown)


@router.put("/_ilm/policy/{name}", summary="Install an ILM policy (acknowledged; Vigil's retention applies)")
def put_ilm_policy(name: str, request: Request, body: Body, shipper: ShipperDep) -> Response:
    return _remember(request, body, "ilm_policy", name)


@router.get("/_ingest/pipeline/{name}", summary="Ingest pipeline (for shippers)")
@router.head("/_ingest/pipeline/{name}", include_in_schema=False)
def get_ingest_pipeline(name: str, request: Request, shipper: ShipperDep) -> Response:
    return _installed_or_404(request, "pipeline", name, lambda body: {name: body})


@router.put("/_ingest/pipeline/{name}", summary="Install an ingest pipeline (acknowledged, not run)")
def put_ingest_pipeline(name: str, request: Request, body: Body, shipper: ShipperDep) -> Response:
    return _remember(request, body, "pipeline", name)


# --- _bulk ------------------------------------------------------------------------------------------


@dataclass
class BulkItem:
    action: str
    index: str
    doc_id: str | None
    status: int = 201
    error: dict[str, str] | None = None
    record: int = -1  # index of its document among the accepted records


@dataclass
class BulkRequest:
    items: list[BulkItem]
    records: list[bytes]


def _failed(action: str, index: str, doc_id: str | None, kind: str, reason: str) -> BulkItem:
    return BulkItem(action, index, doc_id, status=400, error={"type": kind, "reason": reason})


def _action(line: bytes, default_index: str | None) -> tuple[str, str, str | None] | None:
    """(action, index, id) of an action/metadata line; None when it is not one."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        return None
    action, meta = next(iter(value.items()))
    if action not in ACTIONS or not isinstance(meta, dict):
        return None
    doc_id = meta.get("_id")
    return action, str(meta.get("_index") or default_index or ""), None if doc_id is None else str(doc_id)


def parse_bulk(body: bytes, default_index: str | None) -> BulkRequest:
    """NDJSON action/metadata lines and their documents; documents stay the bytes that were sent.

    A line that is not a valid action fails as one item (the rest of the request is still taken); if the
    line after it is not an action either, it is taken to be that item's document and skipped too.
    """
    # splitlines: "\r\n" too (a raw CR or LF cannot appear inside a JSON line; strings escape them).
    lines = [line for line in body.splitlines() if line.strip()]
    items: list[BulkItem] = []
    records: list[bytes] = []
    # Shippers repeat the same action line (same index, no id) for every document: decoded once.
    decoded: dict[bytes, tuple[str, str, str | None] | None] = {}
    position = 0
    while position < len(lines):
        line = lines[position]
        position += 1
        action_meta = decoded[line] if line in decoded else decoded.setdefault(line, _action(line, default_index))
        if action_meta is None:
            reason = (f"Malformed action/metadata line [{position}]: expected an object with one of "
                      f"index, create, delete, update, found {line[:80].decode('utf-8', 'replace')!r}")
            items.append(_failed("index", default_index or "", None, "illegal_argument_exception", reason))
            if position < len(lines) and not _ACTION_LINE.match(lines[position]):
                position += 1  # its document
            continue
        action, index, doc_id = action_meta
        if action == "delete":
            items.append(_failed(action, index, doc_id, "illegal_argument_exception",
                                 "Vigil keeps events as received: delete is not supported"))
            continue
        document = lines[position] if position < len(lines) and not _ACTION_LINE.match(lines[position]) else None
        if document is not None:
            position += 1
        if action == "update":
            items.append(_failed(action, index, doc_id, "illegal_argument_exception",
                                 "Vigil keeps events as received: update is not supported"))
        elif not index:
            items.append(_failed(action, index, doc_id, "action_request_validation_exception",
                                 "Validation Failed: 1: index is missing;"))
        elif document is None:
            items.append(_failed(action, index, doc_id, "action_request_validation_exception",
                                 f"Validation Failed: 1: the {action} action on line {position} has no document;"))
        elif document.lstrip()[:1] != b"{" or document.rstrip()[-1:] != b"}":
            items.append(_failed(action, index, doc_id, "mapper_parsing_exception",
                                 "failed to parse: the document is not a JSON object"))
        else:
            items.append(BulkItem(action, index, doc_id, record=len(records)))
            records.append(document)
    return BulkRequest(items, records)


def _item_json(item: BulkItem, auto_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"_index": item.index, "_id": item.doc_id or auto_id, "status": item.status}
    if item.error is not None:
        body["error"] = {**item.error, "index": item.index}
    else:
        body.update({"result": "created", "_version": 1, "_shards": SHARDS, "_seq_no": next(_seq_no),
                     "_primary_term": 1})
    return {item.action: body}


def _bulk(request: Request, body: bytes, shipper: Shipper, index: str | None, source: str | None) -> Response:
    """One spool batch for the whole request (run in a worker thread: parsing and the fsync block)."""
    started = time.perf_counter()
    parsed = parse_bulk(body, index)
    if not parsed.items:
        return es_json(es_error(400, "action_request_validation_exception",
                                "Validation Failed: 1: no requests added;"), 400)
    segment = offset = 0
    if parsed.records:
        name = f"bulk:{source or safe_source_name(shipper.token_name)}"
        chosen, _ = batch_format(request, name, parsed.records, None)
        meta = BatchMeta(source=name, unit_id=ingest_unit(shipper.principal), format=chosen, transport="bulk",
                         peer=client_ip(request))
        segment, offset = submit(request, parsed.records, meta)  # SpoolFull: 503 + Retry-After
    # Ids of documents sent without one: where the document sits in the spool, unique and stable.
    items = [_item_json(item, f"{segment:x}-{offset:x}-{item.record}") for item in parsed.items]
    return es_json({"took": int((time.perf_counter() - started) * 1000),
                    "errors": any(item.error is not None for item in parsed.items), "items": items})


SourceQuery = Annotated[str | None, Query(pattern=SOURCE_PATTERN,
                                          description="Input name; events get source bulk:<name>. Default: the "
                                                      "token's name.")]


BULK_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {
    "type": "string", "description": "Action/metadata lines, each index or create followed by its document"}}}}}


@router.post("/_bulk", summary="Bulk-index events (Elasticsearch _bulk)", openapi_extra=BULK_BODY)
@router.put("/_bulk", include_in_schema=False)
def bulk(request: Request, body: Body, shipper: ShipperDep, source: SourceQuery = None) -> Response:
    return _bulk(request, body, shipper, None, source)


@router.post("/{index}/_bulk", summary="Bulk-index events into an index", openapi_extra=BULK_BODY)
@router.put("/{index}/_bulk", include_in_schema=False)
def bulk_into(index: str, request: Request, body: Body, shipper: ShipperDep,
              source: SourceQuery = None) -> Response:
    return _bulk(request, body, shipper, index, source)
