#!/usr/bin/env python3
"""The tutorial's download, as its Python code does it, for scenario 1's comparison.

`tutorial_pair.py serve PORT FILE`: a ThreadingTCPServer that sends, per connection, a
4-byte length and a JSON header ({"size", "sha256"}) then the file in 1 MiB reads (the
tutorial's protocol, with SHA-256 instead of MD5 for fairness).
`tutorial_pair.py get PORT OUT`: connects, reads the header, then recv(1 MiB) in a loop,
hashing and writing each piece, and checks the digest at the end (exit 1 on mismatch).
reactord speaks a different, authenticated protocol, so the pair is measured on its own.
"""
import hashlib
import json
import socket
import socketserver
import struct
import sys

BUF = 1024 * 1024


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        path = self.server.path
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                piece = f.read(BUF)
                if not piece:
                    break
                h.update(piece)
            size = f.tell()
        # As the tutorial does: hash the whole file first, put the digest in the header,
        # then read the file again to send it.
        header = json.dumps({"size": size, "sha256": h.hexdigest()}).encode()
        self.request.sendall(struct.pack("!I", len(header)) + header)
        with open(path, "rb") as f:
            while True:
                piece = f.read(BUF)
                if not piece:
                    break
                self.request.sendall(piece)


def serve(port, path):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler) as server:
        server.path = path
        server.serve_forever()


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            raise SystemExit("connection closed early")
        data += piece
    return data


def get(port, out):
    sock = socket.create_connection(("127.0.0.1", port))
    (length,) = struct.unpack("!I", recv_exact(sock, 4))
    header = json.loads(recv_exact(sock, length))
    size = header["size"]
    h = hashlib.sha256()
    received = 0
    with open(out, "wb") as f:
        while received < size:
            piece = sock.recv(min(BUF, size - received))
            if not piece:
                raise SystemExit("connection closed early")
            h.update(piece)
            f.write(piece)
            received += len(piece)
    sock.close()
    if h.hexdigest() != header["sha256"]:
        raise SystemExit("sha256 mismatch")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        get(int(sys.argv[2]), sys.argv[3])
