"""Sending files to a running Vigil server (`vigil ingest --server URL`) instead of this process's store.

While `vigil serve` runs it holds the event store, so files go to it the way a shipper's records do:
``POST /api/v1/ingest`` with a shipper's API token (role ``shipper``), NDJSON (one record a line),
gzip'd, with ``?source=`` and ``?format=``. The server answers once a batch is in its spool; a full
spool (503) is waited out as its ``Retry-After`` says. The server names the source ``http:<name>``
and parses asynchronously, so this side counts records accepted, not events stored or parse failures
(the log-sources page shows those). ``log.file.path`` is not sent: the API takes records only.
"""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable

import httpx
import orjson

from vigil.core.errors import VigilError
from vigil.siem.ingest import FileResult, Segment
from vigil.siem.parsers.base import ParseFailure

INGEST_PATH = "/api/v1/ingest"
# The server's default body limit is 10 MiB; gzip'd log text is far smaller than this.
BATCH_BYTES = 4 * 1024 * 1024
MAX_WAIT_SECONDS = 600  # how long a full spool is waited out, in all, before giving up
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


class ServerRefused(VigilError):
    """The server did not take a batch (a refused token, a bad request, a spool full for too long)."""

    status = 502
    code = "server-refused"
    title = "The Vigil server refused the records"


def source_parameter(source: str) -> str:
    """A source name as the API's ``source`` parameter accepts it (``[A-Za-z0-9._:-]``, 1 to 64 characters)."""
    return (_UNSAFE.sub("-", source).strip("-") or "file")[:64]


def one_line(record: bytes) -> bytes:
    """A record as one NDJSON line: JSON spread over lines (the EVTX reader's) is re-encoded compactly."""
    if b"\n" not in record and b"\r" not in record:
        return record
    try:
        return orjson.dumps(orjson.loads(record))
    except orjson.JSONDecodeError:
        return record.replace(b"\r", b" ").replace(b"\n", b" ")


class RemoteSink:
    """A ``BatchSink`` posting each batch to a server's ingest API."""

    def __init__(self, client: httpx.Client, token: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.token = token
        self.sleep = sleep

    def send(self, source: str, format: str | None, records: list[bytes], segments: list[Segment]) -> None:
        body = gzip.compress(b"\n".join(one_line(record) for record in records) + b"\n", compresslevel=5)
        params = {"source": source_parameter(source)}
        if format:
            params["format"] = format
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/x-ndjson",
                   "Content-Encoding": "gzip"}
        waited = 0.0
        while True:
            try:
                response = self.client.post(INGEST_PATH, content=body, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise ServerRefused(f"cannot reach the server at {self.client.base_url}: {exc}") from exc
            if response.status_code != 503:
                break
            delay = min(max(float(response.headers.get("Retry-After", "5") or 5), 1.0), 60.0)
            if waited + delay > MAX_WAIT_SECONDS:
                raise ServerRefused(f"the server's spool stayed full for {waited:.0f} s; try again later")
            self.sleep(delay)
            waited += delay
        if response.status_code != 202:
            raise ServerRefused(f"the server answered {response.status_code}: {_detail(response)}")
        accepted = int(response.json().get("accepted", 0))
        if accepted != len(records):
            raise ServerRefused(f"the server accepted {accepted} of {len(records)} records")
        for segment in segments:
            segment.result.stored += segment.count

    def failure(self, failure: ParseFailure, absolute: str, result: FileResult) -> None:
        """Counted only: the API takes records, and a reader's failure has none to send."""
        result.failures += 1


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]
