#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that injects one network fault into one HTTP exchange, for the registry tests.

    python3 faultproxy.py UPSTREAM_PORT RULE

RULE is KIND:MATCH:N, applied once, to the first request whose request line contains MATCH:
    stall:MATCH:N   forward N bytes of the response body, then forward nothing more (the connection stays open)
    drop:MATCH:N    forward N bytes of the response body, then close both connections
    status:MATCH:N  answer the request with status N and an empty body instead of forwarding it
    redirect:MATCH:N  answer with status N (301, 302, 307, 308) and `Location:` the same path on the upstream
                    port — another host:port, as blob storage behind a registry is

Prints "PORT p" when listening, "REQ <request line> range=<Range header>" for every request, and
"FIRED <rule>" when the fault happens, each on its own line, flushed. Runs until killed. Only 127.0.0.1 is
ever contacted.
"""
import socket
import sys
import threading

upstream_port = int(sys.argv[1])
kind, rest = sys.argv[2].split(":", 1)
match, n = rest.rsplit(":", 1)  # MATCH may hold ':' (a digest)
n = int(n)
fired = threading.Event()
lock = threading.Lock()


def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Connection:
    def __init__(self, client):
        self.client = client
        self.upstream = socket.create_connection(("127.0.0.1", upstream_port))
        self.armed = False
        self.header_done = False
        self.pending = b""
        self.body = 0
        self.stalled = False

    def close(self):
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def client_to_upstream(self):
        buf = b""
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    if not hasattr(self, "remaining_body") or self.remaining_body == 0:
                        end = buf.find(b"\r\n\r\n")
                        if end < 0:
                            break
                        head = buf[: end + 4]
                        buf = buf[end + 4 :]
                        lines = head.decode("latin-1").split("\r\n")
                        headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
                        self.remaining_body = int(headers.get("content-length", "0"))
                        say("REQ %s range=%s" % (lines[0], headers.get("range", "-")))
                        if not fired.is_set() and match in lines[0]:
                            if kind in ("status", "redirect"):
                                fired.set()
                                say("FIRED " + sys.argv[2])
                                location = b""
                                if kind == "redirect":
                                    path = lines[0].split(" ")[1]
                                    location = b"Location: http://127.0.0.1:%d%s\r\n" % (upstream_port, path.encode("latin-1"))
                                self.client.sendall(b"HTTP/1.1 %d Injected\r\n%bContent-Length: 0\r\n\r\n" % (n, location))
                                self.skip_body = True
                                continue
                            fired.set()
                            self.armed, self.header_done, self.pending, self.body = True, False, b"", 0
                        self.skip_body = False
                        self.upstream.sendall(head)
                    take = min(self.remaining_body, len(buf))
                    if take == 0:
                        break
                    if not getattr(self, "skip_body", False):
                        self.upstream.sendall(buf[:take])
                    buf = buf[take:]
                    self.remaining_body -= take
        except OSError:
            pass
        if not self.stalled:
            self.close()

    def upstream_to_client(self):
        try:
            while True:
                data = self.upstream.recv(65536)
                if not data:
                    break
                if self.armed:
                    if not self.header_done:
                        self.pending += data
                        end = self.pending.find(b"\r\n\r\n")
                        if end < 0:
                            continue
                        self.header_done = True
                        head, data = self.pending[: end + 4], self.pending[end + 4 :]
                        self.client.sendall(head)
                    room = n - self.body
                    if len(data) >= room:
                        self.client.sendall(data[:room])
                        self.armed = False
                        say("FIRED " + sys.argv[2])
                        if kind == "stall":
                            self.stalled = True
                            threading.Event().wait()  # forever: the proxy is killed by the test
                        self.close()
                        return
                    self.body += len(data)
                self.client.sendall(data)
        except OSError:
            pass
        if not self.stalled:
            self.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    say("PORT %d" % server.getsockname()[1])
    while True:
        client, _ = server.accept()
        try:
            c = Connection(client)
        except OSError:
            client.close()
            continue
        threading.Thread(target=c.client_to_upstream, daemon=True).start()
        threading.Thread(target=c.upstream_to_client, daemon=True).start()


main()
