"""Threat intelligence: feeds, indicators, live and retroactive matching, sightings, actors and campaigns."""
