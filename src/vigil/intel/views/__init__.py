"""Threat intelligence's pages: the overview and lookup, feeds and imports, indicators and the allow-list,
sightings and actors."""

from fastapi import APIRouter

from vigil.intel.views import feeds, indicators, overview, sightings

routers: list[APIRouter] = [overview.router, feeds.router, indicators.router, sightings.router]
