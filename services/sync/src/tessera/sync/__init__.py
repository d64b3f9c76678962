"""Tessera sync service."""
