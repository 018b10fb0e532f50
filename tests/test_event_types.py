"""Every journal type, one family at a time: the simulated account is changed
directly, the poller follows its journal, and the database ends as BaseLinker."""

from decimal import Decimal
from typing import Any

import asyncpg

from baselinker.models import EVENT_NAMES
from core.verify import compare_with_truth
from core.workspaces import workspace_id
from simulators.baselinker import Order, OrderLine
from tests.conftest import Pipeline, ledger_rows

WHEY = OrderLine(
    product_id=3_201_001,
    name="Whey Protein Concentrado 900g",
    price_brutto=Decimal("149.90"),
    quantity=1,
    sku="SUP-001",
)
CREATINE = OrderLine(
    product_id=3_201_003,
    name="Creatina Monohidratada 300g",
    price_brutto=Decimal("99.90"),
    quantity=2,
    sku="SUP-003",
)
SERUM = OrderLine(
    product_id=3_301_010,
    name="Sérum Facial Vitamina C 30ml",
    price_brutto=Decimal("79.90"),
    quantity=1,
    sku="COS-010",
)


def shop_order(email: str, *lines: OrderLine, **fields: Any) -> Order:
    """A confirmed order of `lines` (creatine when none) by `email`."""
    return Order(
        products=list(lines or [CREATINE]),
        email=email,
        delivery_fullname="Ana Souza",
        delivery_address="Rua Harmonia, 120",
        delivery_city="São Paulo",
        delivery_postcode="05435-000",
        delivery_price=Decimal("19.90"),
        **fields,
    )


async def fetch(p: Pipeline, query: str, *args: Any) -> list[asyncpg.Record]:
    """Rows of `query`, whose $1 is the pipeline's workspace id."""
    ws = await workspace_id(p.pool, p.workspace)
    return await p.pool.fetch(query, ws, *args)


async def one(p: Pipeline, query: str, *args: Any) -> asyncpg.Record:
    """The single row of `query` ($1 is the workspace id)."""
    rows = await fetch(p, query, *args)
    assert len(rows) == 1, f"{len(rows)} rows for {args}"
    return rows[0]


async def order_row(p: Pipeline, order_id: int) -> asyncpg.Record:
    """The order's row joined with its client's identity and flags."""
    return await one(
        p,
        """
        SELECT o.*, c.identity_key, c.blacklisted_at
        FROM orders o LEFT JOIN clients c ON c.id = o.client_id
        WHERE o.workspace_id = $1 AND o.order_id_base = $2
        """,
        order_id,
    )


async def lines_of(p: Pipeline, order_id: int) -> dict[int, tuple[int, Decimal]]:
    """The order's stored lines: order_product_id -> (quantity, unit price)."""
    rows = await fetch(
        p,
        """
        SELECT l.order_product_id, l.quantidade_produtos, l.preco_unitario
        FROM orders_products l JOIN orders o ON o.id = l.order_id
        WHERE o.workspace_id = $1 AND o.order_id_base = $2
        """,
        order_id,
    )
    return {
        r["order_product_id"]: (r["quantidade_produtos"], r["preco_unitario"])
        for r in rows
    }


def simulated_lines(p: Pipeline, order_id: int) -> dict[int, tuple[int, Decimal]]:
    """The same view of the order's lines as BaseLinker holds them."""
    order = p.simulator.account.orders[order_id]
    return {
        line.order_product_id: (line.quantity, line.price_brutto)
        for line in order.products
    }


async def statuses_by_log_id(p: Pipeline) -> dict[int, tuple[int, str]]:
    """Ledger: log_id -> (event type, status)."""
    return {
        log_id: (row["event_type"], row["status"])
        for log_id, row in (await ledger_rows(p)).items()
    }


async def assert_matches_baselinker(p: Pipeline) -> None:
    """Orders, documents and links equal the simulator's full truth."""
    sim = p.simulator
    mismatches = await compare_with_truth(
        p.pool, p.workspace, sim.truth(), sim.full_truth()
    )
    assert mismatches == []


async def test_invoice_issued_edited_and_deleted(pipeline: Pipeline) -> None:
    """An issued invoice (7) lands with BaseLinker's number and total; an edit
    (21) of its buyer name and address shows in the row; a deleted one (19)
    keeps its row, marked deleted_at."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("nota@example.com", WHEY))
    account.add_payment(order_id, account.orders[order_id].total())
    invoice_id = account.issue_invoice(order_id)
    number = account.invoices[invoice_id].number
    invoice_sql = "SELECT * FROM invoices WHERE workspace_id = $1 AND invoice_id = $2"
    await pipeline.start_poller()

    await pipeline.drain()
    issued = await one(pipeline, invoice_sql, invoice_id)
    assert issued["number"] == number
    assert issued["order_id_base"] == order_id
    assert issued["total_price_brutto"] == account.orders[order_id].total()
    assert issued["buyer_name"] == "Ana Souza"
    assert issued["deleted_at"] is None

    edited_log = account.edit_invoice(
        invoice_id,
        changes={
            "invoice_fullname": "Ana Souza Lima",
            "invoice_address": "Rua Harmonia, 120 - Casa 2",
        },
    )
    await pipeline.drain()
    edited = await one(pipeline, invoice_sql, invoice_id)
    assert edited["buyer_name"] == "Ana Souza Lima"
    assert edited["payload"]["invoice_address"] == "Rua Harmonia, 120 - Casa 2"
    assert edited["number"] == number
    assert edited["deleted_at"] is None

    deleted_log = account.delete_invoice(invoice_id)
    await pipeline.drain()
    deleted = await one(pipeline, invoice_sql, invoice_id)
    assert deleted["deleted_at"] is not None
    assert deleted["number"] == number
    assert deleted["buyer_name"] == "Ana Souza Lima"

    ledger = await statuses_by_log_id(pipeline)
    assert ledger[edited_log] == (21, "completed")
    assert ledger[deleted_log] == (19, "completed")
    assert {status for _, status in ledger.values()} == {"completed"}
    assert {log_type for log_type, _ in ledger.values()} == {1, 3, 7, 19, 21}
    await assert_matches_baselinker(pipeline)


async def test_receipt_issued_and_deleted(pipeline: Pipeline) -> None:
    """A fiscal receipt (8) lands with its full number and total; a deleted
    one (20) keeps its row, marked deleted_at."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("cupom@example.com", SERUM))
    account.add_payment(order_id, account.orders[order_id].total())
    receipt_id = account.issue_receipt(order_id)
    full_nr = account.receipts[receipt_id].receipt_full_nr
    receipt_sql = "SELECT * FROM receipts WHERE workspace_id = $1 AND receipt_id = $2"
    await pipeline.start_poller()

    await pipeline.drain()
    issued = await one(pipeline, receipt_sql, receipt_id)
    assert issued["receipt_full_nr"] == full_nr
    assert issued["order_id_base"] == order_id
    assert issued["total_price_brutto"] == account.orders[order_id].total()
    assert issued["deleted_at"] is None

    deleted_log = account.delete_receipt(receipt_id)
    await pipeline.drain()
    deleted = await one(pipeline, receipt_sql, receipt_id)
    assert deleted["deleted_at"] is not None
    assert deleted["receipt_full_nr"] == full_nr

    ledger = await statuses_by_log_id(pipeline)
    assert ledger[deleted_log] == (20, "completed")
    assert {log_type for log_type, _ in ledger.values()} == {1, 3, 8, 20}
    assert {status for _, status in ledger.values()} == {"completed"}
    await assert_matches_baselinker(pipeline)


async def test_package_created_tracked_and_deleted(pipeline: Pipeline) -> None:
    """A courier package (9) lands with its tracking number; each tracking
    change (22) updates tracking_status; a deleted package (10) keeps its row,
    marked deleted_at, while the order's other package stays live."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("envio@example.com", WHEY, SERUM))
    kept = account.create_package(order_id, "correios")
    dropped = account.create_package(order_id, "jadlog")
    package_sql = "SELECT * FROM packages WHERE workspace_id = $1 AND package_id = $2"
    await pipeline.start_poller()

    await pipeline.drain()
    created = await one(pipeline, package_sql, kept)
    assert created["courier_package_nr"] == account.packages[kept].courier_package_nr
    assert created["courier_code"] == "correios"
    assert created["tracking_status"] == 1
    assert created["deleted_at"] is None

    account.set_package_status(kept, 2)
    await pipeline.drain()
    assert (await one(pipeline, package_sql, kept))["tracking_status"] == 2

    account.set_package_status(kept, 5)
    deleted_log = account.delete_package(dropped)
    await pipeline.drain()
    delivered = await one(pipeline, package_sql, kept)
    assert delivered["tracking_status"] == 5
    assert delivered["deleted_at"] is None
    gone = await one(pipeline, package_sql, dropped)
    assert gone["deleted_at"] is not None
    assert gone["courier_code"] == "jadlog"

    ledger = await statuses_by_log_id(pipeline)
    assert ledger[deleted_log] == (10, "completed")
    assert [t for t, _ in ledger.values()].count(22) == 2
    assert {status for _, status in ledger.values()} == {"completed"}
    await assert_matches_baselinker(pipeline)


async def test_a_new_package_is_read_from_its_order_in_bulk(
    pipeline: Pipeline,
) -> None:
    """A package created (9) alone on its order takes courier and number from
    the order's snapshot and its status from the bulk history call: no
    getOrderPackages call for it."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("pacote@example.com", WHEY))
    package_id = account.create_package(order_id, "jadlog")
    await pipeline.start_poller()

    await pipeline.drain()

    row = await one(
        pipeline,
        "SELECT * FROM packages WHERE workspace_id = $1 AND package_id = $2",
        package_id,
    )
    assert row["courier_code"] == "jadlog"
    assert row["courier_package_nr"] == account.packages[package_id].courier_package_nr
    assert row["tracking_status"] == 1
    assert pipeline.simulator.calls["getOrderPackages"] == 0
    assert pipeline.simulator.calls["getCourierPackagesStatusHistory"] == 1
    await assert_matches_baselinker(pipeline)


async def test_a_package_the_journal_had_not_shown_yet_is_set_right(
    pipeline: Pipeline,
) -> None:
    """When the order already shows a newer package than the journal read had
    (created in between), the older one first takes the newer's number; the
    newer's own entry finds the clash and lists the order's packages, which
    sets both right."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("corrida@example.com", SERUM))
    first = account.create_package(order_id, "correios")
    second = account.create_package(order_id, "jadlog")
    # The journal has not written the second entry yet when the poller reads.
    late = account.journal.pop()
    await pipeline.start_poller()
    await pipeline.drain()
    package_sql = "SELECT * FROM packages WHERE workspace_id = $1 AND package_id = $2"
    early = await one(pipeline, package_sql, first)
    assert early["courier_package_nr"] == account.packages[second].courier_package_nr

    account.journal.append(late)
    await pipeline.drain()

    for package_id in (first, second):
        row = await one(pipeline, package_sql, package_id)
        truth = account.packages[package_id]
        assert row["courier_package_nr"] == truth.courier_package_nr
        assert row["courier_code"] == truth.courier_code
    assert pipeline.simulator.calls["getOrderPackages"] == 1
    await assert_matches_baselinker(pipeline)


async def test_lines_added_edited_and_removed(pipeline: Pipeline) -> None:
    """A line added (12) appears, a line whose quantity and price were edited
    (13) carries the new values, and a removed line (14) is gone from
    orders_products; the order total follows."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("linhas@example.com", WHEY, CREATINE))
    first, second = (
        line.order_product_id for line in account.orders[order_id].products
    )
    await pipeline.start_poller()
    await pipeline.drain()
    assert set(await lines_of(pipeline, order_id)) == {first, second}

    added = account.add_product(order_id, SERUM)
    account.edit_product(order_id, first, quantity=3, price_brutto=Decimal("134.91"))
    removed_log = account.remove_product(order_id, second)
    await pipeline.drain()

    lines = await lines_of(pipeline, order_id)
    assert lines == {first: (3, Decimal("134.91")), added: (1, Decimal("79.90"))}
    assert lines == simulated_lines(pipeline, order_id)
    row = await order_row(pipeline, order_id)
    # Three at the new price (404.73), the serum (79.90), the delivery (19.90).
    assert row["total_amount"] == Decimal("504.53")
    ledger = await statuses_by_log_id(pipeline)
    assert ledger[removed_log] == (14, "completed")
    assert sorted(t for t, _ in ledger.values()) == [1, 12, 13, 14]
    assert {status for _, status in ledger.values()} == {"completed"}
    await assert_matches_baselinker(pipeline)


async def test_delivery_and_order_data_edits_resync_order_and_client(
    pipeline: Pipeline,
) -> None:
    """A delivery edit (11) and an order-data edit (16) bring the order up to
    date: a new e-mail gives the order the client of that e-mail, while the
    old client's row stays. A form download (2) changes nothing and completes."""
    account = pipeline.simulator.account
    order_id = account.create_order(
        shop_order("antigo@example.com", WHEY, phone="(11) 91234-5678")
    )
    await pipeline.start_poller()
    await pipeline.drain()
    before = await order_row(pipeline, order_id)
    assert before["identity_key"] == "email:antigo@example.com"

    account.edit_delivery(
        order_id,
        changes={
            "delivery_address": "Avenida Paulista, 1578 - Bela Vista",
            "delivery_postcode": "01310-200",
            "phone": "(11) 99876-5432",
        },
    )
    account.edit_order_data(order_id, changes={"email": "Novo@Example.com"})
    account.download_dof(order_id)
    await pipeline.drain()

    after = await order_row(pipeline, order_id)
    assert after["identity_key"] == "email:novo@example.com"
    assert after["client_id"] != before["client_id"]
    assert after["buyer_email_raw"] == "Novo@Example.com"
    assert after["buyer_phone_raw"] == "(11) 99876-5432"
    stored = after["metadata"]["baselinker_data"]
    assert stored["delivery_address"] == "Avenida Paulista, 1578 - Bela Vista"
    assert stored["delivery_postcode"] == "01310-200"
    clients = await fetch(
        pipeline,
        "SELECT id, identity_key, phone FROM clients WHERE workspace_id = $1",
    )
    by_key = {c["identity_key"]: c for c in clients}
    assert set(by_key) == {"email:antigo@example.com", "email:novo@example.com"}
    assert by_key["email:antigo@example.com"]["id"] == before["client_id"]
    assert by_key["email:novo@example.com"]["phone"] == "+5511998765432"
    ledger = await statuses_by_log_id(pipeline)
    assert sorted(t for t, _ in ledger.values()) == [1, 2, 11, 16]
    assert {status for _, status in ledger.values()} == {"completed"}
    await assert_matches_baselinker(pipeline)


async def test_removed_order_is_kept_marked_and_unsynced_one_ignored(
    pipeline: Pipeline,
) -> None:
    """Removing a synced order (4) keeps its row with removed_at set; every
    entry of an order removed before it was ever synced ends `ignored` with a
    reason, and no row is made for it."""
    account = pipeline.simulator.account
    synced = account.create_order(shop_order("fica@example.com"))
    await pipeline.start_poller()
    await pipeline.drain()
    assert (await order_row(pipeline, synced))["removed_at"] is None

    never = account.create_order(shop_order("nunca@example.com"))
    account.add_payment(never, Decimal("50.00"))
    account.remove_order(never)
    removal = account.remove_order(synced)
    await pipeline.drain()

    row = await order_row(pipeline, synced)
    assert row["removed_at"] is not None
    assert row["status_id"] == 1001
    unsynced = await fetch(
        pipeline,
        "SELECT id FROM orders WHERE workspace_id = $1 AND order_id_base = $2",
        never,
    )
    assert unsynced == []
    rows = (await ledger_rows(pipeline)).values()
    assert {r["event_log_id"]: r["status"] for r in rows}[removal] == "completed"
    ignored = [r for r in rows if r["order_id"] == never]
    assert sorted(r["event_type"] for r in ignored) == [1, 3, 4]
    for entry in ignored:
        assert entry["status"] == "ignored"
        assert entry["ignore_reason"] == (
            f"order {never} is no longer returned by BaseLinker"
        )
    await assert_matches_baselinker(pipeline)


async def test_merged_order_is_linked_and_survivor_gets_its_lines(
    pipeline: Pipeline,
) -> None:
    """After a merge (5) the absorbed order's row is kept, marked removed and
    linked to the survivor, which holds its own and the moved lines."""
    account = pipeline.simulator.account
    survivor = account.create_order(shop_order("junta@example.com", WHEY))
    absorbed = account.create_order(shop_order("junta@example.com", SERUM, CREATINE))
    await pipeline.start_poller()
    await pipeline.drain()

    merge = account.merge_orders(survivor, absorbed)
    await pipeline.drain()

    gone = await order_row(pipeline, absorbed)
    assert gone["merged_into_order_id_base"] == survivor
    assert gone["removed_at"] is not None
    kept = await order_row(pipeline, survivor)
    assert kept["removed_at"] is None
    assert kept["merged_into_order_id_base"] is None
    lines = await lines_of(pipeline, survivor)
    assert lines == simulated_lines(pipeline, survivor)
    assert sorted(price for _, price in lines.values()) == [
        Decimal("79.90"),
        Decimal("99.90"),
        Decimal("149.90"),
    ]
    assert (await statuses_by_log_id(pipeline))[merge] == (5, "completed")
    await assert_matches_baselinker(pipeline)


async def test_split_and_copied_orders_are_linked_and_their_reactions_muted(
    pipeline: Pipeline,
) -> None:
    """A split (6) and a copy (17) sync the new orders with split_from and
    copied_from links; their one-time new-order reactions are claimed as
    suppressed, so no customer message follows, while the original's is not."""
    account = pipeline.simulator.account
    original = account.create_order(
        shop_order("divide@example.com", WHEY, CREATINE, SERUM)
    )
    await pipeline.start_poller()
    await pipeline.drain()

    moving = account.orders[original].products[1].order_product_id
    split = account.split_order(original, [moving])
    copy = account.copy_order(original)
    await pipeline.drain()

    assert (await order_row(pipeline, split))["split_from_order_id_base"] == original
    assert (await order_row(pipeline, copy))["copied_from_order_id_base"] == original
    assert await lines_of(pipeline, split) == simulated_lines(pipeline, split)
    assert await lines_of(pipeline, original) == simulated_lines(pipeline, original)
    reactions = {
        int(r["subject"]): r
        for r in await fetch(
            pipeline,
            """
            SELECT subject, owner_log_id, suppressed_reason FROM reactions
            WHERE workspace_id = $1 AND kind = 'new_order'
            """,
        )
    }
    assert set(reactions) == {original, split, copy}
    assert reactions[original]["suppressed_reason"] is None
    assert reactions[split]["suppressed_reason"] == f"split_from {original}"
    assert reactions[copy]["suppressed_reason"] == f"copied_from {original}"
    ledger = await statuses_by_log_id(pipeline)
    assert sorted(t for t, _ in ledger.values()) == [1, 6, 17]
    assert reactions[split]["owner_log_id"] in ledger
    assert {status for _, status in ledger.values()} == {"completed"}
    await assert_matches_baselinker(pipeline)


async def test_blacklisted_buyer_is_flagged(pipeline: Pipeline) -> None:
    """Blacklisting a buyer (15) sets blacklisted_at on their client row."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("caloteiro@example.com"))
    honest = account.create_order(shop_order("honesto@example.com"))
    await pipeline.start_poller()
    await pipeline.drain()
    assert (await order_row(pipeline, order_id))["blacklisted_at"] is None

    account.blacklist_buyer(order_id)
    await pipeline.drain()

    assert (await order_row(pipeline, order_id))["blacklisted_at"] is not None
    assert (await order_row(pipeline, honest))["blacklisted_at"] is None
    await assert_matches_baselinker(pipeline)


async def test_unknown_type_and_missing_order_are_ignored_and_polling_goes_on(
    pipeline: Pipeline,
) -> None:
    """An undocumented type (99) is ignored naming the type, an entry for
    order 0 is ignored for its missing order id, and the poller goes on to
    sync the next orders."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order("antes@example.com"))
    unknown = account.add_journal_entry(99, order_id, 1)
    orphan = account.add_journal_entry(3, 0)
    await pipeline.start_poller()
    await pipeline.drain()

    later = account.create_order(shop_order("depois@example.com"))
    await pipeline.drain()

    ledger = await ledger_rows(pipeline)
    assert ledger[unknown]["status"] == "ignored"
    assert ledger[unknown]["ignore_reason"] == "unknown event type 99"
    assert ledger[orphan]["status"] == "ignored"
    assert ledger[orphan]["ignore_reason"] == "journal entry carries no order id"
    assert ledger[orphan]["workflow_id"] is None
    assert (await order_row(pipeline, later))["removed_at"] is None
    assert [r["status"] for r in ledger.values()].count("completed") == 2
    await assert_matches_baselinker(pipeline)


async def test_disordered_journal_converges_once_per_entry(pipeline: Pipeline) -> None:
    """With journal pages shuffled and partly repeated, a 60-order shop with
    every kind of event converges to BaseLinker's state with exactly one ledger
    row per journal entry and nothing failed."""
    sim = pipeline.simulator
    sim.journal_disorder = True
    sim.seed_scenario(orders=60)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    journal_ids = [entry.log_id for entry in sim.account.journal]
    ledger = await ledger_rows(pipeline)
    assert list(ledger) == sorted(set(journal_ids))
    assert len(ledger) == len(journal_ids)
    assert counts["failed"] == 0
    assert counts["completed"] + counts["ignored"] == len(journal_ids)
    await assert_matches_baselinker(pipeline)


async def test_full_mix_covers_every_documented_type(pipeline: Pipeline) -> None:
    """As `starter.py demo` does: a shop whose journal holds every documented
    type (1 to 22) is processed with nothing failed and no mismatch."""
    sim = pipeline.simulator
    # 70 orders of seed 20 write every type; a bigger shop only takes longer
    # (about 15 entries a second on two cores).
    sim.seed_scenario(seed=20, orders=70)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    types = {r["event_type"] for r in (await ledger_rows(pipeline)).values()}
    assert types == set(EVENT_NAMES)
    assert counts["failed"] == 0
    assert counts["completed"] + counts["ignored"] == len(sim.account.journal)
    await assert_matches_baselinker(pipeline)
