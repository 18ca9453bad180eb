"""Train every (task, adapter) pair that is not cached yet: python3 train_all.py [CACHE]"""
import sys
from pathlib import Path

import adapters
import tasks

HERE = Path(__file__).resolve().parent


def ensure(cache: Path, log=print, only=None, names=None):
    for tname, tfn in tasks.TASKS.items():
        if only and tname not in only:
            continue
        task = None
        for aname in adapters.ADAPTERS:
            if names and aname not in names:
                continue
            out = cache / tname / aname
            if (out / "fidelity.json").exists():
                continue
            task = task or tfn()
            log(f"training {tname}/{aname}")
            adapters.train(task, aname, out, log=log)


if __name__ == "__main__":
    ensure(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "cache", only=sys.argv[2].split(",") if len(sys.argv) > 2 else None)
