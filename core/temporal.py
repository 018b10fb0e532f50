"""Connecting to Temporal with the pydantic data converter."""

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


async def connect(address: str, namespace: str = "default") -> Client:
    """A client whose payloads are pydantic models, as every workflow expects."""
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )
