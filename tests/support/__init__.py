"""Helpers that start the real stack (PostgreSQL, Redis, server, Envoy)."""
