"""Tessera mailer service."""
