"""load_peft gives the model PeftModel.from_pretrained gives on the decompressed folder: same class, same
weights, same logits; it adds a second adapter to a PeftModel, and swaps an adapter's weights in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

import compeft

from conftest import ADAPTERS, BASES, FIXTURES, REPO, require

torch = require("torch")
peft = require("peft")
transformers = require("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
warnings.filterwarnings("ignore", category=FutureWarning)

IDS = (torch.arange(2 * 12).reshape(2, 12) * 37 + 11) % 512


def base_model(fixture: str):
    folder = FIXTURES / BASES[fixture]
    architectures = json.loads((folder / "config.json").read_text())["architectures"]
    auto = (transformers.AutoModelForSequenceClassification if architectures[0].endswith("ForSequenceClassification")
            else transformers.AutoModelForCausalLM)
    torch.manual_seed(0)
    return auto.from_pretrained(str(folder))


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


@pytest.mark.parametrize("name", ADAPTERS)
def test_load_peft_equals_from_pretrained_on_the_decompressed_folder(name, containers, decompressed):
    reference = peft.PeftModel.from_pretrained(base_model(name), str(decompressed[name]))
    model = compeft.load_peft(base_model(name), containers[name])
    assert type(model) is type(reference) and not model.training
    assert model.peft_config["default"].to_dict() == reference.peft_config["default"].to_dict()
    mine, theirs = model.state_dict(), reference.state_dict()
    assert list(mine) == list(theirs)
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    assert torch.equal(logits(model), logits(reference))
    assert not any(p.requires_grad for n, p in model.named_parameters() if "default" in n)


def test_load_peft_from_an_open_container_and_trainable(containers):
    with compeft.open(containers["lora-bert-seqcls"]) as c:
        model = compeft.load_peft(base_model("lora-bert-seqcls"), c, adapter_name="sentiment", is_trainable=True)
    assert list(model.peft_config) == ["sentiment"] and model.active_adapter == "sentiment"
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)


def test_a_second_adapter_and_a_swap(containers, decompressed, tmp_path):
    topic = tmp_path / "topic.cpeft"
    compeft.compress(FIXTURES / "lora-bert-seqcls", topic, density=30)
    topic_folder = tmp_path / "topic"
    compeft.decompress(topic, topic_folder)

    model = compeft.load_peft(base_model("lora-bert-seqcls"), containers["lora-bert-seqcls"], adapter_name="sentiment")
    same = compeft.load_peft(model, topic, adapter_name="topic")
    assert same is model and list(model.peft_config) == ["sentiment", "topic"]
    assert model.active_adapter == "sentiment"  # load_adapter does not activate

    reference = peft.PeftModel.from_pretrained(base_model("lora-bert-seqcls"), str(decompressed["lora-bert-seqcls"]),
                                               adapter_name="sentiment")
    reference.load_adapter(str(topic_folder), adapter_name="topic")
    for adapter in ("sentiment", "topic"):
        model.set_adapter(adapter)
        reference.set_adapter(adapter)
        assert torch.equal(logits(model), logits(reference)), adapter

    # Swap: the "sentiment" adapter gets topic's weights, decoded into the same parameters.
    parameters = dict(model.named_parameters())
    key = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.sentiment.weight"
    pointer = parameters[key].data_ptr()
    compeft.load_peft(model, topic, adapter_name="sentiment")
    assert dict(model.named_parameters())[key].data_ptr() == pointer
    model.set_adapter("sentiment")
    expected = logits(reference)  # reference's active adapter is "topic"
    assert torch.equal(logits(model), expected)


def test_load_peft_refuses_a_container_that_is_not_an_adapter(containers):
    with pytest.raises(compeft.InvalidArgumentError, match="not a PEFT adapter"):
        compeft.load_peft(base_model("lora-bert-seqcls"), containers["full-ft"])


def test_the_issue_snippet_runs(containers, tmp_path):
    """The example of issue 13, as written (paths aside)."""
    import compeft, torch  # noqa: E401, F811

    expert, other, full = tmp_path / "expert.cpeft", tmp_path / "other.cpeft", containers["full-ft"]
    compeft.compress(FIXTURES / "lora-bert-seqcls", expert, density=10)
    c = compeft.open(expert)
    c.adapter_config; c.metadata; c.tensors  # noqa: B018
    w = c.decode("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight", dtype=torch.bfloat16)
    sd = compeft.load_state_dict(expert, dtype=torch.bfloat16)
    model = compeft.load_peft(base_model("lora-bert-seqcls"), expert, adapter_name="sentiment")
    compeft.compress(FIXTURES / "lora-bert-seqcls", other, density=20)
    compeft.load_peft(model, other, adapter_name="topic")
    full_model = base_model("lora-bert-seqcls")
    compeft.apply(full_model, full, factor=1.0)
    c.close()
    assert w.dtype == torch.bfloat16 and len(sd) == 10 and set(model.peft_config) == {"sentiment", "topic"}


def test_the_quickstart_example_runs():
    run = subprocess.run([sys.executable, str(REPO / "Examples/python/quickstart.py")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "adapter 'topic'" in run.stdout and "verify: ok=True" in run.stdout, run.stdout


def test_a_swap_where_the_stored_type_differs_from_the_parameters(containers, decompressed):
    """lora-gpt2-bf16 is stored in BF16; PEFT casts its parameters to float32. A swap must give what PEFT's
    load_adapter gives (the bf16 values, widened), not bf16 bits written into float32 memory."""
    name = "lora-gpt2-bf16"
    model = compeft.load_peft(base_model(name), containers[name])
    assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.float32}
    compeft.load_peft(model, containers[name], adapter_name="default")  # swap onto itself
    reference = peft.PeftModel.from_pretrained(base_model(name), str(decompressed[name]))
    mine, theirs = model.state_dict(), reference.state_dict()
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    assert torch.equal(logits(model), logits(reference))
