#!/usr/bin/env python3
"""Holds idle HTTPS connections open to a web server, for scenario 9 of bench/bench.py.

    tls_idle.py PORT PATH COUNT HOLD_SECONDS

Opens COUNT TLS 1.3 connections to 127.0.0.1:PORT (at most 200 handshakes in flight; no
certificate check, no session resumption: every connection is a full handshake), sends
one keep-alive `GET PATH` on each and reads the whole response, so that each connection
has done what reactorc bench idle's have (handshake, one exchange) and sits in the
server's keep-alive state. Then it prints one line, `ready N SECONDS`, on standard output
and holds them, sending nothing, for HOLD_SECONDS (or until SIGTERM),
and closes them. Exit status 0 only if all COUNT connections were established.
"""
import asyncio
import re
import resource
import ssl
import sys
import time


async def main():
    port, path, count, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()
    sem = asyncio.Semaphore(200)
    conns = []
    errors = []

    async def one():
        async with sem:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                if not head.startswith(b"HTTP/1.1 200") or not m:
                    raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
                await reader.readexactly(int(m.group(1)))
                conns.append(writer)
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(repr(e))

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    established = time.monotonic() - t0
    print("ready %d %.3f" % (len(conns), established), flush=True)
    if errors:
        print("tls_idle: %d connections failed, first: %s" % (len(errors), errors[0]), file=sys.stderr)
    await asyncio.sleep(hold)
    for w in conns:
        w.transport.abort()
    return 0 if len(conns) == count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
