"""Alembic environment: migrate on the connection ``recon_assets.migrations`` hands over."""

from alembic import context

from recon_assets.migrations import VERSION_TABLE

context.configure(connection=context.config.attributes["connection"],
                  version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
