"""Threat detection: the Sigma engine (``sigma/``), hunts over log files (``hunt.py``) and their commands."""
