"""compeft.open_remote against a real registry (Debian's docker-registry, CNCF distribution, started here on
127.0.0.1 with storage in a temporary folder): experts pushed by the command line decode exactly as the local
file does, opening reads the index only, one tensor reads only its payload, and bad references, credentials
and blobs are errors, never wrong values."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import compeft

USER, PASSWORD = "alice", "s3cret-Passw0rd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, folder: Path, htpasswd: bool) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.fail("docker-registry is not installed (scripts/bootstrap.sh installs the Debian package)")
        self.port = _free_port()
        self.storage = folder / "storage"
        auth = ""
        if htpasswd:
            line = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True).stdout
            (folder / "htpasswd").write_text(line.strip() + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: compeft-test\n    path: {folder}/htpasswd\n"
        (folder / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: compeft-test-secret\n" + auth)
        self.log = open(folder / "registry.log", "wb")
        self.process = subprocess.Popen([binary, "serve", str(folder / "config.yml")], stdout=self.log, stderr=self.log,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.process.poll() is None, (folder / "registry.log").read_text()
                time.sleep(0.05)
        pytest.fail("docker-registry did not start")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_file(self, digest: str) -> Path:
        hex_ = digest.split(":")[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    r = Registry(tmp_path_factory.mktemp("registry"), htpasswd=False)
    yield r
    r.stop()


def push(cli: str, path: Path, ref: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([cli, "push", str(path), ref], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[0]  # REF@sha256:…


def test_remote_decode_equals_local_and_reads_only_what_it_needs(cli: str, registry: Registry, containers: dict[str, Path]) -> None:
    for name in ["lora-bert-seqcls", "ia3-gpt2-f16", "full-ft"]:
        local_path = containers[name]
        pinned = push(cli, local_path, f"{registry.address}/experts/{name}:v1")
        size = local_path.stat().st_size
        with compeft.open(local_path) as local, compeft.open_remote(f"{registry.address}/experts/{name}:v1") as remote:
            assert remote.size == size
            assert f"{remote.reference}@{remote.manifest_digest}" == pinned
            assert list(remote.tensors) == list(local.tensors)
            assert remote.metadata == local.metadata
            assert remote.adapter_config_json == local.adapter_config_json
            opened = remote.fetched_bytes
            assert opened < size or size <= 65536 + 16, f"opening read {opened} of {size} bytes"
            stored = {t["name"]: t["length"] for t in local.metadata["tensors"]}
            floating = [t for t, info in local.tensors.items() if info.dtype in ("F32", "F16", "BF16", "F64")]
            # The largest tensor: one decode fetches its payload and nothing else.
            big = max(floating, key=lambda t: stored[t])
            before = remote.fetched_bytes
            np.testing.assert_array_equal(remote.decode(big), local.decode(big))
            assert remote.fetched_bytes - before == stored[big], "one tensor's payload, no more"
            for t in floating:
                np.testing.assert_array_equal(remote.decode(t), local.decode(t))
        # The digest form of the reference names the same expert.
        with compeft.open_remote(pinned) as again:
            assert again.container_digest.startswith("sha256:") and len(again) == len(local.tensors)


def test_bad_references_and_missing_experts_are_clear_errors(registry: Registry) -> None:
    with pytest.raises(compeft.InvalidArgumentError, match="not a registry reference"):
        compeft.open_remote("expert.cpeft")
    with pytest.raises(compeft.InvalidArgumentError, match="not a sha256 digest"):
        compeft.open_remote(f"{registry.address}/experts/x@sha256:1234")
    with pytest.raises(compeft.CompeftIOError, match="no such expert"):
        compeft.open_remote(f"{registry.address}/experts/absent:v1")


def test_a_corrupt_blob_in_the_registry_is_refused(cli: str, tmp_path: Path, containers: dict[str, Path]) -> None:
    r = Registry(tmp_path, htpasswd=False)
    try:
        pinned = push(cli, containers["lora-bert-seqcls"], f"{r.address}/experts/damaged:v1")
        with compeft.open_remote(pinned) as c:
            digest = c.container_digest
            names = list(c.tensors)
        data = bytearray(r.blob_file(digest).read_bytes())
        data[100] ^= 0x40  # inside the first payload
        r.blob_file(digest).write_bytes(bytes(data))
        with compeft.open_remote(pinned) as c:
            failures = 0
            for name in names:
                try:
                    c.decode(name) if c.tensors[name].dtype in ("F32", "F16", "BF16", "F64") else c.exact_values(name)
                except compeft.CorruptError as e:
                    failures += 1
                    assert name in str(e)
            assert failures == 1, "exactly the damaged payload is refused"
    finally:
        r.stop()


def test_basic_auth_with_right_wrong_and_missing_credentials(cli: str, tmp_path: Path, containers: dict[str, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    r = Registry(tmp_path, htpasswd=True)
    try:
        creds = {"COMPEFT_REGISTRY_USERNAME": USER, "COMPEFT_REGISTRY_PASSWORD": PASSWORD}
        push(cli, containers["ia3-gpt2-f16"], f"{r.address}/private/expert:v1", env=creds)
        ref = f"{r.address}/private/expert:v1"
        monkeypatch.delenv("COMPEFT_REGISTRY_USERNAME", raising=False)
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
        with pytest.raises(compeft.CompeftIOError, match="needs a user name and password"):
            compeft.open_remote(ref)
        with pytest.raises(compeft.CompeftIOError, match="refused the credentials"):
            compeft.open_remote(ref, username=USER, password="wrong")
        with compeft.open_remote(ref, username=USER, password=PASSWORD) as c, compeft.open(containers["ia3-gpt2-f16"]) as local:
            for name, info in local.tensors.items():
                if info.dtype in ("F32", "F16", "BF16"):
                    np.testing.assert_array_equal(c.decode(name), local.decode(name))
        for key, value in creds.items():
            monkeypatch.setenv(key, value)
        with compeft.open_remote(ref) as c:
            assert len(c) == len(local.tensors)
    finally:
        r.stop()
