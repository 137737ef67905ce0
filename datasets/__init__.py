"""Recipes that build benchmark corpora from packaged media, and tiny fixtures (to come)."""
