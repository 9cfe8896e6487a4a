"""A TAXII 2.1 polling client: discovery → API root → collection → the objects added since the last poll.

``poll(collection, added_after=...)`` finds the API root (the URL may be the server's discovery URL or an
API root itself), checks the collection can be read, then fetches its objects page by page as the
returned ``TaxiiPoll`` is iterated: each page asks for ``added_after`` and follows the server's
pagination (``more`` with ``next``; a server that gives no ``next`` is paged by ``added_after``, moved to
the page's ``X-TAXII-Date-Added-Last``). Once iterated, ``TaxiiPoll.added_after`` is the value to give the
next poll: the newest ``X-TAXII-Date-Added-Last`` (or ``date_added`` of the objects) the server sent, or
the one given when the server said nothing newer. ``TaxiiPoll.items()`` reads the objects exactly as a
bundle file is read (``stix.parse_objects``), relationships across pages included.

Every request sends ``Accept: application/taxii+json;version=2.1`` and the collection's credentials (HTTP
basic or a bearer token). What goes wrong raises ``TaxiiError`` with what was asked and why, or
``TaxiiAuthRefused`` when the server refuses the credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from vigil.core.errors import BadInput, VigilError
from vigil.intel.feeds.stix import parse_objects
from vigil.intel.indicators import ParsedItem

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
MAX_PAGES = 100_000  # a server that pages forever is stopped rather than followed


class TaxiiError(VigilError):
    """The TAXII server could not be reached, or did not answer as TAXII 2.1 says."""

    status = 502
    code = "taxii-error"
    title = "TAXII server error"


class TaxiiAuthRefused(TaxiiError):
    """The TAXII server refused the credentials (HTTP 401 or 403)."""

    code = "taxii-auth-refused"
    title = "TAXII server refused the credentials"


@dataclass(frozen=True)
class TaxiiCollection:
    """Where to poll: the discovery (or API root) URL, the collection's id (or title), the credentials."""

    url: str
    collection_id: str
    username: str = ""
    password: str = ""
    token: str = ""  # a bearer token, instead of a user name and password
    page_size: int | None = None  # objects per page asked for (``limit``); the server's default otherwise
    timeout: float = 30.0
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("http", "https") or not urlsplit(self.url).netloc:
            raise BadInput(f"the TAXII URL {self.url!r} is not an http(s) URL")
        if not self.collection_id.strip():
            raise BadInput("a TAXII collection needs its id")
        if self.token and (self.username or self.password):
            raise BadInput("give a TAXII server a user name and password or a token, not both")
        if self.page_size is not None and self.page_size < 1:
            raise BadInput(f"page_size must be positive, not {self.page_size}")
        if self.timeout <= 0:
            raise BadInput(f"timeout must be positive, not {self.timeout}")


class TaxiiClient:
    """One HTTP client for one collection's server; a context manager (closes its connections)."""

    def __init__(self, collection: TaxiiCollection, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = collection
        headers = {"Accept": TAXII_MEDIA_TYPE}
        if collection.token:
            headers["Authorization"] = f"Bearer {collection.token}"
        auth = (collection.username, collection.password) if collection.username else None
        self._http = httpx.Client(headers=headers, auth=auth, timeout=collection.timeout,
                                  verify=collection.verify_tls, transport=transport, follow_redirects=True)

    def __enter__(self) -> TaxiiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def api_root(self) -> str:
        """The API root's URL: the discovery resource's default (or first) root, or the URL itself."""
        url = _with_slash(self.settings.url)
        resource, _ = self.get(url)
        if "api_roots" in resource or "default" in resource:
            chosen = resource.get("default") or next(iter(resource.get("api_roots") or []), None)
            if not isinstance(chosen, str) or not chosen:
                raise TaxiiError(f"the TAXII server at {url} lists no API root")
            return _with_slash(urljoin(url, chosen))
        if isinstance(resource.get("versions"), list) or "title" in resource:
            return url  # the URL is an API root
        raise TaxiiError(f"{url} is neither a TAXII 2.1 discovery resource nor an API root")

    def collection(self, api_root: str) -> dict[str, Any]:
        """The collection resource whose id (or else title) the settings name; it must be readable."""
        url = urljoin(api_root, "collections/")
        resource, _ = self.get(url)
        collections = resource.get("collections") or []
        if not isinstance(collections, list):
            raise TaxiiError(f"the collections of {url} are not a list")
        wanted = self.settings.collection_id
        found = [c for c in collections if isinstance(c, dict) and c.get("id") == wanted] or \
                [c for c in collections if isinstance(c, dict) and c.get("title") == wanted]
        if not found:
            known = ", ".join(f"{c.get('id')} ({c.get('title')})" for c in collections if isinstance(c, dict))
            raise TaxiiError(f"no collection {wanted!r} at {url}; the server has: {known or 'none'}")
        if found[0].get("can_read") is False:
            raise TaxiiAuthRefused(f"the collection {wanted!r} at {url} cannot be read with these credentials")
        return found[0]

    def objects(self, *, added_after: str | None = None, close_when_done: bool = False) -> TaxiiPoll:
        """Discovery and the collection now (so that a wrong URL or collection fails here); the objects as
        the result is iterated."""
        api_root = self.api_root()
        collection = self.collection(api_root)
        url = urljoin(api_root, f"collections/{collection['id']}/objects/")
        return TaxiiPoll(self, url, added_after, close_when_done=close_when_done)

    def get(self, url: str, params: Mapping[str, str] | None = None) -> tuple[dict[str, Any], httpx.Headers]:
        """One TAXII resource (a JSON object) and the response's headers; ``TaxiiError`` otherwise."""
        try:
            response = self._http.get(url, params=params)
        except httpx.HTTPError as exc:
            raise TaxiiError(f"cannot reach the TAXII server at {url}: {exc or type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise TaxiiAuthRefused(f"the TAXII server refused the credentials for {url} (HTTP "
                                   f"{response.status_code}{_problem(response)})")
        if response.status_code >= 400:
            raise TaxiiError(f"the TAXII server answered HTTP {response.status_code} for {url}{_problem(response)}")
        media_type = response.headers.get("content-type", "")
        try:
            body = response.json()
        except ValueError:
            raise TaxiiError(f"the answer for {url} is not TAXII JSON ({media_type or 'no content type'}: "
                             f"{response.text[:80]!r})") from None
        if not isinstance(body, dict):
            raise TaxiiError(f"the answer for {url} is JSON but not a TAXII resource (a {type(body).__name__})")
        return body, response.headers


class TaxiiPoll:
    """The objects of one poll, fetched page by page as they are iterated (once); then ``added_after``
    is what to give the next poll and ``pages`` how many pages it took."""

    def __init__(self, client: TaxiiClient, url: str, added_after: str | None, *, close_when_done: bool) -> None:
        self.client = client
        self.url = url
        self.requested_after = added_after
        self.added_after = added_after
        self.pages = 0
        self.objects = 0
        self._close_when_done = close_when_done
        self._started = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._started:
            raise RuntimeError("a TaxiiPoll is iterated once; poll again for the next objects")
        self._started = True
        try:
            yield from self._pages()
        finally:
            if self._close_when_done:
                self.client.close()

    def items(self) -> Iterator[ParsedItem]:
        """The poll's indicators, entities and item errors, as from a bundle of all its objects."""
        return parse_objects(self)

    def _pages(self) -> Iterator[dict[str, Any]]:
        newest: tuple[datetime, str] | None = None
        after, token = self.requested_after, None
        limit = self.client.settings.page_size
        while True:
            params = {key: value for key, value in (("added_after", after), ("next", token),
                                                     ("limit", str(limit) if limit else None)) if value}
            envelope, headers = self.client.get(self.url, params)
            self.pages += 1
            objects = envelope.get("objects") or []
            if not isinstance(objects, list):
                raise TaxiiError(f"the objects of {self.url} (page {self.pages}) are not a list")
            page_last = headers.get("X-TAXII-Date-Added-Last")
            stamps = [page_last] if page_last else [o.get("date_added") for o in objects if isinstance(o, dict)]
            for stamp in stamps:
                parsed = _stamp(stamp)
                if parsed is not None and (newest is None or parsed > newest[0]):
                    newest = (parsed, str(stamp))
            for obj in objects:
                self.objects += 1
                yield obj
            if newest is not None:
                self.added_after = newest[1]
            if envelope.get("more") is not True:
                return
            if self.pages >= MAX_PAGES:
                raise TaxiiError(f"{self.url} still says there is more after {MAX_PAGES} pages")
            following = envelope.get("next")
            if isinstance(following, str) and following:
                if following == token:
                    raise TaxiiError(f"{self.url} gave the same 'next' ({following!r}) twice: it would page forever")
                token = following
            elif page_last and page_last != after:  # paged by date: ask for what was added after this page
                after, token = page_last, None
            else:
                return  # 'more' without a way to ask for it: what was read is kept, the next poll goes on


def poll(collection: TaxiiCollection, *, added_after: str | None = None,
         transport: httpx.BaseTransport | None = None) -> TaxiiPoll:
    """Poll ``collection`` for what was added after ``added_after`` (everything when None)."""
    client = TaxiiClient(collection, transport=transport)
    try:
        return client.objects(added_after=added_after, close_when_done=True)
    except BaseException:
        client.close()
        raise


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _stamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))  # at most microseconds
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _problem(response: httpx.Response) -> str:
    """The TAXII error message's title and description, when the server sent one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    words = [str(body[key]) for key in ("title", "description") if body.get(key)]
    return ": " + " - ".join(words) if words else ""

