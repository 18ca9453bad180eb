#!/usr/bin/env python3
"""The token service of the Docker registry token-auth flow, for ExchangeTests.

    python3 tokenserver.py FOLDER USER PASSWORD

The registry (docker-registry, configured with `auth: token`, `rootcertbundle: FOLDER/cert.pem`) answers
clients with `401 WWW-Authenticate: Bearer realm="http://127.0.0.1:PORT/token",service=…,scope=…`. The
client then asks this service for a token with HTTP basic credentials; the token is a JWT (RS256) whose
`x5c` header carries the certificate that the registry trusts, and whose `access` claim grants the scope
asked for — to USER with PASSWORD only; anyone else gets 401.

Makes FOLDER/key.pem and FOLDER/cert.pem with the real `openssl`, signs with `openssl dgst -sha256 -sign`
(RSASSA-PKCS1-v1_5, which is RS256), prints `PORT n` once listening, then one line per token request:
`TOKEN <granted|refused> <scope>`.
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse

ISSUER = "compeft-test-issuer"
SERVICE = "compeft-test-registry"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_keys(folder: str):
    key, cert = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=compeft-test-token-issuer"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout
    return key, base64.b64encode(der).decode()


def sign(key: str, message: bytes) -> bytes:
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=message, check=True,
                          capture_output=True).stdout


def token(key: str, x5c: str, user: str, scopes):
    now = int(time.time())
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind == "repository" and name:
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
    header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
    claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "iat": now, "nbf": now - 10, "exp": now + 300,
              "jti": f"{now}-{os.getpid()}-{len(scopes)}", "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64url(sign(key, signing_input))


def main():
    folder, user, password = sys.argv[1:4]
    key, x5c = make_keys(folder)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query)
            scopes = query.get("scope", [])
            if url.path != "/token" or query.get("service", [""])[0] != SERVICE:
                self.send_response(404)
                self.end_headers()
                return
            if self.headers.get("Authorization") != expected:
                print("TOKEN refused " + " ".join(scopes), flush=True)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="compeft-test-token"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"token": token(key, x5c, user, scopes), "expires_in": 300}).encode()
            print("TOKEN granted " + " ".join(scopes), flush=True)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
