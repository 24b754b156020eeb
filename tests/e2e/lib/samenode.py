#!/usr/bin/python3
"""TCP semantics across a proxy, for the same-node fast path test.

  samenode.py serve PORT LOG   accept on [::]:PORT; log each client's address
                               to LOG (one line per accepted connection, so a
                               test can prove nothing reached the app); read
                               one command line, then:
                                 ECHO   write "srv", echo until EOF (any
                                        other line too: tally.py hold)
                                 HALF   read until EOF, write "got N", close
                                 RESET  close with a reset (SO_LINGER 0)
  samenode.py client ADDR PORT CMD
                               connect, send CMD (client first, as meshd's
                               sniffing expects), print one word:
                                 ECHO   "ok" when "srv" and the echo came back
                                 HALF   the server's "got N" after 100000
                                        bytes and a half-close (shutdown WR)
                                 RESET  "reset" when the server's reset came
                                        through, "eof" for a clean close
                               or "reset"/"refused"/"timeout" on failure.
Every wait is bounded (5 s)."""
import socket
import struct
import sys
import threading


def serve(port, log):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(128)
    lock = threading.Lock()

    def handle(c, peer):
        with lock, open(log, "a") as f:
            f.write(peer[0] + "\n")
        try:
            c.settimeout(10)
            cmd, rest = b"", b""
            while b"\n" not in cmd and len(cmd) < 64:
                d = c.recv(64 - len(cmd))
                if not d:
                    break
                cmd += d
            cmd, _, rest = cmd.partition(b"\n")
            if cmd == b"HALF":
                n = len(rest)
                while True:  # to EOF: the client's half-close
                    d = c.recv(65536)
                    if not d:
                        break
                    n += len(d)
                c.sendall(b"got %d\n" % n)
            elif cmd == b"RESET":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:  # ECHO, or tally.py's hello: the name, then an echo
                c.sendall(b"srv\n" + rest)
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


def client(addr, port, cmd):
    try:
        c = socket.create_connection((addr, port), timeout=5)
        c.sendall(cmd.encode() + b"\n")
        if cmd == "ECHO":
            c.sendall(b"ping\n")
            got = b""
            while len(got) < 9:
                d = c.recv(64)
                if not d:
                    break
                got += d
            return "ok" if got == b"srv\nping\n" else "bad:" + got.decode(errors="replace")
        if cmd == "HALF":
            c.sendall(b"x" * 100000)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = c.recv(64)
                if not d:
                    break
                got += d
            return got.decode().strip() or "eof"
        if cmd == "RESET":
            d = c.recv(64)
            return "eof" if not d else "data"
    except ConnectionResetError:
        return "reset"
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "error:%d" % (e.errno or 0)
    return "?"


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        print(client(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
