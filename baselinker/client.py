"""A thin async client for BaseLinker's single `connector.php` endpoint."""

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from baselinker.budget import account_key

#: Error codes that mean the token itself is wrong: retrying cannot help.
TOKEN_ERROR_CODES = frozenset({"ERROR_BAD_TOKEN", "ERROR_USER_ACCOUNT_BLOCKED"})
BLOCKED_CODE = "ERROR_BLOCKED_TOKEN"
#: getReceipt's answer for an order without a (live) receipt.
RECEIPT_NOT_FOUND = "ERROR_RECEIPT_NOT_FOUND"
#: How long to wait when a block message names no time we can read.
DEFAULT_BLOCK = timedelta(seconds=60)
_BLOCK_TIME = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")


class BaseLinkerError(Exception):
    """An `ERROR` envelope from BaseLinker."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TokenInvalidError(BaseLinkerError):
    """The token is wrong or revoked; only an operator can fix it."""


class TokenBlockedError(BaseLinkerError):
    """The account went over its request budget and is blocked until `until`."""

    def __init__(self, code: str, message: str, until: datetime) -> None:
        super().__init__(code, message)
        self.until = until

    def wait(self, now: datetime | None = None) -> timedelta:
        """How long until the block ends, never negative."""
        remaining = self.until - (now or datetime.now(UTC))
        return max(remaining, timedelta(seconds=1))


def parse_block_end(message: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The unblock time named in a block message, or a minute from `now`."""
    match = _BLOCK_TIME.search(message)
    if match is None:
        return now + DEFAULT_BLOCK
    local = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    return local.replace(tzinfo=zone).astimezone(UTC)


class BaseLinkerClient:
    """Calls BaseLinker methods and turns `ERROR` envelopes into typed errors."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        block_timezone: str = "Europe/Warsaw",
    ) -> None:
        self._url = url
        self._zone = ZoneInfo(block_timezone)
        self._http = httpx.AsyncClient(timeout=timeout, headers={"X-BLToken": token})
        self._wait_turn: Callable[[], Awaitable[object]] | None = None
        #: The account this token belongs to, safe to store and log.
        self.account = account_key(token)

    def pace_with(self, wait_turn: Callable[[], Awaitable[object]]) -> None:
        """Wait for `wait_turn` before every request (the account's budget)."""
        self._wait_turn = wait_turn

    async def call(self, method: str, **parameters: Any) -> dict[str, Any]:
        """One API call; returns the SUCCESS envelope or raises BaseLinkerError."""
        if self._wait_turn is not None:
            await self._wait_turn()
        response = await self._http.post(
            self._url,
            data={"method": method, "parameters": json.dumps(parameters)},
        )
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            msg = f"{method} returned {type(body).__name__}, not an object"
            raise BaseLinkerError("ERROR_RESPONSE", msg)
        if body.get("status") == "SUCCESS":
            return body
        code = str(body.get("error_code") or "ERROR_UNKNOWN")
        message = str(body.get("error_message") or "")
        if code in TOKEN_ERROR_CODES:
            raise TokenInvalidError(code, message)
        if code == BLOCKED_CODE:
            until = parse_block_end(message, self._zone, datetime.now(UTC))
            raise TokenBlockedError(code, message, until)
        raise BaseLinkerError(code, message)

    async def journal(self, last_log_id: int) -> list[dict[str, Any]]:
        """Raw journal entries from `last_log_id` on (possibly inclusive)."""
        body = await self.call("getJournalList", last_log_id=last_log_id)
        return list(body.get("logs") or [])

    async def orders(self, **filters: Any) -> list[dict[str, Any]]:
        """Raw orders matching `filters`, at most 100."""
        body = await self.call("getOrders", **filters)
        return list(body.get("orders") or [])

    async def order_statuses(self) -> list[dict[str, Any]]:
        """The account's order statuses: id, name, name_for_customer, color."""
        body = await self.call("getOrderStatusList")
        return list(body.get("statuses") or [])

    async def invoices(self, order_id: int) -> list[dict[str, Any]]:
        """Raw live invoices of one order."""
        body = await self.call("getInvoices", order_id=order_id)
        return list(body.get("invoices") or [])

    async def invoices_from(
        self, invoice_id: int, date_from: int | None = None
    ) -> list[dict[str, Any]]:
        """Raw live invoices with ids from `invoice_id` on, at most 100; with
        `date_from`, only those issued since then."""
        filters = {} if date_from is None else {"date_from": date_from}
        body = await self.call("getInvoices", id_from=invoice_id, **filters)
        return list(body.get("invoices") or [])

    async def receipts_from(
        self, receipt_id: int, date_from: int | None = None
    ) -> list[dict[str, Any]]:
        """Raw live receipts with ids from `receipt_id` on, at most 100; with
        `date_from`, only those issued since then."""
        filters = {} if date_from is None else {"date_from": date_from}
        body = await self.call("getReceipts", id_from=receipt_id, **filters)
        return list(body.get("receipts") or [])

    async def package_histories(
        self, package_ids: list[int]
    ) -> dict[str, list[dict[str, Any]]]:
        """Tracking history per package id (at most 100 ids per call)."""
        body = await self.call(
            "getCourierPackagesStatusHistory", package_ids=package_ids
        )
        histories = body.get("packages_history") or {}
        return dict(histories) if isinstance(histories, dict) else {}

    async def receipt(
        self, order_id: int | None = None, receipt_id: int | None = None
    ) -> dict[str, Any] | None:
        """A live receipt by id, or the order's newest; None when there is none."""
        by_id = {"order_id": order_id} if receipt_id is None else {}
        if receipt_id is not None:
            by_id["receipt_id"] = receipt_id
        try:
            body = await self.call("getReceipt", **by_id)
        except BaseLinkerError as err:
            if err.code == RECEIPT_NOT_FOUND:
                return None
            raise
        return body

    async def order_packages(self, order_id: int) -> list[dict[str, Any]]:
        """Raw live packages (shipments) of one order."""
        body = await self.call("getOrderPackages", order_id=order_id)
        return list(body.get("packages") or [])

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
