"""Experts on OCI registries, read lazily: :func:`open_remote` resolves a reference to its container blob
(docs/FORMAT.md, "compeft on OCI registries") and opens it through the library's caller-supplied reads
(``compeft_open_reader``), answering each read with one HTTP ``Range`` request. Opening fetches the
preamble and the tail that holds the index; decoding a tensor fetches only that tensor's payload. Every
byte is checked by the library against the container's XXH64 checksums before it is used.

The library itself has no network code; this module speaks only what reading needs (the distribution
API's manifest and blob ``GET``, anonymous, HTTP basic and bearer-token auth, redirects) with the
standard library. Publishing, pulling whole experts into the digest-keyed cache, and signatures
(``--verify-key``) are the command line's (``compeft push|pull``) and the Swift API's.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import http.client
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

from . import _native
from .container import Container
from .errors import CompeftIOError, CorruptError, InvalidArgumentError, UnsupportedError

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.compeft.adapter.v1"
CONFIG_TYPE = "application/vnd.compeft.config.v1+json"
CONTAINER_TYPE = "application/vnd.compeft.container.v1"
_MAX_MANIFEST = 4 << 20
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    """``REGISTRY/REPOSITORY[:TAG|@sha256:…]``, as the command line takes it (the tag defaults to ``latest``)."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @staticmethod
    def parse(text: str) -> Reference:
        rest, digest = (text.split("@", 1) + [None])[:2] if "@" in text else (text, None)
        registry, _, path = rest.partition("/")
        if not path or not ("." in registry or ":" in registry or registry == "localhost"):
            raise InvalidArgumentError(f"{text}: not a registry reference (REGISTRY/REPOSITORY[:TAG|@sha256:…], "
                                       "e.g. localhost:5000/experts/sentiment:v1)")
        repository, tag = path, None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            repository, tag = path.rsplit(":", 1)
        if not _REPOSITORY.match(repository):
            raise InvalidArgumentError(f"{text}: '{repository}' is not a valid repository name")
        if tag is not None and not _TAG.match(tag):
            raise InvalidArgumentError(f"{text}: '{tag}' is not a valid tag")
        if digest is not None and not _DIGEST.match(digest):
            raise InvalidArgumentError(f"{text}: '{digest}' is not a sha256 digest")
        return Reference(registry, repository, tag if tag or digest else "latest", digest)

    @property
    def host(self) -> str:
        return self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry.split("]")[0][1:]

    @property
    def is_loopback(self) -> bool:
        return self.host in ("localhost", "::1") or self.host.startswith("127.")

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag and not self.digest else "") + (
            f"@{self.digest}" if self.digest else "")


def _credentials(registry: str, username: str | None, password: str | None) -> tuple[str, str] | None:
    """Explicit arguments, else ``COMPEFT_REGISTRY_USERNAME``/``_PASSWORD``, else an ``auth`` entry of
    Docker's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``) for this registry."""
    if username is not None:
        return username, password or ""
    env_user = os.environ.get("COMPEFT_REGISTRY_USERNAME")
    if env_user:
        return env_user, os.environ.get("COMPEFT_REGISTRY_PASSWORD", "")
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(folder, "config.json"), "rb") as f:
            config = json.loads(f.read(1 << 20))
        auth = config.get("auths", {}).get(registry, {}).get("auth")
        if isinstance(auth, str):
            user, _, secret = base64.b64decode(auth).decode("utf-8").partition(":")
            return user, secret
    except (OSError, ValueError, AttributeError):
        pass
    return None


class _Registry:
    """One registry: a keep-alive connection per thread, auth answered once and reused."""

    def __init__(self, ref: Reference, credentials: tuple[str, str] | None, plain_http: bool, timeout: float) -> None:
        # Plain HTTP only for a loopback registry or when asked, as the command line does.
        self.scheme = "http" if (plain_http or ref.is_loopback) else "https"
        self.ref = ref
        self.credentials = credentials
        self.timeout = timeout
        self.authorization: str | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self.fetched_bytes = 0
        self.requests = 0

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        cache = getattr(self._local, "connections", None)
        if cache is None:
            cache = self._local.connections = {}
        key = (scheme, netloc)
        if key not in cache:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            cache[key] = cls(netloc, timeout=self.timeout)
        return cache[key]

    def _send(self, url: str, headers: dict[str, str], limit: int) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):  # a kept-alive connection the server closed is reopened once
            connection = self._connection(parts.scheme, parts.netloc)
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                declared = response.getheader("Content-Length")
                if declared is not None and int(declared) > limit:
                    connection.close()
                    raise CorruptError(f"{self.ref}: {url} answered {declared} bytes, more than the {limit} expected")
                body = response.read(limit + 1)
                if len(body) > limit:
                    connection.close()
                    raise CorruptError(f"{self.ref}: {url} answered more than the {limit} bytes expected")
                return response.status, {k.lower(): v for k, v in response.getheaders()}, body
            except (http.client.HTTPException, OSError) as e:
                connection.close()
                if attempt == 1:
                    raise CompeftIOError(f"{self.ref}: GET {url} failed: {e}") from None
        raise AssertionError("unreachable")

    def get(self, path: str, headers: dict[str, str], limit: int) -> tuple[int, dict[str, str], bytes]:
        """GET on the registry, answering one auth challenge and following up to 5 redirects
        (``Authorization`` goes only to the registry itself)."""
        url = f"{self.scheme}://{self.ref.registry}{path}"
        origin = urllib.parse.urlsplit(url)[:2]
        challenged = False
        for _ in range(6):
            sent = dict(headers)
            if self.authorization and urllib.parse.urlsplit(url)[:2] == origin:
                sent["Authorization"] = self.authorization
            status, answer, body = self._send(url, sent, limit)
            with self._lock:
                self.requests += 1
            if status == 401 and not challenged and urllib.parse.urlsplit(url)[:2] == origin:
                challenged = True
                self._authenticate(answer.get("www-authenticate", ""))
                continue
            if status in (301, 302, 303, 307, 308) and "location" in answer:
                following = urllib.parse.urljoin(url, answer["location"])
                if urllib.parse.urlsplit(url).scheme == "https" and urllib.parse.urlsplit(following).scheme != "https":
                    raise CompeftIOError(f"{self.ref}: refusing a redirect from HTTPS to {following}")
                url = following
                continue
            if status == 401:
                raise CompeftIOError(f"{self.ref}: {self.ref.registry} refused the credentials" if self.credentials
                                     else f"{self.ref}: {self.ref.registry} needs credentials (COMPEFT_REGISTRY_USERNAME "
                                     "and COMPEFT_REGISTRY_PASSWORD, or `docker login`)")
            return status, answer, body
        raise CompeftIOError(f"{self.ref}: GET {path}: more than 5 redirects")

    def _authenticate(self, challenge: str) -> None:
        scheme, _, rest = challenge.strip().partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        basic = None
        if self.credentials:
            basic = "Basic " + base64.b64encode(f"{self.credentials[0]}:{self.credentials[1]}".encode()).decode()
        if scheme.lower() == "basic":
            if basic is None:
                raise CompeftIOError(f"{self.ref}: {self.ref.registry} needs a user name and password (COMPEFT_REGISTRY_USERNAME "
                                     "and COMPEFT_REGISTRY_PASSWORD, or `docker login`)")
            if self.scheme != "https" and not self.ref.is_loopback:
                raise CompeftIOError(f"{self.ref}: refusing to send a password over plain HTTP to {self.ref.registry}")
            self.authorization = basic
        elif scheme.lower() == "bearer" and params.get("realm", "").startswith(("https://", "http://")):
            realm = params["realm"]
            query = {"scope": f"repository:{self.ref.repository}:pull"}
            if "service" in params:
                query["service"] = params["service"]
            url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
            status, _, body = self._send(url, {"Authorization": basic} if basic else {}, 1 << 20)
            if status in (401, 403):
                raise CompeftIOError(f"{self.ref}: the token server {realm} "
                                     + ("refused the credentials" if basic else "wants credentials (COMPEFT_REGISTRY_USERNAME "
                                        "and COMPEFT_REGISTRY_PASSWORD, or `docker login`)"))
            try:
                answer = json.loads(body)
                token = answer.get("token") or answer.get("access_token")
            except ValueError:
                token = None
            if status != 200 or not isinstance(token, str) or not token:
                raise CompeftIOError(f"{self.ref}: the token server {realm} answered {status} without a token")
            self.authorization = "Bearer " + token
        else:
            raise UnsupportedError(f"{self.ref}: {self.ref.registry} asks for '{scheme}' authentication, which compeft does not speak")


class RemoteContainer(Container):
    """A :class:`~compeft.Container` whose bytes are read from a registry blob by HTTP ``Range``.
    ``fetched_bytes`` and ``requests`` count what it has read so far (including opening)."""

    reference: Reference
    manifest_digest: str
    container_digest: str
    size: int

    @property
    def fetched_bytes(self) -> int:
        return self._registry.fetched_bytes

    @property
    def requests(self) -> int:
        return self._registry.requests

    def __repr__(self) -> str:
        return f"<compeft.RemoteContainer {self.reference} ({self.size} bytes)>"


def _resolve(registry: _Registry, ref: Reference) -> tuple[str, dict[str, Any]]:
    target = ref.digest or ref.tag
    status, headers, body = registry.get(f"/v2/{ref.repository}/manifests/{target}", {"Accept": MANIFEST_TYPE}, _MAX_MANIFEST)
    if status == 404:
        raise CompeftIOError(f"{ref}: no such expert on {ref.registry}")
    if status != 200:
        raise CompeftIOError(f"{ref}: the registry answered {status} for the manifest")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if ref.digest and digest != ref.digest:
        raise CorruptError(f"{ref}: the manifest's digest is {digest}, not the {ref.digest} asked for")
    try:
        manifest = json.loads(body)
    except ValueError:
        raise CorruptError(f"{ref}: the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("mediaType", MANIFEST_TYPE) != MANIFEST_TYPE:
        raise UnsupportedError(f"{ref}: not an OCI image manifest (an image index, or another kind of artifact)")
    config = manifest.get("config") or {}
    if manifest.get("artifactType", config.get("mediaType")) not in (ARTIFACT_TYPE, CONFIG_TYPE):
        raise UnsupportedError(f"{ref}: not a compeft expert (artifactType {manifest.get('artifactType')!r})")
    layers = [l for l in manifest.get("layers") or [] if isinstance(l, dict) and l.get("mediaType") == CONTAINER_TYPE]
    if len(layers) != 1 or len(manifest.get("layers") or []) != 1:
        raise UnsupportedError(f"{ref}: a compeft manifest has exactly one container layer")
    layer = layers[0]
    if not isinstance(layer.get("size"), int) or layer["size"] < 0 or not _DIGEST.match(str(layer.get("digest"))):
        raise CorruptError(f"{ref}: the container layer's size or digest is not valid")
    return digest, layer


_READ_AT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t)


class _Reader(ctypes.Structure):
    """``compeft_reader``."""

    _fields_ = [
        ("size", ctypes.c_uint64),
        ("read_at", _READ_AT),
        ("release", ctypes.c_void_p),
        ("context", ctypes.c_void_p),
        ("name", ctypes.c_char_p),
    ]


def open_remote(reference: str, *, username: str | None = None, password: str | None = None,
                plain_http: bool = False, timeout: float = 30.0) -> RemoteContainer:
    """Opens an expert on an OCI registry without downloading it: only the preamble, the index and then
    each decoded tensor's payload are fetched (HTTP ``Range``), each checked against the container's checksums.

    Args:
        reference: ``REGISTRY/REPOSITORY[:TAG|@sha256:…]`` (``compeft push`` prints the digest form).
        username, password: registry credentials; default ``COMPEFT_REGISTRY_USERNAME``/``_PASSWORD``, then
            Docker's ``config.json``.
        plain_http: allow plain HTTP to a registry that is not on the loopback interface.
        timeout: seconds per request.

    Raises:
        InvalidArgumentError: not a registry reference.
        CompeftIOError: the registry cannot be reached, refuses the credentials, or lacks the reference.
        CorruptError / UnsupportedError: not a compeft expert, or a container that fails its checks.
    """
    ref = Reference.parse(reference)
    registry = _Registry(ref, _credentials(ref.registry, username, password), plain_http, timeout)
    manifest_digest, layer = _resolve(registry, ref)
    blob = f"/v2/{ref.repository}/blobs/{layer['digest']}"
    size = layer["size"]

    def read_at(_context: Any, offset: int, buffer: int, length: int) -> int:
        try:
            if length == 0:
                return 0
            if offset + length > size:
                return 1
            status, headers, body = registry.get(blob, {"Range": f"bytes={offset}-{offset + length - 1}"}, max(length, 0))
            if status == 200 and offset == 0 and length == size:
                pass  # a server without Range support answered the whole blob, which was asked for
            elif status != 206 or not headers.get("content-range", "").startswith(f"bytes {offset}-{offset + length - 1}/"):
                return 1
            if len(body) != length:
                return 1
            ctypes.memmove(buffer, body, length)
            with registry._lock:
                registry.fetched_bytes += length
            return 0
        except BaseException:  # an exception must not cross the C boundary: the read fails (COMPEFT_ERR_IO)
            return 1

    callback = _READ_AT(read_at)
    reader = _Reader(size=size, read_at=callback, release=None, context=None, name=str(ref).encode())
    container = RemoteContainer.__new__(RemoteContainer)
    container._registry = registry  # type: ignore[attr-defined]
    container._callback = callback  # type: ignore[attr-defined]  # alive as long as the handle is
    container.reference, container.manifest_digest, container.container_digest, container.size = (
        ref, manifest_digest, layer["digest"], size)
    container._open_with(str(ref), lambda out: _native.lib().compeft_open_reader(ctypes.byref(reader), out),
                         "compeft_open_reader")
    return container
