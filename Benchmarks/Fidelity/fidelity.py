"""compeft fidelity benchmark: test accuracy against real container bytes.

    python3 Benchmarks/Fidelity/fidelity.py            # train what is not cached, run, write the report

See docs/FIDELITY.md. Options: --tasks afinn,vader  --adapters lora-r8-qv,ia3  --rules default,svd-module-norm
--densities 1,2,5,10,20,30  --cache DIR  --out DIR  --results FILE  --redo (run the selected rules again)
--report-only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import adapters
import report
import rules
import tasks
import train_all
from peft import PeftModel
from peft.utils import load_peft_weights, set_peft_model_state_dict

DENSITIES = [1, 2, 5, 10, 20, 30]
BASELINES = ["authors", "default", "val-alpha", "cli-tensor", "cli-default"]
# The rule compeft used by default before the fidelity benchmark (ComPEFT's: one global threshold and one
# norm-preserving scale, LoRA factors as trained), by name now that the default depends on the expert.
PAPER_RULE = {"lora": ["--scope", "global", "--scale", "global", "--lora-gauge", "trained"],
              "ia3": ["--scope", "global", "--scale", "global"],
              "full": ["--scope", "global", "--scale", "global"]}
TRAINED = {"lora": ["--lora-gauge", "trained"], "ia3": [], "full": []}
# rules run by default, per kind of expert (others in rules.RULES run when named with --rules)
DEFAULT_RULES = {
    "lora": BASELINES + ["svd-module-norm", "svd-module-ls", "svd-refit-norm", "svd-tmask-module-norm", "auto-gauge",
             "svd-dct", "svd-best"],
    "ia3": BASELINES + ["tensor-scale", "tensor-ls", "alloc-rms1"],
    "full": BASELINES + ["tensor-scale", "tensor-ls", "alloc-rms1"],
}
ALPHA_GRID = [0.4, 0.6, 0.8, 1.0, 1.25]   # multipliers of the auto scale tried on validation (and α = 1)
VAL_TUNE = 600                            # validation examples used to tune α (the first 600 of the split)


def log(*a):
    print(*a, flush=True)


class CLI:
    def __init__(self, exe: Path):
        self.exe = str(exe)

    def __call__(self, *args) -> dict:
        p = subprocess.run([self.exe, *map(str, args), "--json", "--force"], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"compeft {' '.join(map(str, args))}: {p.stderr.strip()}")
        return json.loads(p.stdout) if p.stdout.strip() else {}


def read_st(path: Path):
    with safe_open(str(path), "np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


class Expert:
    """One trained adapter or full fine-tune, with a model ready to take its (de)compressed weights."""

    def __init__(self, task, name: str, folder: Path, work: Path):
        self.task, self.name, self.folder, self.work = task, name, folder, work
        self.kind = adapters.ADAPTERS[name]["kind"]
        self.val = adapters.buckets(adapters.encode(task.val[:VAL_TUNE]))
        self.test = adapters.buckets(adapters.encode(task.test))
        C = len(task.labels)
        if self.kind == "full":
            self.input = folder / "model.safetensors"
            self.base_file = folder / "base.safetensors"
            self.weights, self.meta = read_st(self.input)
            self.base, _ = read_st(self.base_file)
            self.model = adapters.base_model(C)
            self.residual = {k: (self.weights[k] - self.base[k]).astype(np.float32) for k in self.weights}
            self.exact = {}
        else:
            self.input = folder
            self.weights, self.meta = read_st(folder / "adapter_model.safetensors")
            self.model = PeftModel.from_pretrained(adapters.base_model(C), folder)
            tag = ".lora_" if self.kind == "lora" else "ia3_l"
            init = 0.0 if self.kind == "lora" else 1.0
            self.residual = {k: (v - np.float32(init)).astype(np.float32) for k, v in self.weights.items() if tag in k}
            self.exact = {k: v for k, v in self.weights.items() if k not in self.residual}
        self.input_bytes = (self.input.stat().st_size if self.kind == "full"
                            else (folder / "adapter_model.safetensors").stat().st_size)

    # -- loading weights into the model
    def load(self, tensors: dict[str, np.ndarray]):
        if self.kind == "full":
            sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
            missing, unexpected = self.model.load_state_dict(sd, strict=False)
            assert not unexpected, unexpected
        else:
            sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
            res = set_peft_model_state_dict(self.model, sd)
            assert not res.unexpected_keys, res.unexpected_keys

    def load_decompressed(self, out: Path):
        """Load what `compeft decompress` wrote (a PEFT folder, or full weights / a residual file)."""
        if self.kind == "full":
            t, _ = read_st(out)
            if out.name.startswith("residual"):
                t = {k: (self.base[k] + v).astype(np.float32) for k, v in t.items()}
            self.load(t)
            return t
        sd = load_peft_weights(str(out))
        res = set_peft_model_state_dict(self.model, sd)
        assert not res.unexpected_keys, res.unexpected_keys
        return {k: v.numpy() for k, v in sd.items()}

    def acc(self, split="test") -> float:
        return adapters.accuracy(self.model, self.test if split == "test" else self.val)

    def uncompressed(self):
        self.load(self.weights)
        return self.acc("val"), self.acc("test")

    # -- compress + decompress through the real CLI
    def roundtrip(self, cli: CLI, tag: str, *args, input=None):
        cont = self.work / f"{tag}.cpeft"
        rep = cli("compress", input or self.input, "-o", cont, *args,
                  *(["--base", self.base_file] if self.kind == "full" and input is None else []))
        if self.kind == "full":
            out = self.work / (f"full-{tag}.safetensors" if input is None else f"residual-{tag}.safetensors")
            cli("decompress", cont, "-o", out, *(["--base", self.base_file] if input is None else []))
        else:
            out = self.work / f"{tag}-out"
            if out.exists():
                shutil.rmtree(out)
            cli("decompress", cont, "-o", out)
        vals = self.load_decompressed(out)
        nbytes = cont.stat().st_size
        assert nbytes == rep["output_bytes"]
        return nbytes, rep, vals

    def write_prototype(self, tern: dict[str, np.ndarray], tag: str) -> Path:
        """Write a rule's ternary residuals where `compeft compress` reads them (see rules.py)."""
        if self.kind == "full":
            p = self.work / f"proto-{tag}.safetensors"
            save_file({k: np.ascontiguousarray(tern[k]) for k in sorted(tern)}, str(p))
            return p
        d = self.work / f"proto-{tag}"
        d.mkdir(exist_ok=True)
        shutil.copy(self.folder / "adapter_config.json", d / "adapter_config.json")
        init = np.float32(0.0 if self.kind == "lora" else 1.0)
        t = {k: np.ascontiguousarray((init + v).astype(np.float32)) for k, v in tern.items()}
        t.update(self.exact)
        save_file(t, str(d / "adapter_model.safetensors"), metadata=self.meta)
        return d


def check_trick(ex: Expert, tern, vals):
    """The container must hold exactly the prototype's tensors: same mask, same values (up to the binary32 rounding
    of 1 + t for (IA)³, and of base + t for a full fine-tune, whose decompressed weights are compared)."""
    init = np.float32(0.0 if ex.kind == "lora" else 1.0)
    worst = 0.0
    for k, v in tern.items():
        if ex.kind == "full":
            got, ref = vals[k], (ex.base[k] + v).astype(np.float32)
        else:
            got, ref = vals[k], (init + v).astype(np.float32)
            if not np.array_equal(ref != init, got != init):
                raise AssertionError(f"trick changed the mask of {k}")
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - ref))))
    return worst


def run_expert(ex: Expert, cli: CLI, sel_rules, densities, results: dict, redo: bool):
    key = f"{ex.task.name}/{ex.name}"
    R = results.setdefault(key, {})
    if "uncompressed" not in R or redo:
        va, te = ex.uncompressed()
        R["uncompressed"] = {"val": va, "acc": te, "bytes": ex.input_bytes}
        log(f"{key}: uncompressed test {te:.1f} val {va:.1f}, {ex.input_bytes} bytes")
    for rule in sel_rules:
        if rule in rules.RULES and ex.kind not in rules.RULES[rule][0]:
            continue
        for K in densities:
            slot = R.setdefault(rule, {})
            if str(K) in slot and not redo:
                continue
            t0 = time.time()
            extra = {}
            if rule == "authors":
                n, rep, _ = ex.roundtrip(cli, f"authors-{K}", "--density", K, "--alpha", 1, *PAPER_RULE[ex.kind])
            elif rule == "default":
                n, rep, _ = ex.roundtrip(cli, f"default-{K}", "--density", K, *PAPER_RULE[ex.kind])
            elif rule == "cli-default":
                n, rep, _ = ex.roundtrip(cli, f"cli-default-{K}", "--density", K)
                extra = {"scale_scope": rep["compression"].get("scale_scope"),
                         "lora_gauge": rep["compression"].get("lora_gauge")}
            elif rule == "cli-tensor":
                n, rep, _ = ex.roundtrip(cli, f"tensor-{K}", "--density", K, "--scope", "tensor", "--scale", "tensor",
                                         *TRAINED[ex.kind])
            elif rule == "cli-stc":
                n, rep, _ = ex.roundtrip(cli, f"stc-{K}", "--density", K, "--method", "stc", *PAPER_RULE[ex.kind])
            elif rule == "cli-tensor-stc":
                n, rep, _ = ex.roundtrip(cli, f"tensor-stc-{K}", "--density", K, "--scope", "tensor", "--method", "stc",
                                         "--scale", "tensor", *TRAINED[ex.kind])
            elif rule == "val-alpha":
                n, rep, vals = ex.roundtrip(cli, f"default-{K}", "--density", K, *PAPER_RULE[ex.kind])
                a_auto = rep["compression"]["alpha"]
                init = {"lora": 0.0, "ia3": 1.0}.get(ex.kind)
                cands = [(m * a_auto, m) for m in ALPHA_GRID] + [(1.0, 1.0 / a_auto)]
                best = None
                for a, m in cands:
                    if ex.kind == "full":
                        ex.load({k: (ex.base[k] + np.float32(m) * (v - ex.base[k])).astype(np.float32)
                                 for k, v in vals.items()})
                    else:
                        ex.load({k: ((np.float32(init) + np.float32(m) * (v - np.float32(init))).astype(np.float32)
                                     if k in ex.residual else v) for k, v in vals.items()})
                    va = ex.acc("val")
                    if best is None or va > best[0]:
                        best = (va, a)
                extra = {"alpha": best[1], "val": best[0]}
                n, rep, _ = ex.roundtrip(cli, f"valalpha-{K}", "--density", K, "--alpha", f"{best[1]:.6g}",
                                         *PAPER_RULE[ex.kind])
            else:
                fn = rules.RULES[rule][1]
                tern = fn(ex.residual, ex.kind, K)
                p = ex.write_prototype(tern, f"{rule}-{K}")
                n, rep, vals = ex.roundtrip(cli, f"proto-{rule}-{K}", "--scope", "tensor", "--scale", "tensor",
                                            "--density", 100, "--alpha", "auto",
                                            *TRAINED[ex.kind], input=p)
                extra = {"trick_max_abs_err": check_trick(ex, tern, vals)}
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            acc = ex.acc("test")
            kept = rep.get("compression", {}).get("kept_nonzero")
            if rule in rules.RULES:
                kept = int(sum(np.count_nonzero(v) for v in tern.values()))
            slot[str(K)] = {"acc": acc, "bytes": n, "kept": kept, **extra}
            log(f"{key} {rule:>22} {K:>3}%: test {acc:5.1f}  {n:>9} bytes  ({time.time() - t0:.1f}s)")
    for f in ex.work.glob("*.safetensors"):   # the full fine-tune's decompressed files are large
        f.unlink()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(tasks.TASKS))
    ap.add_argument("--adapters", default=",".join(adapters.ADAPTERS))
    ap.add_argument("--rules", default=None, help="default: DEFAULT_RULES of each kind of expert")
    ap.add_argument("--densities", default=",".join(map(str, DENSITIES)))
    ap.add_argument("--cache", default=str(HERE / "cache"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--compeft", default=os.environ.get("COMPEFT", str(ROOT / ".build" / "release" / "compeft")))
    ap.add_argument("--results", default=None, help="results file (default CACHE/results.json); the report "
                    "merges every CACHE/results*.json")
    ap.add_argument("--redo", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    cache, out = Path(args.cache), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_file = Path(args.results) if args.results else cache / "results.json"
    results = json.loads(res_file.read_text()) if res_file.exists() else {}
    t_start = time.time()
    if not args.report_only:
        exe = Path(args.compeft)
        if not exe.exists():
            log(f"building compeft ({exe} is missing)")
            subprocess.run(["swift", "build", "-c", "release", "--product", "compeft"], cwd=ROOT, check=True)
        cli = CLI(exe)
        sel_tasks = args.tasks.split(",")
        train_all.ensure(cache, log=log, only=sel_tasks, names=args.adapters.split(","))
        for tname in sel_tasks:
            task = tasks.TASKS[tname]()
            for aname in args.adapters.split(","):
                with tempfile.TemporaryDirectory(prefix="fidelity-") as work:
                    ex = Expert(task, aname, cache / tname / aname, Path(work))
                    sel = args.rules.split(",") if args.rules else DEFAULT_RULES[ex.kind]
                    run_expert(ex, cli, sel, [float(d) if d != str(int(float(d))) else int(d)
                                                                for d in args.densities.split(",")],
                               results, args.redo)
                res_file.write_text(json.dumps(results, indent=1))
    sources = {t: tasks.TASKS[t]().source for t in tasks.TASKS}
    merged = {}
    for f in sorted(cache.glob("results*.json")):
        for key, res in json.loads(f.read_text()).items():
            for rule, v in res.items():
                if rule == "uncompressed":
                    merged.setdefault(key, {}).setdefault(rule, v)
                else:
                    merged.setdefault(key, {}).setdefault(rule, {}).update(v)
    order = [f"{tasks.TASKS[t]().name}/{a}" for t in tasks.TASKS for a in adapters.ADAPTERS]
    report.write({k: merged[k] for k in order if k in merged}, out, sources)
    log(f"wrote {out}/FIDELITY-results.md and {out}/fidelity.svg ({time.time() - t_start:.0f}s)")


if __name__ == "__main__":
    main()
