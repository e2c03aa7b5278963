"""Metadata store (SQLAlchemy): events, submissions and uploads. SQLite locally, PostgreSQL in production.

Schema changes go through Alembic (`witness db upgrade`), never `create_all` outside tests of the migrations.
"""
