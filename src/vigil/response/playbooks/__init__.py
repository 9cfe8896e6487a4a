"""Playbooks: a trigger (incident type, severity, alert rule or origin) and ordered steps (enrich, notify, act,
create a task), versioned on every edit, run on an incident with approvals where a step asks for one."""
