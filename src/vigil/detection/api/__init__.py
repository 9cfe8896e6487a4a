"""Threat detection's HTTP API: rules and packs, alerts and suppressions, hunts, ATT&CK coverage."""

from fastapi import APIRouter

from vigil.detection.api import alerts, coverage, hunts, placeholders, rules

routers: list[APIRouter] = [rules.router, placeholders.router, alerts.router, hunts.router, coverage.router]
