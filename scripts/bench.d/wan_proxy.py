#!/usr/bin/env python3
"""A throttling TCP proxy for scripts/bench's WAN scenario (hop 1: a US CI runner pushing
to Beijing).

  wan_proxy.py UPSTREAM_HOST:PORT RTT_MS BYTES_PER_SECOND

Listens on a free 127.0.0.1 port (printed as the first line of stdout), forwards every
connection to UPSTREAM, delays each chunk by half the round-trip time in each direction
(so a request and its answer take RTT_MS more), and shapes each direction to
BYTES_PER_SECOND shared by all connections (one link, not one per connection). Runs until
killed. Standard library only.
"""

import asyncio
import sys
import time

CHUNK = 64 * 1024


class Link:
    """One direction of the shared link: a byte rate every connection takes turns on. A
    sender that fell behind (a late wake-up) may catch up by BURST bytes, so timer slack
    does not lower the rate."""

    BURST = 256 * 1024

    def __init__(self, rate):
        self.rate = rate
        self.free_at = 0.0

    async def send(self, size):
        now = time.monotonic()
        self.free_at = max(self.free_at, now - self.BURST / self.rate) + size / self.rate
        wait = self.free_at - now
        if wait > 0:
            await asyncio.sleep(wait)


async def pump(reader, writer, delay, link):
    """Copies reader to writer: each chunk leaves `delay` s after it arrived, at the link's
    rate. Reading goes on while earlier chunks are in flight (a pipe, not stop-and-wait)."""
    queue = asyncio.Queue(maxsize=256)

    async def receive():
        while True:
            data = await reader.read(CHUNK)
            await queue.put((time.monotonic(), data))
            if not data:
                return

    receiving = asyncio.create_task(receive())
    try:
        while True:
            arrived, data = await queue.get()
            due = arrived + delay - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            if not data:
                break
            await link.send(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        receiving.cancel()
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = argv[1].rsplit(":", 1)
    delay = float(argv[2]) / 2000.0
    up, down = Link(float(argv[3])), Link(float(argv[3]))

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, server_writer, delay, up),
                             pump(server_reader, client_writer, delay, down),
                             return_exceptions=True)
        for w in (client_writer, server_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=CHUNK)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv)))
    except KeyboardInterrupt:
        sys.exit(0)
