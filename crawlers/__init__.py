"""Crawlers: frontier, fetching, robots, extraction and court-grade capture (to come)."""
