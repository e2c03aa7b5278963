"""The zero-setup demo: sample photos made here, uploaded through the real API into the local S3 server."""
