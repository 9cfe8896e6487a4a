"""Organisation-unit scope: a branch administrator sees and changes only their branch; headquarters
sees everything rolled up. Proven through every endpoint that takes an id, and in the records layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session
from tests.detection.test_alerts_service import fresh_alert_id, fresh_suppression_id
from tests.detection.test_hunts_api import fresh_hunt_id
from tests.incidents.test_incidents_api import fresh_incident_id, incident_targets
from tests.incidents.test_reports import work_targets
from tests.intel.test_intel_api import fresh_sighting_id
from tests.kb.test_kb_api import kb_target_slug
from tests.response.test_actions_api import fresh_action_id, fresh_execution_id, fresh_playbook_id, fresh_run_id
from tests.response.test_notifications_api import channel_form, fresh_channel_id
from tests.response.test_oncall_api import (
    fresh_escalation_id,
    fresh_override_id,
    fresh_policy_id,
    fresh_schedule_id,
)

from vigil.accounts import service
from vigil.accounts.models import ApiToken, OrgUnit, RoleGrant, User
from vigil.core.auth import Role
from vigil.core.db import Scope, ScopeMissing
from vigil.core.errors import PermissionDenied
from vigil.core.pagination import PageParams
from vigil.detection.models import Alert, Suppression
from vigil.incidents.models import Incident
from vigil.response.actions.models import ActionConfig, ActionExecution
from vigil.response.oncall_models import Escalation, EscalationPolicy, OncallOverride, OncallSchedule
from vigil.response.playbooks.models import Playbook, PlaybookRun
from vigil.siem.models import LogSource, SavedSearch

from .support import assert_problem, new_token, user_row, web_session

# Every route with an id in its path, and how to aim it at a record of ``target`` (a world user in
# branch_b): the request a branch_a administrator sends (the security administrator for roles, the system
# administrator for everything else: see ``branch_caller``). A route missing here fails the first test.
ById = Callable[[Any, dict[str, int]], tuple[str, str, Any]]
ID_ROUTES: dict[tuple[str, str], ById] = {
    ("GET", "/api/v1/users/{user_id}"): lambda w, t: ("GET", f"/api/v1/users/{t['user']}", None),
    ("PATCH", "/api/v1/users/{user_id}"): lambda w, t: (
        "PATCH", f"/api/v1/users/{t['user']}", {"display_name": "taken over", "disabled": True}),
    ("POST", "/api/v1/users/{user_id}/grants"): lambda w, t: (
        "POST", f"/api/v1/users/{t['user']}/grants", {"role": "analyst", "unit_id": w.branch_a}),
    ("DELETE", "/api/v1/users/{user_id}/grants/{grant_id}"): lambda w, t: (
        "DELETE", f"/api/v1/users/{t['user']}/grants/{t['grant']}", None),
    ("POST", "/api/v1/users/{user_id}/password"): lambda w, t: (
        "POST", f"/api/v1/users/{t['user']}/password", {"password": "Taken-Over-Pass-12!"}),
    ("POST", "/api/v1/users/{user_id}/unlock"): lambda w, t: ("POST", f"/api/v1/users/{t['user']}/unlock", None),
    ("GET", "/api/v1/users/{user_id}/tokens"): lambda w, t: ("GET", f"/api/v1/users/{t['user']}/tokens", None),
    ("DELETE", "/api/v1/users/{user_id}/tokens/{token_id}"): lambda w, t: (
        "DELETE", f"/api/v1/users/{t['user']}/tokens/{t['token']}", None),
    ("DELETE", "/api/v1/me/tokens/{token_id}"): lambda w, t: ("DELETE", f"/api/v1/me/tokens/{t['token']}", None),
    ("GET", "/api/v1/units/{unit_id}"): lambda w, t: ("GET", f"/api/v1/units/{t['unit']}", None),
    ("GET", "/api/v1/events/{event_id}"): lambda w, t: ("GET", f"/api/v1/events/{t['event']}", None),
    ("DELETE", "/api/v1/saved-searches/{saved_id}"): lambda w, t: (
        "DELETE", f"/api/v1/saved-searches/{t['saved']}", None),
    ("GET", "/siem/events/{event_id}"): lambda w, t: ("GET", f"/siem/events/{t['event']}", None),
    ("POST", "/siem/search/saved/{saved_id}/delete"): lambda w, t: (
        "POST", f"/siem/search/saved/{t['saved']}/delete", {}),
    ("GET", "/api/v1/siem/sources/{source_id}"): lambda w, t: ("GET", f"/api/v1/siem/sources/{t['source']}", None),
    ("PATCH", "/api/v1/siem/sources/{source_id}"): lambda w, t: (
        "PATCH", f"/api/v1/siem/sources/{t['source']}", {"unit_id": w.branch_a, "retention_days": 1}),
    ("DELETE", "/api/v1/siem/sources/{source_id}"): lambda w, t: (
        "DELETE", f"/api/v1/siem/sources/{t['source']}", None),
    ("POST", "/siem/sources/{source_id}"): lambda w, t: ("POST", f"/siem/sources/{t['source']}", {
        "unit_id": str(w.branch_a), "retention_days": "1", "timezone": "", "format": "", "description": ""}),
    ("POST", "/siem/sources/{source_id}/delete"): lambda w, t: ("POST", f"/siem/sources/{t['source']}/delete", {}),
    ("PATCH", "/api/v1/units/{unit_id}"): lambda w, t: ("PATCH", f"/api/v1/units/{t['unit']}", {"name": "Mine now"}),
    # The same records through the pages.
    ("GET", "/admin/users/{user_id}"): lambda w, t: ("GET", f"/admin/users/{t['user']}", None),
    ("POST", "/admin/users/{user_id}"): lambda w, t: ("POST", f"/admin/users/{t['user']}", {
        "display_name": "taken over", "email": "", "unit_id": str(w.branch_a), "language": ""}),
    ("POST", "/admin/users/{user_id}/disable"): lambda w, t: ("POST", f"/admin/users/{t['user']}/disable", {}),
    ("POST", "/admin/users/{user_id}/enable"): lambda w, t: ("POST", f"/admin/users/{t['user']}/enable", {}),
    ("POST", "/admin/users/{user_id}/grants"): lambda w, t: (
        "POST", f"/admin/users/{t['user']}/grants", {"role": "analyst", "unit_id": str(w.branch_a)}),
    ("POST", "/admin/users/{user_id}/grants/{grant_id}/revoke"): lambda w, t: (
        "POST", f"/admin/users/{t['user']}/grants/{t['grant']}/revoke", {}),
    ("POST", "/admin/users/{user_id}/password"): lambda w, t: (
        "POST", f"/admin/users/{t['user']}/password", {"password": "Taken-Over-Pass-12!"}),
    ("POST", "/admin/users/{user_id}/unlock"): lambda w, t: ("POST", f"/admin/users/{t['user']}/unlock", {}),
    ("POST", "/admin/users/{user_id}/tokens/revoke"): lambda w, t: (
        "POST", f"/admin/users/{t['user']}/tokens/revoke", {"token_id": str(t["token"])}),
    ("POST", "/account/tokens/{token_id}/revoke"): lambda w, t: ("POST", f"/account/tokens/{t['token']}/revoke", {}),
    ("POST", "/admin/units/{unit_id}/rename"): lambda w, t: (
        "POST", f"/admin/units/{t['unit']}/rename", {"name": "Mine now"}),
    # Alerts and suppressions of branch_b, asked for by an analyst of branch_a.
    ("GET", "/api/v1/alerts/{alert_id}"): lambda w, t: ("GET", f"/api/v1/alerts/{t['alert']}", None),
    ("POST", "/api/v1/alerts/{alert_id}/transition"): lambda w, t: (
        "POST", f"/api/v1/alerts/{t['alert']}/transition", {"action": "close", "resolution": "false_positive"}),
    ("POST", "/api/v1/alerts/{alert_id}/assign"): lambda w, t: (
        "POST", f"/api/v1/alerts/{t['alert']}/assign", {"assignee_id": None}),
    ("GET", "/api/v1/alerts/{alert_id}/suppression"): lambda w, t: (
        "GET", f"/api/v1/alerts/{t['alert']}/suppression", None),
    ("GET", "/api/v1/suppressions/{suppression_id}"): lambda w, t: (
        "GET", f"/api/v1/suppressions/{t['suppression']}", None),
    ("PATCH", "/api/v1/suppressions/{suppression_id}"): lambda w, t: (
        "PATCH", f"/api/v1/suppressions/{t['suppression']}", {"enabled": False}),
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): lambda w, t: (
        "DELETE", f"/api/v1/suppressions/{t['suppression']}", None),
    ("GET", "/detection/alerts/{alert_id}"): lambda w, t: ("GET", f"/detection/alerts/{t['alert']}", None),
    ("GET", "/api/v1/hunts/{hunt_id}"): lambda w, t: ("GET", f"/api/v1/hunts/{t['hunt']}", None),
    ("GET", "/detection/hunts/{hunt_id}"): lambda w, t: ("GET", f"/detection/hunts/{t['hunt']}", None),
    ("POST", "/detection/alerts/{alert_id}/transition"): lambda w, t: (
        "POST", f"/detection/alerts/{t['alert']}/transition", {"action": "escalate"}),
    ("POST", "/detection/alerts/{alert_id}/assign"): lambda w, t: (
        "POST", f"/detection/alerts/{t['alert']}/assign", {"assignee": "me"}),
    ("POST", "/detection/alerts/{alert_id}/suppress"): lambda w, t: (
        "POST", f"/detection/alerts/{t['alert']}/suppress", {"field_0": "Computer", "value_0": "BJ01", "on_0": "on",
                                                             "reason": "mine now"}),
    ("POST", "/detection/suppressions/{suppression_id}"): lambda w, t: (
        "POST", f"/detection/suppressions/{t['suppression']}", {"enabled": "false"}),
    ("POST", "/detection/suppressions/{suppression_id}/delete"): lambda w, t: (
        "POST", f"/detection/suppressions/{t['suppression']}/delete", {}),
    # Sightings of branch_b (an indicator seen in branch_b's events), asked for by an analyst of branch_a.
    ("GET", "/api/v1/intel/sightings/{sighting_id}"): lambda w, t: (
        "GET", f"/api/v1/intel/sightings/{t['sighting']}", None),
    ("PATCH", "/api/v1/intel/sightings/{sighting_id}"): lambda w, t: (
        "PATCH", f"/api/v1/intel/sightings/{t['sighting']}", {"status": "false-positive"}),
    ("GET", "/intel/sightings/{sighting_id}"): lambda w, t: ("GET", f"/intel/sightings/{t['sighting']}", None),
    ("POST", "/intel/sightings/{sighting_id}/mark"): lambda w, t: (
        "POST", f"/intel/sightings/{t['sighting']}/mark", {"status": "false-positive"}),
    # On-call schedules, overrides, escalation policies and escalations of branch_b, asked for by an analyst of
    # branch_a (analysts keep their unit's rota).
    ("GET", "/api/v1/oncall/schedules/{schedule_id}"): lambda w, t: (
        "GET", f"/api/v1/oncall/schedules/{t['schedule']}", None),
    ("PATCH", "/api/v1/oncall/schedules/{schedule_id}"): lambda w, t: (
        "PATCH", f"/api/v1/oncall/schedules/{t['schedule']}", {"description": "taken over"}),
    ("DELETE", "/api/v1/oncall/schedules/{schedule_id}"): lambda w, t: (
        "DELETE", f"/api/v1/oncall/schedules/{t['schedule']}", None),
    ("PUT", "/api/v1/oncall/schedules/{schedule_id}/layers"): lambda w, t: (
        "PUT", f"/api/v1/oncall/schedules/{t['schedule']}/layers", []),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}/overrides"): lambda w, t: (
        "GET", f"/api/v1/oncall/schedules/{t['schedule']}/overrides", None),
    ("POST", "/api/v1/oncall/schedules/{schedule_id}/overrides"): lambda w, t: (
        "POST", f"/api/v1/oncall/schedules/{t['schedule']}/overrides", {
            "user_id": w.users["staff_b"], "starts_at": "2026-12-01T09:00:00+08:00",
            "ends_at": "2026-12-01T18:00:00+08:00"}),
    ("DELETE", "/api/v1/oncall/schedules/{schedule_id}/overrides/{override_id}"): lambda w, t: (
        "DELETE", f"/api/v1/oncall/schedules/{t['schedule']}/overrides/{t['override']}", None),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}/now"): lambda w, t: (
        "GET", f"/api/v1/oncall/schedules/{t['schedule']}/now", None),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}/shifts"): lambda w, t: (
        "GET", f"/api/v1/oncall/schedules/{t['schedule']}/shifts", None),
    ("GET", "/api/v1/escalation-policies/{policy_id}"): lambda w, t: (
        "GET", f"/api/v1/escalation-policies/{t['policy']}", None),
    ("PATCH", "/api/v1/escalation-policies/{policy_id}"): lambda w, t: (
        "PATCH", f"/api/v1/escalation-policies/{t['policy']}", {"repeat": 9}),
    ("DELETE", "/api/v1/escalation-policies/{policy_id}"): lambda w, t: (
        "DELETE", f"/api/v1/escalation-policies/{t['policy']}", None),
    ("GET", "/api/v1/escalations/{escalation_id}"): lambda w, t: (
        "GET", f"/api/v1/escalations/{t['escalation']}", None),
    ("POST", "/api/v1/escalations/{escalation_id}/acknowledge"): lambda w, t: (
        "POST", f"/api/v1/escalations/{t['escalation']}/acknowledge", None),
    ("GET", "/oncall/schedules/{schedule_id}"): lambda w, t: ("GET", f"/oncall/schedules/{t['schedule']}", None),
    ("POST", "/oncall/schedules/{schedule_id}"): lambda w, t: (
        "POST", f"/oncall/schedules/{t['schedule']}", {"name": "taken over", "time_zone": "UTC", "layer_count": "0"}),
    ("POST", "/oncall/schedules/{schedule_id}/delete"): lambda w, t: (
        "POST", f"/oncall/schedules/{t['schedule']}/delete", {}),
    ("POST", "/oncall/schedules/{schedule_id}/overrides"): lambda w, t: (
        "POST", f"/oncall/schedules/{t['schedule']}/overrides", {
            "username": "analyst_a", "starts_at": "2026-12-01T09:00", "ends_at": "2026-12-01T18:00"}),
    ("POST", "/oncall/schedules/{schedule_id}/overrides/{override_id}/delete"): lambda w, t: (
        "POST", f"/oncall/schedules/{t['schedule']}/overrides/{t['override']}/delete", {}),
    ("GET", "/oncall/policies/{policy_id}"): lambda w, t: ("GET", f"/oncall/policies/{t['policy']}", None),
    ("POST", "/oncall/policies/{policy_id}"): lambda w, t: (
        "POST", f"/oncall/policies/{t['policy']}", {"name": "taken over", "repeat": "9", "level_count": "0"}),
    ("POST", "/oncall/policies/{policy_id}/delete"): lambda w, t: (
        "POST", f"/oncall/policies/{t['policy']}/delete", {}),
    ("GET", "/oncall/escalations/{escalation_id}"): lambda w, t: (
        "GET", f"/oncall/escalations/{t['escalation']}", None),
    ("POST", "/oncall/escalations/{escalation_id}/acknowledge"): lambda w, t: (
        "POST", f"/oncall/escalations/{t['escalation']}/acknowledge", {}),
    # A knowledge-base page of branch_b (its slug all digits), asked for by an analyst of branch_a.
    ("GET", "/api/v1/kb/pages/{slug}"): lambda w, t: ("GET", f"/api/v1/kb/pages/{t['kb_page']}", None),
    ("PATCH", "/api/v1/kb/pages/{slug}"): lambda w, t: ("PATCH", f"/api/v1/kb/pages/{t['kb_page']}", {"title": "mine"}),
    ("DELETE", "/api/v1/kb/pages/{slug}"): lambda w, t: ("DELETE", f"/api/v1/kb/pages/{t['kb_page']}", None),
    ("GET", "/api/v1/kb/pages/{slug}/versions"): lambda w, t: (
        "GET", f"/api/v1/kb/pages/{t['kb_page']}/versions", None),
    ("GET", "/api/v1/kb/pages/{slug}/versions/{number}"): lambda w, t: (
        "GET", f"/api/v1/kb/pages/{t['kb_page']}/versions/1", None),
    ("GET", "/api/v1/kb/pages/{slug}/versions/{number}/diff"): lambda w, t: (
        "GET", f"/api/v1/kb/pages/{t['kb_page']}/versions/1/diff", None),
    ("GET", "/api/v1/kb/pages/{slug}/export.md"): lambda w, t: (
        "GET", f"/api/v1/kb/pages/{t['kb_page']}/export.md", None),
    ("POST", "/api/v1/kb/pages/{slug}/publish"): lambda w, t: (
        "POST", f"/api/v1/kb/pages/{t['kb_page']}/publish", None),
    ("GET", "/kb/pages/{slug}"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}", None),
    ("GET", "/kb/pages/{slug}/edit"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}/edit", None),
    ("POST", "/kb/pages/{slug}/edit"): lambda w, t: ("POST", f"/kb/pages/{t['kb_page']}/edit", {
        "title": "mine", "body": "mine", "tags": ""}),
    ("POST", "/kb/pages/{slug}/delete"): lambda w, t: ("POST", f"/kb/pages/{t['kb_page']}/delete", {}),
    ("GET", "/kb/pages/{slug}/history"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}/history", None),
    ("GET", "/kb/pages/{slug}/versions/{number}"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}/versions/1", None),
    ("GET", "/kb/pages/{slug}/versions/{number}/diff"): lambda w, t: (
        "GET", f"/kb/pages/{t['kb_page']}/versions/1/diff", None),
    ("GET", "/kb/pages/{slug}/export.md"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}/export.md", None),
    ("GET", "/kb/pages/{slug}/export.pdf"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}/export.pdf", None),
    ("GET", "/api/v1/kb/pages/{slug}/export.pdf"): lambda w, t: (
        "GET", f"/api/v1/kb/pages/{t['kb_page']}/export.pdf", None),
    ("GET", "/kb/pages/{slug}/print"): lambda w, t: ("GET", f"/kb/pages/{t['kb_page']}/print", None),
    ("POST", "/kb/pages/{slug}/publish"): lambda w, t: ("POST", f"/kb/pages/{t['kb_page']}/publish", {}),
    # Notification channels of branch_b, asked for by the security administrator of branch_a.
    ("GET", "/api/v1/notification-channels/{channel_id}"): lambda w, t: (
        "GET", f"/api/v1/notification-channels/{t['channel']}", None),
    ("PATCH", "/api/v1/notification-channels/{channel_id}"): lambda w, t: (
        "PATCH", f"/api/v1/notification-channels/{t['channel']}", {"unit_id": w.branch_a, "enabled": False}),
    ("DELETE", "/api/v1/notification-channels/{channel_id}"): lambda w, t: (
        "DELETE", f"/api/v1/notification-channels/{t['channel']}", None),
    ("POST", "/api/v1/notification-channels/{channel_id}/test"): lambda w, t: (
        "POST", f"/api/v1/notification-channels/{t['channel']}/test", None),
    ("POST", "/response/notifications/{channel_id}"): lambda w, t: (
        "POST", f"/response/notifications/{t['channel']}", channel_form("secadmin_a", w.branch_a)),
    ("POST", "/response/notifications/{channel_id}/delete"): lambda w, t: (
        "POST", f"/response/notifications/{t['channel']}/delete", {}),
    ("POST", "/response/notifications/{channel_id}/test"): lambda w, t: (
        "POST", f"/response/notifications/{t['channel']}/test", {}),
    # Incidents of branch_b (with a task, an observable and a linked alert), asked for by an analyst of branch_a.
    ("GET", "/api/v1/incidents/{incident_id}"): lambda w, t: ("GET", f"/api/v1/incidents/{t['incident']}", None),
    ("PATCH", "/api/v1/incidents/{incident_id}"): lambda w, t: (
        "PATCH", f"/api/v1/incidents/{t['incident']}", {"severity": "P4"}),
    ("POST", "/api/v1/incidents/{incident_id}/assign"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/assign", {"owner_id": None, "team": "mine"}),
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/acknowledge", None),
    ("POST", "/api/v1/incidents/{incident_id}/transition"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/transition", {"phase": "contain"}),
    ("POST", "/api/v1/incidents/{incident_id}/alerts"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/alerts", {"alert_ids": [t["alert"]]}),
    ("DELETE", "/api/v1/incidents/{incident_id}/alerts/{alert_id}"): lambda w, t: (
        "DELETE", f"/api/v1/incidents/{t['incident']}/alerts/{t['incident_alert']}", None),
    ("POST", "/api/v1/incidents/{incident_id}/observables"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/observables", {"value": "mine.example.net"}),
    ("DELETE", "/api/v1/incidents/{incident_id}/observables/{observable_id}"): lambda w, t: (
        "DELETE", f"/api/v1/incidents/{t['incident']}/observables/{t['observable']}", None),
    ("POST", "/api/v1/incidents/{incident_id}/tasks"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/tasks", {"title": "mine"}),
    ("PATCH", "/api/v1/incidents/{incident_id}/tasks/{task_id}"): lambda w, t: (
        "PATCH", f"/api/v1/incidents/{t['incident']}/tasks/{t['task']}", {"title": "mine"}),
    ("POST", "/api/v1/incidents/{incident_id}/tasks/{task_id}/complete"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/tasks/{t['task']}/complete", None),
    ("POST", "/api/v1/incidents/{incident_id}/tasks/{task_id}/reopen"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/tasks/{t['task']}/reopen", None),
    ("DELETE", "/api/v1/incidents/{incident_id}/tasks/{task_id}"): lambda w, t: (
        "DELETE", f"/api/v1/incidents/{t['incident']}/tasks/{t['task']}", None),
    ("POST", "/api/v1/incidents/{incident_id}/comments"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/comments", {"body": "mine"}),
    ("POST", "/api/v1/incidents/{incident_id}/timeline"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/timeline", {"summary": "mine"}),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/postmortem", None),
    ("PATCH", "/api/v1/incidents/{incident_id}/postmortem"): lambda w, t: (
        "PATCH", f"/api/v1/incidents/{t['incident']}/postmortem", {"impact": "mine"}),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/{action}"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/postmortem/submit", None),
    ("GET", "/incidents/{incident_id}"): lambda w, t: ("GET", f"/incidents/{t['incident']}", None),
    # Response actions and playbooks of branch_b: configured by the security administrator of branch_a, run
    # and decided by a responder of branch_a.
    ("GET", "/api/v1/response-actions/{action_id}"): lambda w, t: (
        "GET", f"/api/v1/response-actions/{t['response_action']}", None),
    ("PATCH", "/api/v1/response-actions/{action_id}"): lambda w, t: (
        "PATCH", f"/api/v1/response-actions/{t['response_action']}", {"unit_id": w.branch_a, "enabled": False}),
    ("DELETE", "/api/v1/response-actions/{action_id}"): lambda w, t: (
        "DELETE", f"/api/v1/response-actions/{t['response_action']}", None),
    ("POST", "/api/v1/response-actions/{action_id}/dry-run"): lambda w, t: (
        "POST", f"/api/v1/response-actions/{t['response_action']}/dry-run", {"target": "192.0.2.7"}),
    ("POST", "/response/actions/{action_id}"): lambda w, t: ("POST", f"/response/actions/{t['response_action']}", {
        "name": "mine", "unit_id": str(w.branch_a), "config": "{}", "description": "mine"}),
    ("POST", "/response/actions/{action_id}/delete"): lambda w, t: (
        "POST", f"/response/actions/{t['response_action']}/delete", {}),
    ("POST", "/response/actions/{action_id}/dry-run"): lambda w, t: (
        "POST", f"/response/actions/{t['response_action']}/dry-run", {"target": "192.0.2.7"}),
    ("GET", "/api/v1/action-executions/{execution_id}"): lambda w, t: (
        "GET", f"/api/v1/action-executions/{t['execution']}", None),
    ("POST", "/api/v1/action-executions/{execution_id}/approve"): lambda w, t: (
        "POST", f"/api/v1/action-executions/{t['execution']}/approve", {}),
    ("POST", "/api/v1/action-executions/{execution_id}/reject"): lambda w, t: (
        "POST", f"/api/v1/action-executions/{t['execution']}/reject", {}),
    ("POST", "/api/v1/action-executions/{execution_id}/rollback"): lambda w, t: (
        "POST", f"/api/v1/action-executions/{t['execution']}/rollback", None),
    ("POST", "/response/executions/{execution_id}/approve"): lambda w, t: (
        "POST", f"/response/executions/{t['execution']}/approve", {}),
    ("POST", "/response/executions/{execution_id}/reject"): lambda w, t: (
        "POST", f"/response/executions/{t['execution']}/reject", {}),
    ("POST", "/response/executions/{execution_id}/rollback"): lambda w, t: (
        "POST", f"/response/executions/{t['execution']}/rollback", {}),
    ("GET", "/api/v1/playbooks/{playbook_id}"): lambda w, t: ("GET", f"/api/v1/playbooks/{t['playbook']}", None),
    ("PATCH", "/api/v1/playbooks/{playbook_id}"): lambda w, t: (
        "PATCH", f"/api/v1/playbooks/{t['playbook']}", {"enabled": True}),
    ("DELETE", "/api/v1/playbooks/{playbook_id}"): lambda w, t: ("DELETE", f"/api/v1/playbooks/{t['playbook']}", None),
    ("GET", "/api/v1/playbooks/{playbook_id}/versions"): lambda w, t: (
        "GET", f"/api/v1/playbooks/{t['playbook']}/versions", None),
    ("POST", "/api/v1/playbooks/{playbook_id}/runs"): lambda w, t: (
        "POST", f"/api/v1/playbooks/{t['playbook']}/runs", {"incident_id": t["incident_a"]}),
    ("GET", "/response/playbooks/{playbook_id}"): lambda w, t: ("GET", f"/response/playbooks/{t['playbook']}", None),
    ("POST", "/response/playbooks/{playbook_id}"): lambda w, t: ("POST", f"/response/playbooks/{t['playbook']}", {
        "name": "mine", "enabled": "on", "definition": "steps: [{kind: enrich}]", "comment": ""}),
    ("POST", "/response/playbooks/{playbook_id}/delete"): lambda w, t: (
        "POST", f"/response/playbooks/{t['playbook']}/delete", {}),
    ("GET", "/api/v1/playbook-runs/{run_id}"): lambda w, t: ("GET", f"/api/v1/playbook-runs/{t['playbook_run']}", None),
    ("POST", "/api/v1/playbook-runs/{run_id}/approve"): lambda w, t: (
        "POST", f"/api/v1/playbook-runs/{t['playbook_run']}/approve", {}),
    ("POST", "/api/v1/playbook-runs/{run_id}/reject"): lambda w, t: (
        "POST", f"/api/v1/playbook-runs/{t['playbook_run']}/reject", {}),
    ("POST", "/response/playbook-runs/{run_id}/approve"): lambda w, t: (
        "POST", f"/response/playbook-runs/{t['playbook_run']}/approve", {}),
    ("POST", "/response/playbook-runs/{run_id}/reject"): lambda w, t: (
        "POST", f"/response/playbook-runs/{t['playbook_run']}/reject", {}),
    # Incident work: evidence of a branch_b incident, a branch_b report, the incident page's forms.
    ("POST", "/api/v1/incidents/{incident_id}/evidence"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/evidence?name=mine.txt", {"planted": True}),
    ("GET", "/api/v1/incidents/{incident_id}/evidence"): lambda w, t: (
        "GET", f"/api/v1/incidents/{t['evidence_incident']}/evidence", None),
    ("GET", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}"): lambda w, t: (
        "GET", f"/api/v1/incidents/{t['evidence_incident']}/evidence/{t['evidence']}", None),
    ("GET", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}/download"): lambda w, t: (
        "GET", f"/api/v1/incidents/{t['evidence_incident']}/evidence/{t['evidence']}/download", None),
    ("POST", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}/handover"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['evidence_incident']}/evidence/{t['evidence']}/handover", {"to": "analyst_a"}),
    ("POST", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}/verify"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['evidence_incident']}/evidence/{t['evidence']}/verify", None),
    ("GET", "/api/v1/incident-reports/{report_id}"): lambda w, t: (
        "GET", f"/api/v1/incident-reports/{t['report']}", None),
    ("POST", "/api/v1/incident-reports/{report_id}/accept"): lambda w, t: (
        "POST", f"/api/v1/incident-reports/{t['report']}/accept", {}),
    ("POST", "/api/v1/incident-reports/{report_id}/reject"): lambda w, t: (
        "POST", f"/api/v1/incident-reports/{t['report']}/reject", {"reason": "mine"}),
    ("POST", "/reports/triage/{report_id}/accept"): lambda w, t: ("POST", f"/reports/triage/{t['report']}/accept", {}),
    ("POST", "/reports/triage/{report_id}/reject"): lambda w, t: (
        "POST", f"/reports/triage/{t['report']}/reject", {"reason": "mine"}),
    ("POST", "/incidents/{incident_id}/acknowledge"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/acknowledge", {}),
    ("POST", "/incidents/{incident_id}/assign"): lambda w, t: ("POST", f"/incidents/{t['incident']}/assign",
                                                                {"team": "mine"}),
    ("POST", "/incidents/{incident_id}/transition"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/transition", {"phase": "contain"}),
    ("POST", "/incidents/{incident_id}/edit"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/edit", {"title": "mine", "type": "malware", "severity": "P4"}),
    ("POST", "/incidents/{incident_id}/tasks"): lambda w, t: ("POST", f"/incidents/{t['incident']}/tasks",
                                                               {"title": "mine"}),
    ("POST", "/incidents/{incident_id}/tasks/{task_id}/complete"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/tasks/{t['task']}/complete", {}),
    ("POST", "/incidents/{incident_id}/tasks/{task_id}/reopen"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/tasks/{t['task']}/reopen", {}),
    ("POST", "/incidents/{incident_id}/tasks/{task_id}/assign"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/tasks/{t['task']}/assign", {"assignee": ""}),
    ("POST", "/incidents/{incident_id}/comments"): lambda w, t: ("POST", f"/incidents/{t['incident']}/comments",
                                                                  {"body": "mine"}),
    ("POST", "/incidents/{incident_id}/timeline"): lambda w, t: ("POST", f"/incidents/{t['incident']}/timeline",
                                                                  {"summary": "mine"}),
    ("POST", "/incidents/{incident_id}/observables"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/observables", {"value": "mine.example.net"}),
    ("POST", "/incidents/{incident_id}/postmortem"): lambda w, t: ("POST", f"/incidents/{t['incident']}/postmortem",
                                                                    {}),
    ("POST", "/incidents/{incident_id}/postmortem/edit"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/postmortem/edit", {"impact": "mine"}),
    ("POST", "/incidents/{incident_id}/postmortem/{action}"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/postmortem/submit", {}),
    ("POST", "/incidents/{incident_id}/evidence"): lambda w, t: (
        "POST", f"/incidents/{t['incident']}/evidence", {"description": "mine"}),
    ("GET", "/incidents/{incident_id}/evidence/{evidence_id}/download"): lambda w, t: (
        "GET", f"/incidents/{t['evidence_incident']}/evidence/{t['evidence']}/download", None),
    ("POST", "/incidents/{incident_id}/evidence/{evidence_id}/verify"): lambda w, t: (
        "POST", f"/incidents/{t['evidence_incident']}/evidence/{t['evidence']}/verify", {}),
    ("POST", "/incidents/{incident_id}/evidence/{evidence_id}/handover"): lambda w, t: (
        "POST", f"/incidents/{t['evidence_incident']}/evidence/{t['evidence']}/handover", {"to": "analyst_a"}),
    ("GET", "/api/v1/incidents/{incident_id}/report.md"): lambda w, t: (
        "GET", f"/api/v1/incidents/{t['incident']}/report.md", None),
    ("GET", "/incidents/{incident_id}/report.md"): lambda w, t: ("GET", f"/incidents/{t['incident']}/report.md", None),
    ("GET", "/api/v1/incidents/{incident_id}/report.pdf"): lambda w, t: (
        "GET", f"/api/v1/incidents/{t['incident']}/report.pdf", None),
    ("GET", "/incidents/{incident_id}/report.pdf"): lambda w, t: (
        "GET", f"/incidents/{t['incident']}/report.pdf", None),
    ("GET", "/incidents/{incident_id}/report"): lambda w, t: ("GET", f"/incidents/{t['incident']}/report", None),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/prefill"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/postmortem/prefill", None),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/publish"): lambda w, t: (
        "POST", f"/api/v1/incidents/{t['incident']}/postmortem/publish", None),
}


# Path parameters that are not ids of unit-scoped records: the Elasticsearch-compatible endpoints take the
# names shippers give their index templates, policies, pipelines and indices (acknowledged, never stored
# per unit; the events a _bulk sends belong to the token's unit).
NOT_RECORD_IDS = {
    ("GET", "/_cat/{what:path}"), ("GET", "/_index_template/{name}"), ("PUT", "/_index_template/{name}"),
    ("GET", "/_template/{name}"), ("PUT", "/_template/{name}"), ("GET", "/_ilm/policy/{name}"),
    ("PUT", "/_ilm/policy/{name}"), ("GET", "/_ingest/pipeline/{name}"), ("PUT", "/_ingest/pipeline/{name}"),
    ("POST", "/{index}/_bulk"), ("PUT", "/{index}/_bulk"),
    # Detection rules belong to the platform, not to a unit (every unit's events meet the same rules).
    ("GET", "/api/v1/rules/{rule_id}"), ("PATCH", "/api/v1/rules/{rule_id}"), ("GET", "/api/v1/rules/{rule_id}/yaml"),
    ("GET", "/detection/rules/{rule_id}"), ("POST", "/detection/rules/{rule_id}"),
    ("POST", "/detection/rules/{rule_id}/enabled"),
    ("GET", "/api/v1/rules/{rule_id}/tests"), ("POST", "/api/v1/rules/{rule_id}/tests"),
    ("POST", "/api/v1/rules/{rule_id}/tests/run"), ("DELETE", "/api/v1/rules/{rule_id}/tests/{index}"),
    ("POST", "/detection/rules/{rule_id}/tests/try"), ("POST", "/detection/rules/{rule_id}/tests"),
    ("POST", "/detection/rules/{rule_id}/tests/{index}/delete"),
    # Sigma placeholders are platform-wide too (the rules using them are); their path parameter is a name.
    ("GET", "/api/v1/rule-placeholders/{name}"), ("PUT", "/api/v1/rule-placeholders/{name}"),
    ("DELETE", "/api/v1/rule-placeholders/{name}"), ("POST", "/detection/rules/packs/placeholders/{name}/delete"),
    # Threat intelligence's feeds, indicators, entities and allow-list are platform-wide (sightings are not).
    ("GET", "/api/v1/intel/feeds/{feed_id}"), ("PATCH", "/api/v1/intel/feeds/{feed_id}"),
    ("DELETE", "/api/v1/intel/feeds/{feed_id}"), ("POST", "/api/v1/intel/feeds/{feed_id}/pull"),
    ("GET", "/api/v1/intel/indicators/{indicator_id}"), ("GET", "/api/v1/intel/entities/{entity_id}"),
    ("DELETE", "/api/v1/intel/allowlist/{allow_id}"),
    ("GET", "/intel/feeds/{feed_id}"), ("POST", "/intel/feeds/{feed_id}/pull"),
    ("POST", "/intel/feeds/{feed_id}/enabled"), ("POST", "/intel/feeds/{feed_id}/delete"),
    ("GET", "/intel/indicators/{indicator_id}"), ("GET", "/intel/actors/{entity_id}"),
    ("POST", "/intel/allowlist/{allow_id}/delete"),
    # The signed acknowledgement link's token is a credential, not a record id (its own tests refuse tampering).
    ("GET", "/ack/{token}"), ("POST", "/ack/{token}"),
}
# The incident domain's settings (custom fields, task templates, SLA targets) are platform-wide.
NOT_RECORD_IDS |= {
    ("DELETE", "/api/v1/incident-settings/fields/{field_id}"),
    ("DELETE", "/api/v1/incident-settings/templates/{template_id}"),
    ("PUT", "/api/v1/incident-settings/sla/{severity}"),
    ("DELETE", "/api/v1/incident-settings/grouping-rules/{rule_id}"),
    # Paging is set by severity for the caller's own unit (or a unit_id checked against the scope).
    ("PUT", "/api/v1/incident-paging/{severity}"), ("DELETE", "/api/v1/incident-paging/{severity}"),
    ("POST", "/oncall/paging/{severity}/delete"),
}
# A report's follow-up token is a credential, not a record id (its own tests refuse a wrong one).
NOT_RECORD_IDS |= {("GET", "/api/v1/incident-reports/follow/{token}"), ("GET", "/reports/follow/{token}")}


def test_every_route_with_an_id_is_covered(app: Any) -> None:
    with_ids = {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        if "{" in str(route.path or "")
        for method in (route.methods or ())
        if method != "HEAD"
    }
    missing = sorted(with_ids - ID_ROUTES.keys() - NOT_RECORD_IDS)
    assert not missing, (
        "add these routes to ID_ROUTES in tests/api/test_unit_scope.py, so the test proves a branch "
        "cannot reach another branch's records through them: " + ", ".join(f"{m} {p}" for m, p in missing)
    )


# Routes of events and saved searches, asked for by an analyst of branch_a.
ANALYST_PATHS = ("/api/v1/intel/sightings/", "/intel/sightings/", "/api/v1/events/", "/api/v1/saved-searches/",
                 "/siem/events/", "/siem/search/", "/api/v1/alerts/",
                 "/api/v1/suppressions/", "/detection/alerts/", "/detection/suppressions/", "/api/v1/hunts/",
                 "/detection/hunts/", "/api/v1/oncall/", "/oncall/", "/api/v1/escalation-policies/",
                 "/api/v1/escalations/", "/api/v1/kb/", "/kb/")
ANALYST_PATHS += ("/api/v1/incidents/", "/incidents/")
ANALYST_PATHS += ("/api/v1/incident-reports/", "/reports/")


RESPONDER_PATHS = ("/api/v1/action-executions/", "/response/executions/", "/api/v1/playbook-runs/",
                   "/response/playbook-runs/")


def branch_caller(path: str) -> str:
    """The branch_a administrator whose role does this on their own branch: roles are the security
    administrator's to grant and revoke, everything else about accounts and units the system administrator's."""
    if path.startswith(RESPONDER_PATHS) or (path.startswith("/api/v1/playbooks/") and path.endswith("/runs")):
        return "responder_a"  # runs and approvals are for responders: ``targets`` adds one to branch_a
    if path.startswith(("/api/v1/response-actions/", "/response/actions/", "/api/v1/playbooks/",
                        "/response/playbooks/")):
        return "secadmin_a"  # actions and playbooks are integrations: the security administrator's
    if path.startswith(ANALYST_PATHS):
        return "analyst_a"  # events and saved searches are for analysts: ``targets`` adds one to branch_a
    if "/notification" in path:
        return "secadmin_a"  # notification channels are integrations: the security administrator's
    return "secadmin_a" if "/grants" in path or "/sources/" in path else "sysadmin_a"  # log sources: security


@pytest.fixture
def targets(world: Any, client: TestClient, request: pytest.FixtureRequest) -> dict[str, int]:
    """Records of branch_b: staff_b, one of their grants and tokens, the unit itself, and (for the events
    routes) an event of branch_b, with an analyst of branch_a to ask for it."""
    with world.database.transaction(Scope.system()) as session:
        grant = session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == world.users["staff_b"]))
    assert grant is not None
    event = 0
    if any(path in request.node.name for path in ANALYST_PATHS):
        world.add_user("analyst_a", Role.ANALYST, world.branch_a)
        store = client.app.state.siem.store  # type: ignore[attr-defined]
        store.append([{"message": "branch b only"}], unit_id=world.branch_b, source="beijing")
        event = store.search("message = ?", ["branch b only"], limit=1)[0].id
    if any(path in request.node.name for path in RESPONDER_PATHS) or "/runs]" in request.node.name:
        world.add_user("responder_a", Role.RESPONDER, world.branch_a)
    with world.database.transaction(Scope.system()) as session:  # a saved search of staff_b, in branch_b
        saved = SavedSearch(user_id=world.users["staff_b"], unit_id=world.branch_b, name="branch b's", query="*")
        session.add(saved)
        session.flush()
        saved_id = saved.id
        source = LogSource(name="beijing-firewall", unit_id=world.branch_b, retention_days=365)  # branch_b's
        session.add(source)
        session.flush()
        source_id = source.id
    return {"user": world.users["staff_b"], "grant": grant, "token": new_token(world.database, "staff_b")[1],
            "unit": world.branch_b, "event": event, "saved": saved_id,
            "source": source_id, "alert": fresh_alert_id(world, world.branch_b),
            "suppression": fresh_suppression_id(world, world.branch_b), "hunt": fresh_hunt_id(world, world.branch_b),
            "sighting": fresh_sighting_id(world, world.branch_b),
            "schedule": (schedule_b := fresh_schedule_id(world, world.branch_b)),
            "override": fresh_override_id(world, schedule_b), "policy": fresh_policy_id(world, world.branch_b),
            "escalation": fresh_escalation_id(world, client.app, world.branch_b),
            "kb_page": kb_target_slug(world), "channel": fresh_channel_id(world, world.branch_b),
            **incident_targets(world),
            "response_action": fresh_action_id(world, world.branch_b),
            "execution": fresh_execution_id(world, world.branch_b),
            "playbook": fresh_playbook_id(world, world.branch_b), "playbook_run": fresh_run_id(world, world.branch_b),
            "incident_a": fresh_incident_id(world, world.branch_a), **work_targets(world, client.app)}


def nonexistent(targets: dict[str, int]) -> dict[str, int]:
    return {key: 987654 for key in targets}


def snapshot(world: Any) -> dict[str, Any]:
    with world.database.transaction(Scope.system()) as session:
        unit = session.get(OrgUnit, world.branch_b)
        assert unit is not None
        name = unit.name
        source = session.scalar(select(LogSource).where(LogSource.name == "beijing-firewall"))
        source_b = (source.unit_id, source.retention_days) if source is not None else None
        alerts_b = session.execute(select(Alert.id, Alert.status, Alert.assignee_id)).all()
        suppressions_b = session.execute(select(Suppression.id, Suppression.enabled)).all()
        oncall_b = [session.execute(select(OncallSchedule.id, OncallSchedule.name, OncallSchedule.description,
                                           OncallSchedule.layers)).all(),
                    session.execute(select(OncallOverride.id)).all(),
                    session.execute(select(EscalationPolicy.id, EscalationPolicy.name, EscalationPolicy.repeat)).all(),
                    session.execute(select(Escalation.id, Escalation.status)).all()]
        incidents_b = session.execute(select(Incident.id, Incident.updated_at, Incident.team)).all()
        response_b = [session.execute(select(ActionConfig.id, ActionConfig.unit_id, ActionConfig.enabled,
                                             ActionConfig.description)).all(),
                      session.execute(select(ActionExecution.id, ActionExecution.status)).all(),
                      session.execute(select(Playbook.id, Playbook.enabled, Playbook.version)).all(),
                      session.execute(select(PlaybookRun.id, PlaybookRun.status, PlaybookRun.playbook_id)).all()]
    return {"staff_b": user_row(world.database, world.users["staff_b"]), "unit_b": name, "source_b": source_b,
            "alerts_b": alerts_b, "suppressions_b": suppressions_b, "oncall_b": oncall_b, "incidents_b": incidents_b,
            "response_b": response_b}


def request_as(client: TestClient, world: Any, username: str, method: str, path: str, body: Any,
               session: tuple[str, str]) -> Any:
    client.cookies.clear()
    if path.startswith("/api/"):
        return client.request(method, path, json=body, headers=world.headers(username))
    secret, csrf = session
    data = {"csrf_token": csrf, **body} if body is not None else None
    return client.request(method, path, data=data, headers={"Cookie": f"vigil_session={secret}"},
                          follow_redirects=False)


@pytest.mark.parametrize("key", sorted(ID_ROUTES), ids=[f"{m} {p}" for m, p in sorted(ID_ROUTES)])
def test_branch_administrator_cannot_reach_another_branch_by_id(
    key: tuple[str, str], world: Any, client: TestClient, targets: dict[str, int]
) -> None:
    """404, exactly as for an id that does not exist, and nothing of branch_b changes."""
    before = snapshot(world)
    caller = branch_caller(key[1])
    browser = web_session(world.database, caller)
    method, path, body = ID_ROUTES[key](world, targets)
    refused = request_as(client, world, caller, method, path, body, browser)
    method, missing_path, body = ID_ROUTES[key](world, nonexistent(targets))
    absent = request_as(client, world, caller, method, missing_path, body, browser)
    assert refused.status_code == 404, (path, refused.status_code, refused.text[:300])
    assert absent.status_code == 404
    if path.startswith("/api/"):
        assert_problem(refused, 404, "not-found")
        # Same words as for a record that does not exist: the reply tells nothing about existence.
        assert re.sub(r"\d+", "N", refused.json()["detail"]) == re.sub(r"\d+", "N", absent.json()["detail"])
    else:
        assert re.sub(r"\d+", "N", refused.text) == re.sub(r"\d+", "N", absent.text)
    assert snapshot(world) == before


def test_branch_administrator_lists_only_their_subtree(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin_a")
    users = client.get("/api/v1/users", headers=h, params={"limit": 500}).json()
    assert {u["username"] for u in users["items"]} == {"sysadmin_a", "auditor_a", "secadmin_a", "staff_a"}
    assert users["total"] == 4
    units = client.get("/api/v1/units", headers=h).json()
    assert {u["id"] for u in units["items"]} == {world.branch_a, world.line_a}
    assert units["total"] == 2
    # Filtering on another branch finds nothing rather than an error that would confirm it exists.
    assert client.get("/api/v1/users", headers=h, params={"unit_id": world.branch_b}).json()["total"] == 0
    assert client.get("/api/v1/users", headers=h, params={"q": "staff_b"}).json()["total"] == 0
    assert client.get(f"/api/v1/users/{world.users['staff_a']}/tokens", headers=h).json()["total"] == 1


def test_branch_auditor_reads_only_their_branch_of_the_trail(world: Any, client: TestClient) -> None:
    records = client.get("/api/v1/audit", headers=world.headers("auditor_a"), params={"limit": 500}).json()
    assert records["total"] > 0
    assert {r["unit_id"] for r in records["items"]} <= {world.branch_a, world.line_a}
    everything = client.get("/api/v1/audit", headers=world.headers("auditor"), params={"limit": 500}).json()
    assert {world.hq, world.branch_b} <= {r["unit_id"] for r in everything["items"]}
    csv = client.get("/api/v1/audit/export.csv", headers=world.headers("auditor_a")).text
    assert "staff_b" not in csv and "sysadmin_b" not in csv
    assert "staff_a" in csv


def test_headquarters_sees_everything_rolled_up(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    users = client.get("/api/v1/users", headers=h, params={"limit": 500}).json()
    assert {"staff_a", "staff_b", "sysadmin_a", "sysadmin_b", "sysadmin"} <= {u["username"] for u in users["items"]}
    assert users["total"] == len(world.users)
    units = {u["id"] for u in client.get("/api/v1/units", headers=h).json()["items"]}
    assert units == {world.hq, world.branch_a, world.branch_b, world.line_a}
    # line_a lies below branch_a: headquarters reaches it too.
    assert client.get(f"/api/v1/users/{world.users['staff_a']}", headers=h).status_code == 200
    assert client.get(f"/api/v1/units/{world.line_a}", headers=h).status_code == 200
    # And branch_a's administrator reaches its own business line.
    assert client.get(f"/api/v1/users/{world.users['staff_a']}", headers=world.headers("sysadmin_a")).status_code == 200


def test_branch_administrator_cannot_place_anything_in_another_branch(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin_a")
    staff_a = world.users["staff_a"]
    before_count = client.get("/api/v1/users", headers=world.headers("sysadmin")).json()["total"]
    before_staff = user_row(world.database, staff_a)
    created = client.post("/api/v1/users", headers=h, json={
        "username": "intruder", "password": "Planted-Account-12!", "unit_id": world.branch_b})
    assert_problem(created, 404, "not-found")
    created = client.post("/api/v1/users", headers=h, json={
        "username": "intruder", "password": "Planted-Account-12!", "unit_id": world.branch_a,
        "grants": [{"role": "viewer", "unit_id": world.branch_b}]})
    assert_problem(created, 422, "bad-input")  # a system administrator grants no role at all
    assert_problem(client.patch(f"/api/v1/users/{staff_a}", headers=h, json={"unit_id": world.branch_b}), 404)
    assert_problem(client.patch(f"/api/v1/users/{staff_a}", headers=h, json={"unit_id": world.hq}), 404)
    # Roles are the branch security administrator's, and only on the branch.
    assigner = world.headers("secadmin_a")
    for unit in (world.branch_b, world.hq):
        granted = client.post(f"/api/v1/users/{staff_a}/grants", headers=assigner,
                              json={"role": "viewer", "unit_id": unit})
        assert_problem(granted, 404, "not-found")
    unit = client.post("/api/v1/units", headers=h, json={"name": "Planted", "kind": "subsidiary",
                                                          "parent_id": world.branch_b})
    assert_problem(unit, 404, "not-found")
    assert client.get("/api/v1/users", headers=world.headers("sysadmin")).json()["total"] == before_count
    assert user_row(world.database, staff_a) == before_staff
    assert {u["name"] for u in client.get("/api/v1/units", headers=world.headers("sysadmin")).json()["items"]} == {
        "Headquarters", "Shanghai branch", "Beijing branch", "Payments"}


def test_branch_administrator_cannot_take_over_an_account_with_wider_roles(world: Any, client: TestClient) -> None:
    """A user of branch_a who also holds a role at headquarters is beyond branch_a's administrator."""
    wide = world.add_user("wide", Role.VIEWER, world.hq, token=False)
    assert client.patch(f"/api/v1/users/{wide}", headers=world.headers("sysadmin"),
                        json={"unit_id": world.branch_a}).status_code == 200
    before = user_row(world.database, wide)
    h = world.headers("sysadmin_a")
    assert client.get(f"/api/v1/users/{wide}", headers=h).status_code == 200  # visible: they work in branch_a
    for method, path, body in [
        ("POST", f"/api/v1/users/{wide}/password", {"password": "Taken-Over-Pass-12!"}),
        ("PATCH", f"/api/v1/users/{wide}", {"disabled": True}),
        ("POST", f"/api/v1/users/{wide}/grants", {"role": "analyst", "unit_id": world.branch_a}),
        ("POST", f"/api/v1/users/{wide}/unlock", None),
    ]:
        assert_problem(client.request(method, path, headers=h, json=body), 403, "permission-denied")
    # Nor can branch_a's security administrator add or take away a role of this account.
    with world.database.transaction(Scope.system()) as session:
        hq_grant = session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == wide))
    assigner = world.headers("secadmin_a")
    assert client.get(f"/api/v1/users/{wide}", headers=assigner).status_code == 200
    for method, path, body in [
        ("POST", f"/api/v1/users/{wide}/grants", {"role": "analyst", "unit_id": world.branch_a}),
        ("DELETE", f"/api/v1/users/{wide}/grants/{hq_grant}", None),
    ]:
        assert_problem(client.request(method, path, headers=assigner, json=body), 403, "permission-denied")
    assert user_row(world.database, wide) == before


def test_user_moved_to_another_unit_keeps_seeing_their_tokens(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    staff_a = world.users["staff_a"]
    assert client.patch(f"/api/v1/users/{staff_a}", headers=h, json={"unit_id": world.branch_a}).status_code == 200
    mine = client.get("/api/v1/me/tokens", headers=world.headers("staff_a")).json()
    assert mine["total"] == 1
    token_id = mine["items"][0]["id"]
    extra = client.post("/api/v1/me/tokens", headers=world.headers("staff_a"), json={"name": "second"}).json()
    assert client.delete(f"/api/v1/me/tokens/{extra['id']}", headers=world.headers("staff_a")).status_code == 200
    assert client.delete(f"/api/v1/me/tokens/{token_id}", headers=world.headers("staff_a")).status_code == 200
    assert client.get("/api/v1/me", headers=world.headers("staff_a")).status_code == 401


# --- the records layer itself -----------------------------------------------------------------------


def test_scoped_queries_never_return_other_branches(world: Any) -> None:
    branch_b_people = {world.users["staff_b"], world.users["sysadmin_b"]}
    with world.database.transaction(Scope(frozenset({world.branch_a, world.line_a}))) as session:
        users = service.list_users(session, params=PageParams(limit=500))[0]
        assert {u.username for u in users} == {"sysadmin_a", "auditor_a", "secadmin_a", "staff_a"}
        assert not {u.id for u in session.scalars(select(User))} & branch_b_people
        assert session.get(User, world.users["staff_b"]) is None
        assert session.scalar(select(func.count()).select_from(User)) == 4
        assert session.scalar(select(func.count(ApiToken.id))) == 4
        assert {u.id for u in session.scalars(select(OrgUnit))} == {world.branch_a, world.line_a}
        # Joined and relationship loads are scoped too.
        joined = session.execute(select(User.username, RoleGrant.role).join(RoleGrant)).all()
        assert {name for name, _ in joined} == {"sysadmin_a", "auditor_a", "secadmin_a", "staff_a"}


def test_scoped_bulk_update_and_delete_cannot_touch_other_branches(world: Any) -> None:
    before_b = user_row(world.database, world.users["staff_b"])
    with world.database.transaction(Scope(frozenset({world.branch_a}))) as session:
        changed = session.execute(update(User).values(display_name="bulk")).rowcount
        removed = session.execute(delete(ApiToken)).rowcount
    assert changed == 3  # sysadmin_a, auditor_a and secadmin_a: staff_a sits in line_a, outside this scope
    assert removed == 3
    assert user_row(world.database, world.users["staff_b"]) == before_b
    with world.database.transaction(Scope.system()) as session:
        names = dict(session.execute(select(User.username, User.display_name)).all())
        assert names["staff_b"] == "staff_b" and names["sysadmin"] == "sysadmin"
        assert names["staff_a"] == "staff_a"
        assert session.scalar(select(func.count()).select_from(ApiToken)) == len(world.users) - 3


def test_scoped_session_cannot_write_into_another_branch(world: Any) -> None:
    scope = Scope(frozenset({world.branch_a, world.line_a}))
    attempts: list[Callable[[Session], object]] = [
        lambda s: s.execute(update(User).where(User.username == "staff_a").values(unit_id=world.branch_b)),
        lambda s: s.execute(insert(User).values(username="planted", password_hash="x", unit_id=world.branch_b)),
        lambda s: s.execute(insert(User), [{"username": "planted", "password_hash": "x", "unit_id": world.branch_b}]),
        lambda s: s.execute(update(User).values(unit_id=User.unit_id + 1)),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied), world.database.transaction(scope) as session:
            attempt(session)
    with pytest.raises(PermissionDenied), world.database.transaction(scope) as session:
        staff = session.scalar(select(User).where(User.username == "staff_a"))
        assert staff is not None
        staff.unit_id = world.branch_b
        session.flush()
    with pytest.raises(PermissionDenied), world.database.transaction(scope) as session:
        session.add(User(username="planted", password_hash="x", unit_id=world.branch_b))
        session.flush()
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(User.unit_id).where(User.username == "staff_a")) == world.line_a
        assert session.scalar(select(User.id).where(User.username == "planted")) is None


def test_session_without_scope_fails_closed(world: Any) -> None:
    with Session(world.database.engine) as session:
        with pytest.raises(ScopeMissing):
            session.scalars(select(User)).all()
        with pytest.raises(ScopeMissing):
            session.execute(update(User).values(display_name="x"))
        with pytest.raises(ScopeMissing):
            session.execute(delete(ApiToken))
        with pytest.raises(ScopeMissing):
            session.add(User(username="x", password_hash="x", unit_id=world.hq))
            session.flush()
        session.rollback()
    # The empty scope a request starts with sees nothing until a permission guard widens it.
    with world.database.transaction(Scope(frozenset())) as session:
        assert session.scalars(select(User)).all() == []
