"""Tessera shared kernel."""
