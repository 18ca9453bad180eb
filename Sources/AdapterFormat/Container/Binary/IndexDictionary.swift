/// Dictionary 1 of the index codec (docs/FORMAT.md, "Index codec"): 4 381 bytes of text that PEFT
/// adapters' tensor names and `adapter_config.json` files share, used as a zstd raw-content dictionary
/// for index codec 2. Its bytes are fixed forever (a changed dictionary would be a new codec); the
/// same bytes are `docs/index-dictionary-1.txt`, and a test checks both against the XXH64 in FORMAT.md.
enum IndexDictionary {
    /// The dictionary's bytes.
    static let one: [UInt8] = Array(text.utf8)

    /// Its XXH64, as docs/FORMAT.md gives it.
    static let oneXXH64: UInt64 = 0x7e6f_e152_f884_1501

    private static let text = #"""
base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight
base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight
base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight
base_model.model.model.layers.2.mlp.gate_proj.lora_A.weight
base_model.model.model.layers.2.mlp.up_proj.lora_B.weight
base_model.model.model.layers.3.mlp.down_proj.lora_A.weight
base_model.model.model.layers.3.mlp.down_proj.ia3_l
base_model.model.model.layers.4.self_attn.k_proj.ia3_l
base_model.model.model.embed_tokens.lora_embedding_A
base_model.model.lm_head.lora_embedding_B
base_model.model.model.decoder.layers.5.self_attn.out_proj.lora_A.weight
base_model.model.model.decoder.layers.5.fc1.lora_B.weight
base_model.model.model.decoder.layers.6.fc2.lora_magnitude_vector
base_model.model.model.layers.7.block_sparse_moe.experts.0.w1.lora_A.weight
base_model.model.transformer.h.8.attn.c_attn.lora_A.weight
base_model.model.transformer.h.8.attn.c_proj.lora_B.weight
base_model.model.transformer.h.9.mlp.c_fc.lora_A.weight
base_model.model.transformer.h.9.mlp.c_proj.ia3_l
base_model.model.transformer.h.10.self_attention.query_key_value.lora_B.weight
base_model.model.transformer.h.11.mlp.dense_h_to_4h.lora_A.weight
base_model.model.transformer.h.11.mlp.dense_4h_to_h.lora_B.weight
base_model.model.gpt_neox.layers.12.attention.query_key_value.lora_A.weight
base_model.model.encoder.block.13.layer.0.SelfAttention.q.lora_A.weight
base_model.model.decoder.block.13.layer.1.EncDecAttention.v.lora_B.weight
base_model.model.encoder.block.14.layer.1.DenseReluDense.wo.ia3_l
base_model.model.decoder.block.14.layer.2.DenseReluDense.wi.lora_A.weight
base_model.model.vit.encoder.layer.18.attention.attention.query.lora_A.weight
base_model.model.model.encoder.layers.19.self_attn.v_proj.lora_B.weight
base_model.model.roberta.encoder.layer.16.attention.self.value.lora_B.weight
base_model.model.bert.encoder.layer.15.attention.self.query.lora_A.weight
base_model.model.bert.encoder.layer.15.attention.self.key.ia3_l
base_model.model.bert.encoder.layer.16.attention.output.dense.ia3_l
base_model.model.bert.encoder.layer.17.intermediate.dense.lora_A.weight
base_model.model.bert.encoder.layer.17.output.dense.lora_B.weight
base_model.model.classifier.dense.bias
base_model.model.classifier.out_proj.weight
base_model.model.score.weight
base_model.model.classifier.weight
base_model.model.classifier.bias
not a residual (modules_to_save or similar)
non-float dtype I64
model.safetensors.index.json
model-00001-of-00002.safetensors
config.json
adapter_model.bin
model.safetensors
full-fine-tune
residual
prune
stc
tensor
adapter_config.json
adapter_model.safetensors
format
pt
compeft 0.1.0
peft-adapter
compeft
global
{
  "auto_mapping": null,
  "base_model_name_or_path": "meta-llama/Llama-3.1-8B",
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "feedforward_modules": [
    "down_proj"
  ],
  "inference_mode": true,
  "init_ia3_weights": true,
  "modules_to_save": null,
  "peft_type": "IA3",
  "peft_version": "0.21.2",
  "revision": null,
  "target_modules": [
    "down_proj",
    "k_proj",
    "v_proj"
  ],
  "task_type": "CAUSAL_LM"
}
{
  "alora_invocation_tokens": null,
  "alpha_pattern": {},
  "arrow_config": null,
  "auto_mapping": null,
  "base_model_name_or_path": "meta-llama/Llama-3.1-8B",
  "bias": "none",
  "corda_config": null,
  "ensure_weight_tying": false,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "kasa_config": null,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 32,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "lora_ga_config": null,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "monteclora_config": null,
  "peft_type": "LORA",
  "peft_version": "0.21.2",
  "qalora_group_size": 16,
  "r": 16,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "down_proj",
    "gate_proj",
    "k_proj",
    "o_proj",
    "q_proj",
    "up_proj",
    "v_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_bdlora": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": false,
  "velora_config": null
}
"""#
}
