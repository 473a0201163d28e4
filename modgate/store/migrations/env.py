"""Alembic environment: runs on the connection modgate.store.engine.migrate hands over
(config.attributes["connection"]), never on a URL from alembic.ini (there is none)."""

from __future__ import annotations

from alembic import context

from modgate.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
