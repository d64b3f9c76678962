"""Tessera applets service."""
