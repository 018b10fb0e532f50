"""Compare what the database holds with what BaseLinker (the simulator) holds."""

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from baselinker.models import Order
from core.identity import identity_for_order
from core.workspaces import workspace_id

Line = tuple[int, Decimal, str, str]


async def compare_with_truth(
    pool: asyncpg.Pool,
    workspace: str,
    truth: dict[int, dict[str, Any]],
    documents: dict[str, Any] | None = None,
) -> list[str]:
    """Every difference between the workspace's rows and BaseLinker's state.

    `truth` is the orders BaseLinker returns now; `documents`, when given, is
    the simulator's full truth (invoices, receipts, packages, removed, merged,
    split and copied orders, blacklisted buyers).
    """
    ws = await workspace_id(pool, workspace)
    rows = {
        r["order_id_base"]: r
        for r in await pool.fetch(
            """
            SELECT o.order_id_base, o.status_id, o.payment_done, o.total_amount,
                o.confirmed, o.removed_at, o.merged_into_order_id_base,
                o.split_from_order_id_base, o.copied_from_order_id_base,
                c.identity_key, c.blacklisted_at
            FROM orders o LEFT JOIN clients c ON c.id = o.client_id
            WHERE o.workspace_id = $1
            """,
            ws,
        )
    }
    mismatches = await _orders(pool, ws, rows, truth)
    if documents is not None:
        mismatches += _links(rows, truth, documents)
        mismatches += await _documents(pool, ws, documents)
    return mismatches


async def _orders(
    pool: asyncpg.Pool,
    ws: UUID,
    rows: dict[int, asyncpg.Record],
    truth: dict[int, dict[str, Any]],
) -> list[str]:
    lines = await _lines(pool, ws)
    mismatches: list[str] = []
    for order_id, raw in sorted(truth.items()):
        expected = Order.model_validate(raw)
        identity = identity_for_order(expected)
        row = rows.get(order_id)
        if row is None:
            mismatches.append(f"order {order_id}: missing")
            continue
        wanted = {
            "status_id": expected.order_status_id,
            "payment_done": expected.payment_done,
            "total_amount": expected.total,
            "confirmed": expected.confirmed,
            "identity_key": identity.key if identity else None,
            "removed_at": None,
        }
        for field, value in wanted.items():
            if row[field] != value:
                mismatches.append(
                    f"order {order_id}: {field} is {row[field]!r}, expected {value!r}"
                )
        expected_lines = {
            line.order_product_id: (
                line.quantity,
                line.price_brutto,
                line.sku,
                line.name,
            )
            for line in expected.products
        }
        if lines.get(order_id, {}) != expected_lines:
            mismatches.append(f"order {order_id}: lines differ")
    for order_id in sorted(set(rows) - set(truth)):
        if rows[order_id]["removed_at"] is None:
            mismatches.append(f"order {order_id}: gone from BaseLinker, not removed")
    return mismatches


def _links(
    rows: dict[int, asyncpg.Record],
    truth: dict[int, dict[str, Any]],
    full: dict[str, Any],
) -> list[str]:
    """Merged, split and copied orders are linked; blacklisted buyers flagged."""
    mismatches: list[str] = []
    checks = [
        ("merged", "merged_into_order_id_base"),
        ("splits", "split_from_order_id_base"),
        ("copies", "copied_from_order_id_base"),
    ]
    for key, column in checks:
        for order_id, other in full[key].items():
            row = rows.get(int(order_id))
            # An order merged away before it was ever synced has no row to link.
            if row is None and key == "merged":
                continue
            if row is None or row[column] != int(other):
                found = None if row is None else row[column]
                mismatches.append(
                    f"order {order_id}: {column} is {found}, expected {other}"
                )
    for order_id in full["blacklisted_order_ids"]:
        row = rows.get(int(order_id))
        if row is not None and row["identity_key"] and row["blacklisted_at"] is None:
            mismatches.append(f"order {order_id}: buyer not flagged blacklisted")
    return mismatches


#: Per document kind: table, id column, and (truth field, column) pairs compared.
_DOCUMENTS = {
    "invoices": (
        "invoices",
        "invoice_id",
        [("number", "number"), ("total_price_brutto", "total_price_brutto")],
    ),
    "receipts": ("receipts", "receipt_id", [("receipt_full_nr", "receipt_full_nr")]),
    "packages": (
        "packages",
        "package_id",
        [
            ("courier_package_nr", "courier_package_nr"),
            ("tracking_status", "tracking_status"),
        ],
    ),
}


async def _documents(pool: asyncpg.Pool, ws: UUID, full: dict[str, Any]) -> list[str]:
    """Live documents equal BaseLinker's; deleted ones are marked deleted."""
    mismatches: list[str] = []
    for kind, (table, id_column, fields) in _DOCUMENTS.items():
        stored = {
            r[id_column]: r
            for r in await pool.fetch(
                f"SELECT * FROM {table} WHERE workspace_id = $1",  # fixed names
                ws,
            )
        }
        live = {int(k): v for k, v in full[kind].items()}
        for doc_id, expected in sorted(live.items()):
            row = stored.get(doc_id)
            if row is None or row["deleted_at"] is not None:
                mismatches.append(f"{kind} {doc_id}: missing")
                continue
            for field, column in fields:
                if str(row[column]) != str(expected[field]):
                    mismatches.append(
                        f"{kind} {doc_id}: {column} is {row[column]!r}, "
                        f"expected {expected[field]!r}"
                    )
        for doc_id, row in stored.items():
            if doc_id not in live and row["deleted_at"] is None:
                mismatches.append(f"{kind} {doc_id}: deleted in BaseLinker, live here")
    return mismatches


async def _lines(pool: asyncpg.Pool, ws: Any) -> dict[int, dict[int, Line]]:
    by_order: dict[int, dict[int, Line]] = {}
    for r in await pool.fetch(
        """
        SELECT l.order_base_id, l.order_product_id, l.quantidade_produtos,
            l.preco_unitario, COALESCE(l.sku, '') AS sku, l.nome_produto
        FROM orders_products l JOIN orders o ON o.id = l.order_id
        WHERE o.workspace_id = $1
        """,
        ws,
    ):
        by_order.setdefault(r["order_base_id"], {})[r["order_product_id"]] = (
            r["quantidade_produtos"],
            r["preco_unitario"],
            r["sku"],
            r["nome_produto"],
        )
    return by_order
