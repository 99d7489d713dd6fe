"""The lab's front for apt-cacher-ng: Release files one at a time, the rest straight through,
the answers relayed byte for byte (against a stand-in apt-cacher-ng that counts how many
requests for a path it serves at once)."""

from __future__ import annotations

import asyncio

from pyinfra_jupyter.lab.acng_front import Front, rewrite

RELEASE = "http://deb.debian.org/debian/dists/bookworm/InRelease"
POOL = "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb"


def test_rewrite_sends_one_request_per_connection():
    line, head = rewrite(b"GET " + RELEASE.encode() + b" HTTP/1.1\r\nHost: deb.debian.org\r\n"
                         b"Connection: keep-alive\r\nProxy-Connection: keep-alive\r\n"
                         b"Cache-Control: max-age=0\r\n\r\n")
    assert line == b"GET " + RELEASE.encode() + b" HTTP/1.1"
    assert head.endswith(b"Cache-Control: max-age=0\r\nConnection: close\r\n\r\n")
    assert b"keep-alive" not in head


async def _scenario(path: str, clients: int = 8) -> tuple[int, list[bytes]]:
    busy: dict[str, int] = {}
    peak = 0

    async def upstream(reader, writer):
        nonlocal peak
        head = await reader.readuntil(b"\r\n\r\n")
        url = head.split()[1].decode()
        busy[url] = busy.get(url, 0) + 1
        peak = max(peak, busy[url])
        await asyncio.sleep(0.1)
        body = f"answer for {url}".encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        busy[url] -= 1
        writer.close()

    up = await asyncio.start_server(upstream, "127.0.0.1", 0)
    front = await asyncio.start_server(Front(up.sockets[0].getsockname()[1]).handle,
                                       "127.0.0.1", 0)
    port = front.sockets[0].getsockname()[1]

    async def client() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    answers = await asyncio.gather(*(client() for _ in range(clients)))
    front.close()
    up.close()
    return peak, answers


def test_release_files_one_at_a_time():
    peak, answers = asyncio.run(_scenario(RELEASE))
    assert peak == 1
    assert all(a.endswith(f"answer for {RELEASE}".encode()) for a in answers)


def test_other_files_go_through_together():
    peak, answers = asyncio.run(_scenario(POOL))
    assert peak > 1
    assert all(a.startswith(b"HTTP/1.1 200 OK") for a in answers)
