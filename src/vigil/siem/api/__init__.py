"""The SIEM's HTTP API: event search, ingestion (NDJSON and the Elasticsearch-compatible ``_bulk``), sources."""

from fastapi import APIRouter

from vigil.siem.api import elastic, ingest, saved, search, sources

routers: list[APIRouter] = [search.router, saved.router, ingest.router, sources.router, elastic.router]
