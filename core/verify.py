"""Compare what the database holds with what BaseLinker (the simulator) holds."""

from decimal import Decimal
from typing import Any

import asyncpg

from baselinker.models import Order
from core.identity import identity_for_order
from core.workspaces import workspace_id

Line = tuple[int, Decimal, str, str]


async def compare_with_truth(
    pool: asyncpg.Pool, workspace: str, truth: dict[int, dict[str, Any]]
) -> list[str]:
    """Every difference between the workspace's rows and the orders' truth."""
    ws = await workspace_id(pool, workspace)
    rows = {
        r["order_id_base"]: r
        for r in await pool.fetch(
            """
            SELECT o.order_id_base, o.status_id, o.payment_done, o.total_amount,
                o.confirmed, c.identity_key
            FROM orders o LEFT JOIN clients c ON c.id = o.client_id
            WHERE o.workspace_id = $1
            """,
            ws,
        )
    }
    lines = await _lines(pool, ws)
    mismatches: list[str] = []
    expected_clients: set[str] = set()
    for order_id, raw in sorted(truth.items()):
        expected = Order.model_validate(raw)
        identity = identity_for_order(expected)
        if identity is not None:
            expected_clients.add(identity.key)
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
    mismatches += [
        f"order {o}: not in BaseLinker" for o in sorted(set(rows) - set(truth))
    ]
    stored_clients = await pool.fetchval(
        "SELECT count(*) FROM clients WHERE workspace_id = $1", ws
    )
    if stored_clients != len(expected_clients):
        mismatches.append(
            f"clients: {stored_clients} stored, {len(expected_clients)} expected"
        )
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
