"""Real labelled tasks whose data ship inside PyPI packages (no download at run time).

Every task is a list of (text, label) pairs read from a file inside an installed package,
split 60 / 20 / 20 into train / validation / test with a fixed seed.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"fidelity: package '{name}' is not installed (see docs/FIDELITY.md)")
    return Path(list(spec.submodule_search_locations)[0])


@dataclass
class Task:
    name: str
    labels: list[str]
    source: str           # package==version and file the data come from
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    test: list[tuple[str, int]]


def _split(name, rows, labels, source, seed=1234, limit=None, train_cap=None):
    # Deduplicate texts; drop texts that appear with two labels.
    seen: dict[str, int] = {}
    bad = set()
    for t, y in rows:
        if t in seen and seen[t] != y:
            bad.add(t)
        seen[t] = y
    rows = sorted((t, y) for t, y in seen.items() if t not in bad)
    rng = random.Random(seed)
    rng.shuffle(rows)
    if limit:
        rows = rows[:limit]
    n = len(rows)
    a, b = int(0.6 * n), int(0.8 * n)
    # train_cap: fewer training examples (the machine is small); validation and test keep their 20 % each
    return Task(name, labels, source, rows[:min(a, train_cap or a)], rows[a:b], rows[b:])


def afinn() -> Task:
    """Binary polarity of English words and phrases: AFINN-165 valence > 0 (afinn package)."""
    f = package_dir("afinn") / "data" / "AFINN-en-165.txt"
    rows = []
    for line in f.read_text(encoding="utf-8").splitlines():
        word, score = line.rsplit("\t", 1)
        if int(score) != 0:
            rows.append((word, int(int(score) > 0)))
    src = f"afinn=={md.version('afinn')} afinn/data/AFINN-en-165.txt"
    return _split("afinn-polarity", rows, ["negative", "positive"], src)


def vader() -> Task:
    """4-class sentiment intensity of English tokens (words, slang, emoticons): VADER mean rating
    in (-inf,-2], (-2,0), (0,2), [2,inf) (vaderSentiment package). Zero-mean tokens are dropped."""
    f = package_dir("vaderSentiment") / "vader_lexicon.txt"
    rows = []
    for line in f.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        m = float(parts[1])
        if m == 0:
            continue
        y = 0 if m <= -2 else 1 if m < 0 else 2 if m < 2 else 3
        rows.append((parts[0], y))
    src = f"vaderSentiment=={md.version('vaderSentiment')} vaderSentiment/vader_lexicon.txt"
    return _split("vader-intensity", rows, ["very negative", "negative", "positive", "very positive"], src,
                  train_cap=1200)


def names() -> Task:
    """Binary gender of first names marked plainly male ('M') or female ('F') in the
    nam_dict.txt of the gender-guesser package (Jörg Michael's name dictionary); 6000 drawn with a fixed seed."""
    f = package_dir("gender_guesser") / "data" / "nam_dict.txt"
    rows = []
    for line in f.read_text(encoding="iso-8859-1").splitlines():
        if line.startswith("#") or len(line) < 30:
            continue
        code = line[:2].strip()
        if code not in ("M", "F"):
            continue
        name = line[3:29].strip().replace("+", " ")
        rows.append((name, int(code == "F")))
    src = f"gender-guesser=={md.version('gender-guesser')} gender_guesser/data/nam_dict.txt"
    return _split("name-gender", rows, ["male", "female"], src, limit=6000, train_cap=1200)


TASKS = {"afinn": afinn, "vader": vader, "names": names}

if __name__ == "__main__":
    for k, fn in TASKS.items():
        t = fn()
        from collections import Counter
        print(k, t.source, len(t.train), len(t.val), len(t.test), Counter(y for _, y in t.test), t.train[:3])
