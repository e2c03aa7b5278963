"""HTTP routes: thin adapters over ingest_api.services."""
