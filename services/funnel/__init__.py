"""Funnel analytics computed from session events."""
