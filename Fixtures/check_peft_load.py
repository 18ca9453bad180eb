#!/usr/bin/env python3
"""Check that a PEFT adapter folder loads with the real PEFT library.

Usage:  python3 Fixtures/check_peft_load.py ADAPTER_DIR BASE_MODEL_DIR

Loads the base model from the local folder (AutoModelForSequenceClassification
or AutoModelForCausalLM, chosen from config.json's "architectures"), then
PeftModel.from_pretrained(base, ADAPTER_DIR); checks that every tensor of
ADAPTER_DIR/adapter_model.safetensors was loaded into the model with exactly
the file's values (compared in float32) and that the model has no adapter
weights the file lacks; runs one forward pass on fixed token ids and checks
the output is finite.  Prints "ok <number of parameters loaded>"; exits
non-zero (message on stderr) on any failure.
"""

import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")


def main():
    if len(sys.argv) != 3:
        print("usage: check_peft_load.py ADAPTER_DIR BASE_MODEL_DIR", file=sys.stderr)
        return 2
    adapter_dir, base_dir = sys.argv[1], sys.argv[2]

    import torch
    import transformers
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    with open(os.path.join(base_dir, "config.json")) as f:
        archs = json.load(f).get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        auto = AutoModelForSequenceClassification
    elif any(a.endswith("LMHeadModel") or a.endswith("ForCausalLM") for a in archs):
        auto = AutoModelForCausalLM
    else:
        raise SystemExit(f"error: cannot choose an Auto class for architectures {archs}")

    torch.manual_seed(0)
    base = auto.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()

    file_tensors = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    problems = []
    for name in sorted(set(file_tensors) | set(loaded)):
        if name not in loaded:
            problems.append(f"{name}: in the file but not loaded into the model")
        elif name not in file_tensors:
            problems.append(f"{name}: adapter weight in the model but not in the file")
        else:
            a = file_tensors[name].to(torch.float32)
            b = loaded[name].detach().to(torch.float32)
            if a.shape != b.shape:
                problems.append(f"{name}: shape {tuple(a.shape)} in file, {tuple(b.shape)} loaded")
            elif not torch.equal(a, b):
                problems.append(f"{name}: loaded values differ from the file "
                                f"(max |diff| {(a - b).abs().max().item():.3g})")
    if problems:
        for p in problems:
            print("error: " + p, file=sys.stderr)
        return 1

    vocab = base.config.vocab_size
    ids = (torch.arange(2 * 12).reshape(2, 12) * 37 + 11) % vocab
    with torch.no_grad():
        out = model(input_ids=ids)
    logits = out.logits
    if not torch.isfinite(logits.float()).all():
        print("error: forward pass produced non-finite logits", file=sys.stderr)
        return 1

    n = sum(t.numel() for t in file_tensors.values())
    print(f"ok {n}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
