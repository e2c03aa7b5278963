"""The Witness HTTP API: witness uploads now, investigator search later. Build it with `create_app(settings)`."""
