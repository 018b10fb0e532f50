"""Migrations on a database that already holds the seed's tables, and the
embedded PostgreSQL the project starts when DATABASE_URL is unset."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from activities.journal import JournalPage, Ledger
from baselinker.models import JournalEntry
from core.db import MIGRATIONS_DIR, create_pool, migrate
from core.stack import start_embedded_postgres

#: The seed's tables as its architecture note writes them (event_queue with its
#: global UNIQUE on event_log_id, baselinker_sync_state, scheduled_messages),
#: after the minimal `workspaces` and `clients` they reference.
SEED_SCHEMA = """
CREATE TABLE workspaces (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name TEXT,
  created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE clients (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id UUID REFERENCES workspaces(id),
  name TEXT,
  email TEXT,
  phone TEXT,
  cpf TEXT,
  metadata JSONB DEFAULT '{}'::jsonb,
  created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE event_queue (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  event_log_id BIGINT UNIQUE NOT NULL,
  event_type INTEGER NOT NULL,
  event_name TEXT,
  order_id BIGINT,
  payload JSONB NOT NULL,
  status TEXT DEFAULT 'pending',
  retry_count INTEGER DEFAULT 0,
  error_message TEXT,
  created_at TIMESTAMPTZ DEFAULT NOW(),
  processed_at TIMESTAMPTZ
);

CREATE INDEX idx_event_queue_status ON event_queue(status);
CREATE INDEX idx_event_queue_event_type ON event_queue(event_type);

CREATE TABLE baselinker_sync_state (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id UUID REFERENCES workspaces(id) UNIQUE,
  last_log_id BIGINT DEFAULT 0,
  last_sync_at TIMESTAMPTZ DEFAULT NOW(),
  is_syncing BOOLEAN DEFAULT false,
  sync_errors JSONB DEFAULT '[]'::jsonb
);

CREATE TABLE scheduled_messages (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id UUID REFERENCES workspaces(id),
  client_id UUID REFERENCES clients(id),
  message_type TEXT NOT NULL,
  message_content TEXT NOT NULL,
  scheduled_for TIMESTAMPTZ NOT NULL,
  sent_at TIMESTAMPTZ,
  status TEXT DEFAULT 'pending',
  metadata JSONB DEFAULT '{}'::jsonb,
  created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_scheduled_messages_scheduled_for ON scheduled_messages(scheduled_for)
  WHERE status = 'pending';
"""

#: A log id the edge-function era already ledgered, before any workspace column.
LEGACY_LOG_ID = 9_000_042

#: Columns and indexes the order sync adds to the seed's tables.
ADDED_COLUMNS = {
    ("workspaces", "slug"),
    ("clients", "identity_key"),
    ("event_queue", "workspace_id"),
    ("event_queue", "ignore_reason"),
    ("event_queue", "workflow_id"),
    ("event_queue", "updated_at"),
    ("baselinker_sync_state", "paused"),
    ("baselinker_sync_state", "pause_reason"),
    ("baselinker_sync_state", "last_batch_size"),
}
ADDED_INDEXES = {
    "workspaces_slug_key",
    "clients_workspace_identity_key",
    "event_queue_workspace_log_id",
    "event_queue_workspace_status",
    "orders_workspace_order_id_base",
    "products_workspace_product_key",
}


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture
async def seed_database(server_url: str) -> AsyncIterator[str]:
    """A fresh database holding the seed's tables and a few production rows."""
    name = f"blt_seed_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SEED_SCHEMA)
        ws = await conn.fetchval(
            "INSERT INTO workspaces (name) VALUES ('Loja') RETURNING id"
        )
        client = await conn.fetchval(
            """
            INSERT INTO clients (workspace_id, name, email, cpf)
            VALUES ($1, 'Maria Silva', 'maria@example.com', '52998224725')
            RETURNING id
            """,
            ws,
        )
        await conn.execute(
            """
            INSERT INTO event_queue (event_log_id, event_type, event_name,
                order_id, payload, status, processed_at)
            VALUES ($1, 1, 'order_created', 7000001, '{"log_id": 9000042}',
                'completed', NOW())
            """,
            LEGACY_LOG_ID,
        )
        await conn.execute(
            """
            INSERT INTO baselinker_sync_state (workspace_id, last_log_id)
            VALUES ($1, $2)
            """,
            ws,
            LEGACY_LOG_ID,
        )
        await conn.execute(
            """
            INSERT INTO scheduled_messages (workspace_id, client_id, message_type,
                message_content, scheduled_for)
            VALUES ($1, $2, 'reorder', 'Sua creatina está acabando?',
                NOW() + INTERVAL '20 days')
            """,
            ws,
            client,
        )
    finally:
        await conn.close()
    yield url
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def _table_rows(conn: asyncpg.Connection, table: str) -> list[dict[str, object]]:
    rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY id")
    return [dict(r) for r in rows]


async def test_migrations_keep_the_seeds_rows(seed_database: str) -> None:
    """Migrating a database that already has the seed's tables, twice, keeps
    every existing row and value and adds the sync's columns and indexes."""
    seeded = ("workspaces", "clients", "event_queue", "baselinker_sync_state")
    tables = (*seeded, "scheduled_messages")
    conn = await asyncpg.connect(seed_database)
    try:
        before = {t: await _table_rows(conn, t) for t in tables}
        await asyncio.to_thread(migrate, seed_database)
        await asyncio.to_thread(migrate, seed_database)
        after = {t: await _table_rows(conn, t) for t in tables}
        columns = {
            (r["table_name"], r["column_name"])
            for r in await conn.fetch(
                """
                SELECT table_name, column_name FROM information_schema.columns
                WHERE table_schema = 'public'
                """
            )
        }
        indexes = {
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()

    assert all(len(before[t]) == 1 for t in tables)
    for table in tables:
        assert len(after[table]) == len(before[table]), table
        for old, new in zip(before[table], after[table], strict=True):
            assert {k: new[k] for k in old} == old, table
    assert ADDED_COLUMNS - columns == set()
    assert ADDED_INDEXES - indexes == set()
    seed_indexes = {"idx_event_queue_status", "idx_scheduled_messages_scheduled_for"}
    assert seed_indexes - indexes == set()
    assert after["baselinker_sync_state"][0]["paused"] is False
    assert applied == len(list(MIGRATIONS_DIR.glob("*.sql")))


async def test_migrated_seed_ledger_takes_a_logged_id_for_a_workspace(
    seed_database: str,
) -> None:
    """After migrating a seed database, the ledger keys entries by workspace and
    log id: a workspace can ledger a log id the edge-function era already holds
    (and two workspaces the same log id) instead of failing on the seed's global
    UNIQUE (event_log_id)."""
    await asyncio.to_thread(migrate, seed_database)
    pool = await create_pool(seed_database, size=2)
    try:
        entry = JournalEntry.model_validate(
            {
                "log_id": LEGACY_LOG_ID,
                "log_type": 1,
                "order_id": 7_000_001,
                "object_id": 0,
                "date": int(datetime.now(UTC).timestamp()),
            }
        )
        shops = [f"seed-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        batches = [
            await Ledger(pool).record_journal(
                JournalPage(workspace=shop, entries=[entry], full=False)
            )
            for shop in shops
        ]
        ledgered = await pool.fetch(
            "SELECT workspace_id FROM event_queue WHERE event_log_id = $1",
            LEGACY_LOG_ID,
        )
    finally:
        await pool.close()

    assert [b.to_process for b in batches] == [[entry], [entry]]
    assert len(ledgered) == 3


async def test_embedded_postgres_accepts_connections_and_migrations(
    tmp_path: Path,
) -> None:
    """The embedded PostgreSQL the project starts without DATABASE_URL runs from
    its own data directory, accepts connections and takes the migrations."""
    url = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    conn = await asyncpg.connect(url)
    try:
        data_dir = await conn.fetchval("SHOW data_directory")
        name = f"blt_embedded_{uuid.uuid4().hex[:8]}"
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    # pytest's tmp_path is already resolved, as the server's data directory is.
    assert data_dir == str(tmp_path / "postgres")

    migrated = _with_database(url, name)
    await asyncio.to_thread(migrate, migrated)
    conn = await asyncpg.connect(migrated)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await conn.close()
    assert {"event_queue", "orders", "order_snapshots", "schema_migrations"} <= tables
