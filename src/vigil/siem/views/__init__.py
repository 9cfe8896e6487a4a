"""The SIEM's pages: event search and log sources."""

from fastapi import APIRouter

from vigil.siem.views import search, sources

routers: list[APIRouter] = [search.router, sources.router]
