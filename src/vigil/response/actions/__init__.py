"""Response actions: plugins of the ``vigil.actions`` group (block an IP, disable an account, isolate a host,
run a script), their unit-scoped configurations, and executions with dry-run, approval and rollback."""
