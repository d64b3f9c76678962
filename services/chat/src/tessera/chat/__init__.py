"""Tessera chat service."""
