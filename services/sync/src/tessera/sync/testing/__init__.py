"""Test helpers of the sync service: :mod:`.fake_misp`, a remote MISP serving generated data."""
