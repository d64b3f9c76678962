"""Tessera answers service."""
