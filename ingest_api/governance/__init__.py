"""Governance building blocks that need no HTTP: the tamper-evident audit chain and its seals, roles and the
permission table, fence and case rules, API tokens, and redaction of exported photos.

Pure logic lives in `audit`, `policy` and `redaction`; `audit_store` (SQL) and `seals` (S3) are the adapters.
"""
