"""The SIEM's HTTP API: event search, ingestion (NDJSON and the Elasticsearch-compatible ``_bulk``), sources."""

from fastapi import APIRouter

from vigil.siem.api import elastic, ingest, search, sources

routers: list[APIRouter] = [search.router, ingest.router, sources.router, elastic.router]
