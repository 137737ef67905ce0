"""A ledger node as a process: its configuration, asyncio host, API service and events."""
