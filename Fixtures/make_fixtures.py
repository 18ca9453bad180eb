#!/usr/bin/env python3
"""Deterministic test-fixture generator for compeft.

Run (from anywhere):

    python3 Fixtures/make_fixtures.py

It (re)writes everything under ``Fixtures/files/`` (relative to this script's own
folder, not the working directory).  Nothing is downloaded: every model is built
from a config with fixed seeds and trained a few steps on a tiny random
"dataset" of token ids, so re-running gives the same tensors.

Package versions used to generate the committed fixtures:

    python        3.11.7
    torch         2.13.0+cpu
    transformers  5.24.0
    peft          0.21.2
    safetensors   0.8.0
    numpy         2.4.6

Install with:  pip install 'torch==2.13.0+cpu' transformers==5.24.0 peft==0.21.2 safetensors==0.8.0 numpy==2.4.6
(other versions should work, but the bytes of the outputs may then differ).

Outputs (see Fixtures/README.md for details):
    files/tiny-bert/            base BertForSequenceClassification (config.json + model.safetensors)
    files/tiny-gpt2/            base GPT2LMHeadModel (config.json + model.safetensors)
    files/lora-bert-seqcls/     PEFT LoRA, SEQ_CLS, f32 (+ classifier in modules_to_save)
    files/ia3-bert-seqcls/      PEFT IA3, SEQ_CLS, f32 (+ classifier in modules_to_save)
    files/lora-gpt2-bf16/       PEFT LoRA, CAUSAL_LM, fan_in_fan_out, bfloat16 tensors
    files/ia3-gpt2-f16/         PEFT IA3, CAUSAL_LM, float16 tensors
    files/full-ft/              full fine-tune of tiny-bert, sharded (index.json + shards)
    files/full-ft-single/       the same fine-tune as one model.safetensors
    files/residual.safetensors  plain residual tensors of mixed dtypes (+ __metadata__)
    files/MANIFEST.json         per fixture: path, kind, tensors, parameters, bytes
"""

import json
import os
import platform
import shutil
import sys
import warnings

# Never touch the network (there is no hub access; all models are local).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore", category=FutureWarning)

import numpy as np
import torch

import peft
import safetensors
import transformers
from peft import IA3Config, LoraConfig, PeftModel, TaskType, get_peft_model
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")

EXPECTED_VERSIONS = {
    "python": "3.11.7",
    "torch": "2.13.0+cpu",
    "transformers": "5.24.0",
    "peft": "0.21.2",
    "safetensors": "0.8.0",
    "numpy": "2.4.6",
}

VOCAB = 512
SEQ = 16
BATCH = 8
STEPS = 30
LR = 1e-2


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def setup_determinism():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def bert_config():
    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
        num_labels=3,
    )


def gpt2_config():
    return GPT2Config(
        n_embd=64,
        n_layer=2,
        n_head=4,
        vocab_size=VOCAB,
        n_positions=64,
        bos_token_id=VOCAB - 1,
        eos_token_id=VOCAB - 1,
    )


def dataset(seed, n=32, num_labels=3):
    """A tiny random dataset of token ids (and class labels)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, SEQ), generator=g)
    labels = torch.randint(0, num_labels, (n,), generator=g)
    return ids, labels


def train(model, seed, causal, steps=STEPS, lr=LR):
    """A few steps of AdamW on the tiny dataset. Only trainable params update."""
    ids, labels = dataset(seed)
    torch.manual_seed(seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for step in range(steps):
        lo = (step * BATCH) % ids.shape[0]
        x = ids[lo:lo + BATCH]
        if causal:
            out = model(input_ids=x, labels=x)
        else:
            out = model(input_ids=x, labels=labels[lo:lo + BATCH])
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(out.loss.item())
    model.eval()
    return losses


def save_base(model, name):
    path = os.path.join(OUT, name)
    model.save_pretrained(path)
    return path


def load_base(cls, path):
    m = cls.from_pretrained(path)
    m.eval()
    return m


def tensor_summary(path):
    with safe_open(path, "pt") as f:
        return {k: (str(f.get_slice(k).get_dtype()), f.get_slice(k).get_shape()) for k in f.keys()}


def print_tensors(title, path):
    print(f"  {title}: {path}")
    for k, (dt, shape) in tensor_summary(path).items():
        print(f"    {k:80s} {dt:5s} {shape}")


def finish_adapter(peft_model, name, dtype=None):
    """save_pretrained the adapter; optionally cast the adapter tensors first."""
    path = os.path.join(OUT, name)
    if dtype is not None:
        # Cast the whole PEFT model (base + adapter); only the adapter is saved.
        peft_model.to(dtype)
    peft_model.save_pretrained(path)
    # PEFT records the base model's absolute local path; make it
    # machine-independent (the base's folder name under files/).
    cfg_path = os.path.join(path, "adapter_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = os.path.basename(cfg["base_model_name_or_path"].rstrip("/"))
    # PEFT stores these as Python sets, so their order depends on the hash seed.
    for key in ("target_modules", "feedforward_modules", "modules_to_save"):
        if isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key])
    with open(cfg_path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))
    # PEFT also writes a model card (README.md) that we do not need.
    card = os.path.join(path, "README.md")
    if os.path.exists(card):
        os.remove(card)
    return path


def make_lora_bert(bert_path):
    torch.manual_seed(100)
    base = load_base(BertForSequenceClassification, bert_path)
    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.0,
                     target_modules=["query", "value"])
    model = get_peft_model(base, cfg)
    losses = train(model, seed=101, causal=False)
    print(f"lora-bert-seqcls loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return finish_adapter(model, "lora-bert-seqcls")


def make_ia3_bert(bert_path):
    torch.manual_seed(200)
    base = load_base(BertForSequenceClassification, bert_path)
    cfg = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=["key", "value", "output.dense"],
                    feedforward_modules=["output.dense"])
    model = get_peft_model(base, cfg)
    losses = train(model, seed=201, causal=False)
    print(f"ia3-bert-seqcls loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return finish_adapter(model, "ia3-bert-seqcls")


def make_lora_gpt2(gpt2_path):
    torch.manual_seed(300)
    base = load_base(GPT2LMHeadModel, gpt2_path)
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, lora_dropout=0.0,
                     target_modules=["c_attn"], fan_in_fan_out=True)
    model = get_peft_model(base, cfg)
    losses = train(model, seed=301, causal=True)
    print(f"lora-gpt2-bf16 loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return finish_adapter(model, "lora-gpt2-bf16", dtype=torch.bfloat16)


def make_ia3_gpt2(gpt2_path):
    torch.manual_seed(400)
    base = load_base(GPT2LMHeadModel, gpt2_path)
    cfg = IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=["c_attn", "mlp.c_proj"],
                    feedforward_modules=["mlp.c_proj"])
    model = get_peft_model(base, cfg)
    losses = train(model, seed=401, causal=True)
    print(f"ia3-gpt2-f16 loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return finish_adapter(model, "ia3-gpt2-f16", dtype=torch.float16)


def make_full_ft(bert_path):
    torch.manual_seed(500)
    model = load_base(BertForSequenceClassification, bert_path)
    losses = train(model, seed=501, causal=False, steps=20, lr=1e-3)
    print(f"full-ft loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    sharded = os.path.join(OUT, "full-ft")
    model.save_pretrained(sharded, max_shard_size="200KB")
    single = os.path.join(OUT, "full-ft-single")
    model.save_pretrained(single)
    # Only the weights are wanted in full-ft-single.
    for fn in os.listdir(single):
        if fn != "model.safetensors":
            os.remove(os.path.join(single, fn))
    return sharded, single


def make_residual():
    rng = np.random.RandomState(600)
    tensors = {
        # f32, Laplace noise like a real residual
        "layers.10.w": torch.from_numpy(rng.laplace(0.0, 0.01, (300, 200)).astype(np.float32)),
        # f16
        "layers.2.w": torch.from_numpy(rng.laplace(0.0, 0.02, (64, 48)).astype(np.float16)),
        # bf16 (cast from f32 by torch: round to nearest even)
        "a.bias": torch.from_numpy(rng.laplace(0.0, 0.05, (96,)).astype(np.float32)).to(torch.bfloat16),
        # f64
        "B.proj": torch.from_numpy(rng.laplace(0.0, 0.01, (40, 30)).astype(np.float64)),
        # I64: must be carried through unchanged
        "step_counter": torch.tensor([1234567890123, -5, 0], dtype=torch.int64),
        # rank-0 f32 scalar
        "layers.1.scale": torch.tensor(0.125, dtype=torch.float32),
        # zero-length f32
        "layers.3.empty": torch.zeros((0, 8), dtype=torch.float32),
    }
    path = os.path.join(OUT, "residual.safetensors")
    save_file(tensors, path, metadata={"source": "compeft fixtures", "format": "pt",
                                       "note": "synthetic residuals, init 0"})
    sort_metadata_keys(path)
    return path


def sort_metadata_keys(path):
    """safetensors (Rust HashMap) writes __metadata__ keys in a random order per
    process.  Rewrite the header with the metadata keys sorted (same length, so
    data offsets are unchanged) to make the file byte-reproducible."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
        header = json.loads(raw, object_pairs_hook=dict)
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        stripped = raw.rstrip(b" ")
        if len(new) != len(stripped):
            raise RuntimeError("unexpected safetensors header layout")
        f.seek(8)
        f.write(new + b" " * (n - len(new)))


def st_files(path):
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".safetensors"))


def dir_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def manifest_entry(path, kind, extra=None):
    n_tensors = 0
    n_params = 0
    dtypes = set()
    for fn in st_files(path):
        with safe_open(fn, "pt") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                n_tensors += 1
                n_params += int(np.prod(sl.get_shape(), dtype=np.int64))
                dtypes.add(str(sl.get_dtype()))
    e = {
        "path": os.path.relpath(path, OUT),
        "kind": kind,
        "tensors": n_tensors,
        "parameters": n_params,
        "bytes": dir_bytes(path),
        "dtypes": sorted(dtypes),
    }
    if extra:
        e.update(extra)
    return e


def main():
    v = versions()
    print("versions:", json.dumps(v))
    for k, want in EXPECTED_VERSIONS.items():
        if v[k] != want:
            print(f"WARNING: {k} {v[k]} differs from the version used for the committed fixtures ({want}); "
                  "outputs may not be byte-identical", file=sys.stderr)
    setup_determinism()

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)

    torch.manual_seed(0)
    bert_path = save_base(BertForSequenceClassification(bert_config()).eval(), "tiny-bert")
    torch.manual_seed(1)
    gpt2_path = save_base(GPT2LMHeadModel(gpt2_config()).eval(), "tiny-gpt2")

    lora_bert = make_lora_bert(bert_path)
    ia3_bert = make_ia3_bert(bert_path)
    lora_gpt2 = make_lora_gpt2(gpt2_path)
    ia3_gpt2 = make_ia3_gpt2(gpt2_path)
    full_ft, full_ft_single = make_full_ft(bert_path)
    residual = make_residual()

    for p in (lora_bert, ia3_bert, lora_gpt2, ia3_gpt2):
        print_tensors("adapter", os.path.join(p, "adapter_model.safetensors"))
    print_tensors("residual", residual)

    entries = [
        manifest_entry(bert_path, "base-model", {"architecture": "BertForSequenceClassification"}),
        manifest_entry(gpt2_path, "base-model", {"architecture": "GPT2LMHeadModel"}),
        manifest_entry(lora_bert, "peft-lora", {"base": "tiny-bert", "task_type": "SEQ_CLS"}),
        manifest_entry(ia3_bert, "peft-ia3", {"base": "tiny-bert", "task_type": "SEQ_CLS"}),
        manifest_entry(lora_gpt2, "peft-lora", {"base": "tiny-gpt2", "task_type": "CAUSAL_LM"}),
        manifest_entry(ia3_gpt2, "peft-ia3", {"base": "tiny-gpt2", "task_type": "CAUSAL_LM"}),
        manifest_entry(full_ft, "full-finetune", {"base": "tiny-bert/model.safetensors", "sharded": True}),
        manifest_entry(full_ft_single, "full-finetune", {"base": "tiny-bert/model.safetensors", "sharded": False}),
        manifest_entry(residual, "safetensors-residual"),
    ]
    manifest = {"generator": "Fixtures/make_fixtures.py", "versions": v, "fixtures": entries}
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")

    total = 0
    for root, _, files in os.walk(OUT):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
    print(f"total bytes under {OUT}: {total}")
    if total >= 5 * 1000 * 1000:
        print("ERROR: fixtures exceed 5 MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
