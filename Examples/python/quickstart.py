#!/usr/bin/env python3
"""The Python package on the repository's fixtures: compress a real PEFT LoRA adapter, look inside the
container, decode one tensor, load it into PyTorch and PEFT (and a second expert beside it), apply a full
fine-tune to its base model, merge, verify. Run after `bash scripts/demo.sh` (which installs compeft):

    python3 Examples/python/quickstart.py
"""

import os
import tempfile
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import compeft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fixtures", "files")
workspace = tempfile.TemporaryDirectory()
out = workspace.name


def fixture(name):
    return os.path.normpath(os.path.join(FIXTURES, name))


def base_model():
    torch.manual_seed(0)
    return transformers.AutoModelForSequenceClassification.from_pretrained(fixture("tiny-bert"))


expert = os.path.join(out, "expert.cpeft")
report = compeft.compress(fixture("lora-bert-seqcls"), expert, density=10)
print(f"compeft {compeft.__version__}: {report['input_bytes']} B adapter → {report['output_bytes']} B container "
      f"({report['ratio']:.2f}× smaller)")

with compeft.open(expert) as c:
    print(f"{len(c)} tensors, peft_type {c.adapter_config['peft_type']}, r={c.adapter_config['r']}, "
          f"written by {c.metadata['tool']}")
    name = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"
    t = c.tensors[name]
    print(f"{name}: {list(t.shape)} {t.dtype}, {t.encoding}, {t.nonzero} of {t.count} kept, ±{t.scale:.4f}")
    w = c.decode(name, dtype=torch.bfloat16)
    print(f"decoded: {w.dtype}, {int((w != 0).sum())} non-zero, values {sorted(set(w.float().unique().tolist()))}")

sd = compeft.load_state_dict(expert, dtype=torch.bfloat16)
print(f"load_state_dict: {len(sd)} tensors, {sum(v.numel() for v in sd.values())} values in bf16")

model = compeft.load_peft(base_model(), expert, adapter_name="sentiment")
other = os.path.join(out, "other.cpeft")
compeft.compress(fixture("lora-bert-seqcls"), other, density=30)
compeft.load_peft(model, other, adapter_name="topic")
ids = (torch.arange(24).reshape(2, 12) * 37 + 11) % 512
with torch.no_grad():
    for adapter in ("sentiment", "topic"):
        model.set_adapter(adapter)
        print(f"{type(model).__name__} adapter {adapter!r}: logits {[round(x, 4) for x in model(input_ids=ids).logits[0].tolist()]}")

full = os.path.join(out, "full-ft.cpeft")
compeft.compress(fixture("full-ft"), full, base=fixture("tiny-bert"), density=10)
tuned = base_model()
changed = compeft.apply(tuned, full, factor=1.0)
print(f"apply: {len(changed)} weights of the base model updated in place from {os.path.getsize(full)} B")

merged = os.path.join(out, "merged.cpeft")
m = compeft.merge([expert, other], merged, method="ties", density=50, out_density=10)
print(f"merge: {m['method']} of {len(m['inputs'])} experts → {m['destination']}, {m['bytes_written']} B")
result = compeft.verify(merged)
print(f"verify: ok={result['ok']}, {result['checked']} payloads checked, problems {result['problems']}")
