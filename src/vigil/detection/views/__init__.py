"""Threat detection's pages: the alert queue, rules, hunts and ATT&CK coverage."""

from fastapi import APIRouter

from vigil.detection.views import alerts, coverage, hunts, rules

routers: list[APIRouter] = [alerts.router, rules.router, hunts.router, coverage.router]
