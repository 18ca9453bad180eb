"""Concurrent decoding from Python threads: the GIL is released inside the library, and results equal
serial ones; closing under other threads' calls is an error, never a crash."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import compeft

from conftest import FIXTURES


@pytest.fixture(scope="module")
def large(workdir):
    """A residual of 4 × 10⁶ values (decoding it takes milliseconds), compressed at density 10."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    source = workdir / "large.safetensors"
    save_file({"big.w": rng.standard_normal((2000, 2000), dtype=np.float32)}, str(source))
    out = workdir / "large.cpeft"
    compeft.compress(source, out, density=10)
    return out


def observed_during_calls(work, rounds: int = 3) -> int:
    """How many times a second thread ran Python while `work` was in progress on this one.

    The switch interval is raised to 0.5 s, far longer than this thread runs Python in the whole probe,
    so the other thread can only run while `work` has released the GIL.
    """
    state = {"in_call": False, "seen": 0, "stop": False}

    def spin():
        while not state["stop"]:
            if state["in_call"]:
                state["seen"] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        for _ in range(rounds):
            state["in_call"] = True
            work()
            state["in_call"] = False
    finally:
        state["stop"] = True
        spinner.join()
        sys.setswitchinterval(old)
    return state["seen"]


def test_decode_releases_the_gil(large):
    with compeft.open(large) as c:
        out = np.empty(4_000_000, np.float32)
        assert observed_during_calls(lambda: c.decode("big.w", out=out)) > 0


def test_the_gil_probe_can_fail():
    """The same probe around pure-Python work (which holds the GIL) sees nothing."""

    def busy():
        total = 0
        for i in range(3_000):
            total += i

    assert observed_during_calls(busy) == 0


def test_concurrent_decodes_equal_serial_ones(containers, large):
    paths = [containers["residual.safetensors"], containers["lora-bert-seqcls"], containers["full-ft"], large]
    for path in paths:
        with compeft.open(path) as c:
            floats = [n for n, t in c.tensors.items() if t.is_float]
            serial = {(n, d): c.decode(n, dtype=d) for n in floats for d in ("f32", "f16", "bf16")}
            jobs = list(serial) * 4
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(lambda job: (job, c.decode(job[0], dtype=job[1])), jobs))
            for job, values in results:
                assert values.tobytes() == serial[job].tobytes(), job


def test_closing_while_other_threads_decode(large):
    c = compeft.open(large)
    outcomes: list[str] = []
    started = threading.Barrier(5)

    def worker():
        out = np.empty(4_000_000, np.float32)
        started.wait()
        for _ in range(1000):
            try:
                c.decode("big.w", out=out)
            except compeft.BadHandleError:
                outcomes.append("closed")
                return
        outcomes.append("finished")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    c.close()
    for t in threads:
        t.join()
    assert sorted(set(outcomes)) <= ["closed", "finished"] and len(outcomes) == 4
