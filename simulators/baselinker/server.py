"""BaseLinker's connector.php served by aiohttp on loopback, with control endpoints.

BaseLinkerSimulator runs on the caller's event loop; `/_sim/*` lets another
process read the truth, seed orders and move the clock.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from simulators.baselinker.drift import apply_drift
from simulators.baselinker.scenario import Player, generate_scenario, live_actions, play
from simulators.baselinker.state import (
    Account,
    Clock,
    InvoiceQuery,
    JournalEntry,
    OrderQuery,
    RateLimiter,
    ReceiptQuery,
)

Reply = dict[str, Any]
Params = dict[str, Any]

ERROR_BAD_TOKEN = "ERROR_BAD_TOKEN"
ERROR_BLOCKED_TOKEN = "ERROR_BLOCKED_TOKEN"
ERROR_PARAMETERS = "ERROR_PARAMETERS"
ERROR_RECEIPT_NOT_FOUND = "ERROR_RECEIPT_NOT_FOUND"
ERROR_UNKNOWN_METHOD = "ERROR_UNKNOWN_METHOD"
BLOCK_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PACKAGE_IDS_LIMIT = 100
# With journal disorder on, the share of a page's entries sent twice.
DISORDER_REPEAT_SHARE = 0.15


class MethodError(Exception):
    """A method refuses the call; the reply is this error code and message."""

    code = "ERROR"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ParameterError(MethodError):
    """A method parameter is missing or of a type BaseLinker would refuse."""

    code = ERROR_PARAMETERS


def _error(code: str, message: str) -> Reply:
    return {"status": "ERROR", "error_code": code, "error_message": message}


def _as_int(value: Any, name: str) -> int:
    # PHP casts numeric strings, so the real API takes "123" as well as 123.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ParameterError(f"Parameter {name} must be an integer")


def _int(params: Params, name: str) -> int | None:
    value = params.get(name)
    return None if value is None else _as_int(value, name)


def _required_int(params: Params, name: str) -> int:
    if params.get(name) is None:
        raise ParameterError(f"Missing parameter: {name}")
    return _as_int(params[name], name)


def _int_list(params: Params, name: str) -> list[int] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ParameterError(f"Parameter {name} must be a list of integers")
    return [_as_int(item, name) for item in value]


def _bool(params: Params, name: str) -> bool:
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(value))
    if value in ("true", "false"):
        return value == "true"
    raise ParameterError(f"Parameter {name} must be a boolean")


def _str(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ParameterError(f"Parameter {name} must be a string")


class BaseLinkerSimulator:
    """A BaseLinker account behind a real HTTP server.

    Counts every request by method name (errors included); `blocked` counts the
    ERROR_BLOCKED_TOKEN replies among them.
    """

    def __init__(
        self,
        token: str = "sim-token",
        requests_per_minute: int = 100,
        seed: int = 1,
        drift: bool = True,
        block_timezone: str = "Europe/Warsaw",
        journal_enabled: bool = True,
        clock: Clock | None = None,
        journal_disorder: bool = False,
    ) -> None:
        self.token = token
        self.seed = seed
        self.drift = drift
        self.journal_enabled = journal_enabled
        self.journal_disorder = journal_disorder
        self.block_timezone = ZoneInfo(block_timezone)
        self.clock = clock or Clock()
        self.account = Account(self.clock)
        self.limiter = RateLimiter(self.clock, requests_per_minute)
        self.calls: Counter[str] = Counter()
        self.blocked = 0
        self.url = ""
        self._drift_rng = random.Random(seed)
        self._disorder_rng = random.Random(f"{seed}/disorder")
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[Params], Reply]] = {
            "getJournalList": self._get_journal_list,
            "getOrders": self._get_orders,
            "getOrderStatusList": self._get_order_status_list,
            "getInvoices": self._get_invoices,
            "getReceipts": self._get_receipts,
            "getReceipt": self._get_receipt,
            "getOrderPackages": self._get_order_packages,
            "getCourierPackagesStatusHistory": self._get_packages_history,
        }

    @property
    def total_calls(self) -> int:
        """Every connector.php request served, whatever its reply."""
        return sum(self.calls.values())

    def truth(self) -> dict[int, dict[str, Any]]:
        """Canonical snapshot of every existing order, keyed by order_id."""
        return self.account.truth()

    def full_truth(self, observable_from: float | None = None) -> dict[str, Any]:
        """Canonical snapshot of orders, invoices, receipts, packages and links
        (without what only journal entries older than `observable_from` show)."""
        return self.account.full_truth(observable_from)

    def stats(self) -> dict[str, Any]:
        """Call counters and account size, as GET /_sim/stats returns them."""
        return {
            "calls": dict(self.calls),
            "total": self.total_calls,
            "blocked": self.blocked,
            "orders": len(self.account.orders),
            "invoices": len(self.account.invoices),
            "receipts": len(self.account.receipts),
            "packages": len(self.account.packages),
            "journal": len(self.account.journal),
            "last_log_id": self.account.last_log_id,
            "now": self.clock.now(),
        }

    def seed_scenario(
        self,
        seed: int | None = None,
        orders: int = 100,
        span_seconds: float = 3600,
        anomalies: bool = False,
        types: Iterable[int] | None = None,
    ) -> list[int]:
        """Play a whole scenario that ends now; return the ids of its orders.

        `types` limits the journal types it generates (see generate_scenario);
        orders made by splits and copies are not in the returned list.
        """
        start = self.clock.now() - span_seconds
        actions = generate_scenario(
            self.seed if seed is None else seed,
            orders,
            start,
            span_seconds,
            anomalies,
            types=types,
        )
        return play(self.account, actions)

    async def run_live(
        self,
        interval: tuple[float, float] = (2.0, 6.0),
        seed: int | None = None,
        types: Iterable[int] | None = None,
    ) -> None:
        """Play a live shop, one action every `interval` seconds, until cancelled."""
        seed = self.seed if seed is None else seed
        pace = random.Random(seed)
        player = Player(self.account)
        actions = live_actions(seed, self.clock, types=types)
        while True:
            await asyncio.sleep(pace.uniform(*interval))
            player.apply(next(actions))

    def make_app(self) -> web.Application:
        """The aiohttp application: connector.php and the /_sim control routes."""
        app = web.Application()
        app.router.add_post("/connector.php", self._connector)
        app.router.add_get("/_sim/truth", self._control_truth)
        app.router.add_get("/_sim/full_truth", self._control_full_truth)
        app.router.add_get("/_sim/stats", self._control_stats)
        app.router.add_post("/_sim/seed", self._control_seed)
        app.router.add_post("/_sim/clock", self._control_clock)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); return connector.php's URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{bound_port}/connector.php"
        return self.url

    async def stop(self) -> None:
        """Close the server and its connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BaseLinkerSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _connector(self, request: web.Request) -> web.Response:
        form = await request.post()
        method = str(form.get("method", ""))
        self.calls[method] += 1
        raw = form.get("parameters")
        reply = self._serve(
            request.headers.get("X-BLToken"), method, None if raw is None else str(raw)
        )
        if reply.get("error_code") == ERROR_BLOCKED_TOKEN:
            self.blocked += 1
        return web.json_response(reply)

    def _serve(self, token: str | None, method: str, raw: str | None) -> Reply:
        if token != self.token:
            return _error(ERROR_BAD_TOKEN, "Invalid user token")
        until = self.limiter.check(token)
        if until is not None:
            ends = datetime.fromtimestamp(until, self.block_timezone)
            return _error(
                ERROR_BLOCKED_TOKEN,
                "Query limit exceeded, token blocked until "
                + ends.strftime(BLOCK_TIME_FORMAT),
            )
        handler = self._methods.get(method)
        if handler is None:
            return _error(ERROR_UNKNOWN_METHOD, f"Unknown method: {method}")
        try:
            params = json.loads(raw) if raw else {}
        except ValueError:
            return _error(ERROR_PARAMETERS, "Parameters are not valid JSON")
        if params == []:
            params = {}  # PHP clients encode an empty array as []
        if not isinstance(params, dict):
            return _error(ERROR_PARAMETERS, "Parameters must be a JSON object")
        try:
            body = handler(params)
        except MethodError as error:
            return _error(error.code, str(error))
        if self.drift:
            body = apply_drift(body, self._drift_rng)
        return {"status": "SUCCESS", **body}

    def _get_journal_list(self, params: Params) -> Reply:
        last_log_id = _required_int(params, "last_log_id")
        logs_types = _int_list(params, "logs_types")
        order_id = _int(params, "order_id")
        if not self.journal_enabled:
            return {"logs": []}
        entries = self.account.query_journal(last_log_id, logs_types, order_id)
        if self.journal_disorder:
            entries = self._disorder(entries)
        return {"logs": [entry.to_dict() for entry in entries]}

    def _disorder(self, page: list[JournalEntry]) -> list[JournalEntry]:
        """The same entries shuffled, some of them twice."""
        rng = self._disorder_rng
        page = page + [e for e in page if rng.random() < DISORDER_REPEAT_SHARE]
        rng.shuffle(page)
        return page

    def _get_orders(self, params: Params) -> Reply:
        query = OrderQuery(
            order_id=_int(params, "order_id"),
            id_from=_int(params, "id_from"),
            date_from=_int(params, "date_from"),
            date_confirmed_from=_int(params, "date_confirmed_from"),
            status_id=_int(params, "status_id"),
            filter_email=_str(params, "filter_email"),
            get_unconfirmed_orders=_bool(params, "get_unconfirmed_orders"),
        )
        orders = self.account.query_orders(query)
        return {"orders": [order.to_dict() for order in orders]}

    def _get_order_status_list(self, params: Params) -> Reply:
        return {
            "statuses": [
                {
                    "id": status.id,
                    "name": status.name,
                    "name_for_customer": status.name_for_customer,
                    "color": status.color,
                }
                for status in self.account.statuses
            ]
        }

    def _get_invoices(self, params: Params) -> Reply:
        query = InvoiceQuery(
            invoice_id=_int(params, "invoice_id"),
            order_id=_int(params, "order_id"),
            id_from=_int(params, "id_from"),
            date_from=_int(params, "date_from"),
            series_id=_int(params, "series_id"),
        )
        invoices = self.account.query_invoices(query)
        return {"invoices": [invoice.to_dict() for invoice in invoices]}

    def _get_receipts(self, params: Params) -> Reply:
        query = ReceiptQuery(
            series_id=_int(params, "series_id"),
            id_from=_int(params, "id_from"),
            date_from=_int(params, "date_from"),
            date_to=_int(params, "date_to"),
        )
        receipts = self.account.query_receipts(query)
        return {"receipts": [receipt.to_dict() for receipt in receipts]}

    def _get_receipt(self, params: Params) -> Reply:
        receipt_id = _int(params, "receipt_id")
        order_id = _int(params, "order_id")
        if receipt_id is None and order_id is None:
            raise ParameterError("Missing parameter: receipt_id or order_id")
        receipt = self.account.find_receipt(receipt_id, order_id)
        if receipt is None:
            raise MethodError("Receipt not found", ERROR_RECEIPT_NOT_FOUND)
        return receipt.to_dict()

    def _get_order_packages(self, params: Params) -> Reply:
        order_id = _required_int(params, "order_id")
        packages = self.account.order_packages(order_id)
        return {"packages": [package.to_dict() for package in packages]}

    def _get_packages_history(self, params: Params) -> Reply:
        package_ids = _int_list(params, "package_ids")
        if package_ids is None:
            raise ParameterError("Missing parameter: package_ids")
        if len(package_ids) > PACKAGE_IDS_LIMIT:
            raise ParameterError(
                f"Parameter package_ids takes at most {PACKAGE_IDS_LIMIT} ids"
            )
        packages = self.account.packages
        history = {
            str(package_id): [event.to_dict() for event in packages[package_id].history]
            for package_id in package_ids
            if package_id in packages
        }
        return {"packages_history": history}

    async def _control_truth(self, request: web.Request) -> web.Response:
        truth = {str(order_id): order for order_id, order in self.truth().items()}
        return web.json_response(truth)

    async def _control_full_truth(self, request: web.Request) -> web.Response:
        full = {
            name: _string_keys(value) if isinstance(value, dict) else value
            for name, value in self.full_truth().items()
        }
        return web.json_response(full)

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _control_seed(self, request: web.Request) -> web.Response:
        def seed(payload: dict[str, Any]) -> None:
            self.seed_scenario(
                seed=int(payload.get("seed", self.seed)),
                orders=int(payload.get("orders", 100)),
                span_seconds=float(payload.get("span_seconds", 3600)),
                anomalies=bool(payload.get("anomalies", False)),
                types=_types(payload.get("types")),
            )

        return await _control(request, seed, self.stats)

    async def _control_clock(self, request: web.Request) -> web.Response:
        def move(payload: dict[str, Any]) -> None:
            if "set" in payload:
                self.clock.set(float(payload["set"]))
            self.clock.advance(float(payload.get("advance", 0)))

        return await _control(request, move, lambda: {"now": self.clock.now()})


def _string_keys(mapping: dict[Any, Any]) -> dict[str, Any]:
    return {str(key): value for key, value in mapping.items()}


def _types(value: Any) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError("types must be a list of journal types")
    return [int(item) for item in value]


async def _control(
    request: web.Request,
    action: Callable[[dict[str, Any]], None],
    reply: Callable[[], dict[str, Any]],
) -> web.Response:
    """Run a control action on the JSON body; a bad body is a 400, not a crash."""
    try:
        payload = await request.json() if request.can_read_body else {}
        if not isinstance(payload, dict):
            raise TypeError("body must be a JSON object")
        action(payload)
    except (ValueError, TypeError) as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.json_response(reply())
