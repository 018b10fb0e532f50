"""Workspaces: the shop accounts whose data the pipeline keeps apart."""

from uuid import UUID

import asyncpg

_ids: dict[str, UUID] = {}


async def find_workspace_id(pool: asyncpg.Pool, slug: str) -> UUID | None:
    """The workspace's row id, or None when it was never used (writes nothing)."""
    found: UUID | None = _ids.get(slug) or await pool.fetchval(
        "SELECT id FROM workspaces WHERE slug = $1", slug
    )
    return found


async def workspace_id(pool: asyncpg.Pool, slug: str) -> UUID:
    """The workspace's row id, creating the row on first use."""
    cached = _ids.get(slug)
    if cached is not None:
        return cached
    row_id = await pool.fetchval(
        """
        INSERT INTO workspaces (slug, name) VALUES ($1, $1)
        ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug
        RETURNING id
        """,
        slug,
    )
    _ids[slug] = row_id
    return row_id
