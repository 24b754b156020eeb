#!/usr/bin/python3
"""Sends raw bytes to an HTTP server and prints what came back, for the
request-smuggling tests: nothing here is a well-behaved client.

  rawhttp.py HOST PORT REQUEST [TIMEOUT_S=3]
      REQUEST is a Python bytes literal's body ("GET / HTTP/1.1\\r\\n...",
      escapes \\r \\n \\t \\x00 ...), or "-" to read the bytes from stdin.
      Sends them in one write, then reads until the server closes or
      TIMEOUT_S pass without a byte (at most 30 s in all). Prints:
        line 1   the first answer's status line, "(no answer)" when
                 nothing came back, "(reset)" when the connection was reset
                 before any byte came
        line 2   "closed" when the server closed the connection, "open"
                 when the wait timed out with it still open, "reset"
        then     the raw answer (every response, as received)
"""
import socket
import sys
import time


def main():
    host, port, req = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    quiet = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    data = sys.stdin.buffer.read() if req == "-" else req.encode("latin-1").decode(
        "unicode_escape").encode("latin-1")
    c = socket.create_connection((host, port), timeout=10)
    c.sendall(data)
    c.settimeout(quiet)
    got, end = b"", "open"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            b = c.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            end = "reset"
            break
        if not b:
            end = "closed"
            break
        got += b
    c.close()
    if got:
        first = got.split(b"\r\n", 1)[0].decode("latin-1")
    else:
        first = "(reset)" if end == "reset" else "(no answer)"
    sys.stdout.write(first + "\n" + end + "\n")
    sys.stdout.write(got.decode("latin-1"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
