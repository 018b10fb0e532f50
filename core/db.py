"""The PostgreSQL connection pool and schema migrations (run by dbmate)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSONB in and out as Python objects rather than strings.
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def create_pool(database_url: str, size: int = 10) -> asyncpg.Pool:
    """One pool per process; every activity borrows from it."""
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=size, init=_init_connection
    )
    assert pool is not None
    return pool


def dbmate_url(database_url: str) -> str:
    """Rewrite a libpq-style URL into the form dbmate's driver understands.

    asyncpg and libpq name a Unix socket directory `host=`; dbmate wants
    `socket=`, and it defaults to TLS, which a local server does not offer.
    """
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    if "host" in query:
        query["socket"] = query.pop("host")
    query.setdefault("sslmode", "disable")
    scheme = "postgres" if parts.scheme.startswith("postgres") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


def _dbmate_binary() -> str:
    beside_python = Path(sys.executable).with_name("dbmate")
    return str(beside_python) if beside_python.exists() else "dbmate"


def migrate(database_url: str) -> str:
    """Apply pending migrations; returns dbmate's report."""
    result = subprocess.run(
        [
            _dbmate_binary(),
            "--no-dump-schema",
            "--migrations-dir",
            str(MIGRATIONS_DIR),
            "up",
        ],
        env={**os.environ, "DATABASE_URL": dbmate_url(database_url)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        msg = f"migrations failed: {result.stderr.strip() or result.stdout.strip()}"
        raise RuntimeError(msg)
    return result.stdout
