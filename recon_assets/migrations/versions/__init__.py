"""Revisions of recon-assets' own tables, oldest first (``down_revision`` links them)."""
