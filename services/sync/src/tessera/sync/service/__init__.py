"""The sync service's use cases: one async function = one transaction."""
