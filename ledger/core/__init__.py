"""Pure cryptographic core: bytes and ints in, bytes and ints out.

Nothing in this package performs I/O or imports asyncio, asyncpg, litestar or
typer; the service and the offline CLI share it, so one implementation is
trusted twice.
"""
