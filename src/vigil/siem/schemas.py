"""Request and response shapes of the SIEM's API (Pydantic v2)."""

from __future__ import annotations

# --- search (events) -------------------------------------------------------------------------------

# --- saved searches --------------------------------------------------------------------------------
