#!/usr/bin/python3
"""A slow HTTP/1.1 server, for transfers that must still be open when an
agent is told to stop (a fast one would sit whole in the tunnel's window and
the socket buffers by then).

  slow_body.py PORT             every GET is answered 200 with 20 chunks of
                                64 KiB (chunk i all bytes 65 + i), 0.1 s apart
  slow_body.py --expected FILE  write the body every GET gets to FILE
"""
import http.server
import socket
import sys
import time

CHUNKS, CHUNK = 20, 65536


def body(i):
    return bytes([65 + i]) * CHUNK


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: the connection closes with the body. A keep-alive one would
    # stay open in the client agent's pool and hold a drain to its end.
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(CHUNKS * CHUNK))
        self.end_headers()
        for i in range(CHUNKS):
            self.wfile.write(body(i))
            self.wfile.flush()
            time.sleep(0.1)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6  # [::] takes IPv4 too (v4-mapped)
    daemon_threads = True


if __name__ == "__main__":
    if sys.argv[1] == "--expected":
        with open(sys.argv[2], "wb") as f:
            for i in range(CHUNKS):
                f.write(body(i))
    else:
        Server(("::", int(sys.argv[1])), Handler).serve_forever()
