"""A front for the shared apt-cacher-ng: one refresh of a Release file at a time.

apt-cacher-ng (3.7, Debian 12) names the copy of an index file it is refreshing after the
current second (``InRelease.<seconds>``). Two clients asking for the same Release file
within one second make two refreshes collide ("Failure to move file … File exists"): one
of them gets a 503 or stalls. A fleet's `apt-get update`s come together, so they did
(ten lab hosts, or ten curls at once: several 503s in every round).

The labs' tinyproxies send their plain-HTTP Debian requests here. A request for a
``dists/…/InRelease``, ``Release`` or ``Release.gpg`` waits until no other request for
the same file is in flight; everything else goes straight through. Each connection carries
one request (``Connection: close`` both ways), so the wait covers the whole answer.

    python -m pyinfra_jupyter.lab.acng_front LISTEN_PORT UPSTREAM_PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys

SERIAL = re.compile(rb"^GET \S*/dists/\S*/(InRelease|Release|Release\.gpg) HTTP/1\.[01]$")
HOP_BY_HOP = (b"connection:", b"proxy-connection:", b"keep-alive:")
# A Release file is small: an answer still running after this has stalled upstream, and
# must not hold the others up (apt has its own timeouts and retries).
HOLD_SECONDS = 60
HEAD_LIMIT = 64 * 1024


def rewrite(head: bytes) -> tuple[bytes, bytes]:
    """The request line and the head sent upstream: hop-by-hop headers out, one request."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [line for line in lines[1:] if not line.lower().startswith(HOP_BY_HOP)]
    return lines[0], b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()


class Front:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.locks: dict[bytes, asyncio.Lock] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        line, upstream_head = rewrite(head)
        lock = None
        if SERIAL.match(line):
            lock = self.locks.setdefault(line.split()[1], asyncio.Lock())
            await lock.acquire()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write(upstream_head)
            await up_writer.drain()
            upload = asyncio.ensure_future(_pipe(reader, up_writer))
            download = _pipe(up_reader, writer)
            if lock:
                await asyncio.wait_for(download, HOLD_SECONDS)
            else:
                await download
            upload.cancel()
            up_writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            print(f"acng_front: {line.decode(errors='replace')}: {exc!r}", flush=True)
        finally:
            if lock:
                lock.release()
            writer.close()


async def serve(listen_port: int, upstream_port: int) -> None:
    front = Front(upstream_port)
    server = await asyncio.start_server(front.handle, "127.0.0.1", listen_port,
                                        limit=HEAD_LIMIT, reuse_address=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    listen_port, upstream_port = (int(a) for a in argv)
    asyncio.run(serve(listen_port, upstream_port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
