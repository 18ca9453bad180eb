"""PyTorch and PEFT: state dicts, PEFT models and in-place application, straight from a container.

torch and peft are imported when these functions are first called, never by ``import compeft``.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Union

import numpy as np

from . import _dtypes
from .container import Container, PathLike, TensorInfo
from .container import open as open_container
from .errors import CorruptError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import torch

Source = Union[PathLike, Container]

__all__ = ["load_state_dict", "load_peft", "apply"]


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[Container]:
    """The container `source` names (opened and closed here), or `source` itself when it is open."""
    if isinstance(source, Container):
        yield source
        return
    c = open_container(source)
    try:
        yield c
    finally:
        c.close()


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _decoded_type(info: TensorInfo, dtype: Any) -> _dtypes.DType:
    """The type a float tensor is decoded into: `dtype`, else its own (F64 residuals: F32)."""
    if dtype is not None:
        target, _ = _dtypes.output_type(dtype)
        return target
    return {"F16": _dtypes.F16, "BF16": _dtypes.BF16}.get(info.dtype, _dtypes.F32)


def _exact_tensor(c: Container, info: TensorInfo) -> torch.Tensor:
    """A tensor stored exactly, in its own dtype (bf16 and f8 bits viewed as those types)."""
    import torch

    values = c.exact_values(info.name)
    dtype = _dtypes.BY_NAME[info.dtype]
    tensor = torch.from_numpy(np.ascontiguousarray(values))
    if dtype.torch and tensor.dtype != _torch_dtype(dtype.torch):
        tensor = tensor.view(_torch_dtype(dtype.torch))
    return tensor


def load_state_dict(
    source: Source, dtype: Any = None, *, device: Any = None, threads: int = 1
) -> dict[str, torch.Tensor]:
    """Decodes every tensor of a container into a ``dict[str, torch.Tensor]``: what
    ``safetensors.torch.load_file`` gives for the decompressed file, without writing it.

    Each tensor is allocated once, in its final type, and the library decodes straight into it: memory
    is the tensors themselves plus one tensor's compressed payload at a time, never a second copy.

    Args:
        source: a path, or an open :class:`Container`.
        dtype: the type of every float tensor (``torch.bfloat16``, ``torch.float16``,
            ``torch.float32``). None keeps each tensor's own type (float64 residuals become float32: their
            values are binary32). Tensors that are not floats (stored exactly) keep their type either way.
        device: move the tensors there after decoding (e.g. ``"cuda"``); None keeps them on the CPU.
        threads: tensors decoded at once (each call releases the GIL); the values do not depend on it.

    Raises:
        CorruptError: a payload fails its checksum (the message names the tensor).
    """
    import torch

    if threads < 1:
        raise InvalidArgumentError(f"threads must be at least 1, got {threads}")
    with _opened(source) as c:
        result: dict[str, torch.Tensor] = {}
        jobs: list[tuple[TensorInfo, _dtypes.DType, torch.Tensor]] = []
        for info in c.tensors.values():
            if not info.is_float or (dtype is None and info.role == "exact" and info.dtype == "F64"):
                result[info.name] = _exact_tensor(c, info)
                continue
            target = _decoded_type(info, dtype)
            tensor = torch.empty(info.shape, dtype=_torch_dtype(target.torch))
            result[info.name] = tensor
            jobs.append((info, target, tensor))

        def run(job: tuple[TensorInfo, _dtypes.DType, torch.Tensor]) -> None:
            info, target, tensor = job
            c._decode_raw(info, target, tensor.data_ptr(), tensor.numel() * target.itemsize)

        if threads == 1 or len(jobs) < 2:
            for job in jobs:
                run(job)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run, jobs))
    if device is not None and torch.device(device).type != "cpu":
        result = {k: v.to(device) for k, v in result.items()}
    return result


# ---- PEFT -------------------------------------------------------------------------------------------


def _peft_config(c: Container) -> Any:
    """The container's adapter config as PEFT's config object, built as ``PeftConfig.from_pretrained``
    builds it from ``adapter_config.json``."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    raw = c.adapter_config_json
    if raw is None:
        kind = c.metadata.get("inputKind", "not a PEFT adapter")
        raise InvalidArgumentError(
            f"{c.path}: holds no adapter_config.json ({kind}), so it is not a PEFT adapter; "
            "use compeft.apply() for a full fine-tune or compeft.load_state_dict() for residuals"
        )
    attributes = json.loads(raw)
    if "runtime_config" in attributes:
        warnings.warn("The configuration file contains a `runtime_config` key. This is ignored.")
        del attributes["runtime_config"]
    peft_type = attributes.get("peft_type")
    if peft_type not in PEFT_TYPE_TO_CONFIG_MAPPING:
        raise InvalidArgumentError(f"{c.path}: adapter_config.json names peft_type {peft_type!r}, which this peft does not know")
    config_class = PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]
    return config_class.from_peft_type(**config_class.check_kwargs(**attributes))


def _remap(weights: dict[str, Any], key_mapping: Mapping[str, str]) -> dict[str, Any]:
    """PEFT's ``load_peft_weights`` key remapping (transformers' ``_checkpoint_conversion_mapping``)."""
    remapped = {}
    for key, value in weights.items():
        prefix = "base_model.model." if key.startswith("base_model.model.") else "base_model." if key.startswith("base_model.") else None
        if prefix is None:
            raise InvalidArgumentError(f"tensor '{key}' has no base_model prefix, so key_mapping cannot apply to it")
        key = key.removeprefix(prefix)
        for pattern, replacement in key_mapping.items():
            key, n = re.subn(pattern, replacement, key)
            if n > 0:
                break
        remapped[prefix + key] = value
    return remapped


def _decode_in_place(model: Any, c: Container, adapter_name: str, dtype: Any) -> bool:
    """Replaces the weights of an adapter the model already has by decoding straight into its parameters,
    when that gives exactly what ``set_peft_model_state_dict`` would: every tensor of the container is one
    of the adapter's saved tensors, with the same shape, in the type it would be decoded into, and is a
    contiguous CPU parameter. Returns False (having written nothing) when any of that does not hold."""
    from peft.utils import get_peft_model_state_dict

    targets = get_peft_model_state_dict(model, adapter_name=adapter_name)
    if set(targets) != set(c.tensors):
        return False
    live = {p.data_ptr() for p in model.parameters()} | {b.data_ptr() for b in model.buffers()}
    plan = []
    for info in c.tensors.values():
        target = targets[info.name]
        if not info.is_float or tuple(target.shape) != info.shape or target.device.type != "cpu":
            return False
        if not target.is_contiguous() or target.data_ptr() not in live or info.count == 0:
            return False
        decoded = _decoded_type(info, dtype)
        if str(target.dtype) != f"torch.{decoded.torch}":
            return False
        plan.append((info, decoded, target))
    for info, decoded, target in plan:
        c._decode_raw(info, decoded, target.data_ptr(), target.numel() * decoded.itemsize)
    return True


def load_peft(
    model: Any,
    source: Source,
    adapter_name: str = "default",
    *,
    is_trainable: bool = False,
    dtype: Any = None,
    device: Any = None,
    autocast_adapter_dtype: bool = True,
    low_cpu_mem_usage: bool = False,
    key_mapping: Mapping[str, str] | None = None,
) -> Any:
    """Loads a PEFT adapter from a container into a model, as ``PeftModel.from_pretrained`` (or, for a
    ``PeftModel``, ``load_adapter``) does from the decompressed folder, with no folder: the config comes
    from the container's ``adapter_config.json`` and the weights are decoded in memory.

    - `model` is a base model: returns a new ``PeftModel`` (the task type's subclass) wrapping it, with
      the adapter loaded and active.
    - `model` is a ``PeftModel`` without `adapter_name`: adds the adapter (not activated; use
      ``model.set_adapter(adapter_name)``), as ``load_adapter`` does.
    - `model` is a ``PeftModel`` that has `adapter_name`: replaces its weights (a swap). When the
      adapter's tensors are contiguous CPU parameters of the decoded type, the library decodes straight
      into them, with no intermediate tensor.

    Args:
        model: a ``torch.nn.Module`` (e.g. a transformers model) or a ``peft.PeftModel``.
        source: a container path, or an open :class:`Container`.
        adapter_name: the adapter's name in the model.
        is_trainable: leave the adapter trainable (default: frozen, model in eval mode).
        dtype: decode the weights in this torch dtype (default: their own).
        device: where the decoded weights go (default: PEFT's choice, ``peft.utils.infer_device()``).
        autocast_adapter_dtype, low_cpu_mem_usage, key_mapping: as in ``PeftModel.from_pretrained``.

    Returns:
        The ``PeftModel``.

    Raises:
        InvalidArgumentError: the container is not a PEFT adapter, or its peft_type is unknown to peft.
        CorruptError: a payload is damaged (nothing is loaded then).
    """
    from peft import PeftModel
    from peft.utils import infer_device, set_peft_model_state_dict

    with _opened(source) as c:
        config = _peft_config(c)
        created = not isinstance(model, PeftModel)
        if created:
            from peft.auto import MODEL_TYPE_TO_PEFT_MODEL_MAPPING

            offload = getattr(model, "hf_device_map", None)
            if offload and set(offload.values()) & {"cpu", "disk"} and len(set(offload.values())) > 1:
                raise NotImplementedError(
                    f"{c.path}: the model is dispatched with CPU or disk offload; load the decompressed folder with "
                    "PeftModel.from_pretrained (compeft.decompress) for that"
                )
            if key_mapping is None and not config.is_prompt_learning:
                key_mapping = getattr(model, "_checkpoint_conversion_mapping", {})
            config.inference_mode = not is_trainable
            peft_class = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, PeftModel)
            peft_model = peft_class(model, config, adapter_name, autocast_adapter_dtype=autocast_adapter_dtype,
                                    low_cpu_mem_usage=low_cpu_mem_usage)
        else:
            peft_model = model
        existed = not created and adapter_name in peft_model.peft_config
        if not created and not existed:
            peft_model._check_new_adapter_config(config, is_trainable=is_trainable)
            config.inference_mode = not is_trainable
            peft_model.add_adapter(adapter_name, config, low_cpu_mem_usage=low_cpu_mem_usage,
                                   autocast_adapter_dtype=autocast_adapter_dtype)
            if is_trainable and hasattr(peft_model, "set_requires_grad"):
                peft_model.set_requires_grad(adapter_name)

        if existed and not key_mapping and (device is None or str(device) == "cpu") and _decode_in_place(peft_model, c, adapter_name, dtype):
            missing: list[str] = []
        else:
            weights: dict[str, Any] = load_state_dict(c, dtype=dtype, device=device if device is not None else infer_device())
            if key_mapping:
                weights = _remap(weights, key_mapping)
            adapter_config = peft_model.peft_config[adapter_name]
            context = (peft_model.base_model._temporarily_active(adapter_name) if adapter_config.is_adaption_prompt
                       else contextlib.nullcontext())
            with context:
                result = set_peft_model_state_dict(peft_model, weights, adapter_name=adapter_name,
                                                   low_cpu_mem_usage=low_cpu_mem_usage)
            missing = list(result.missing_keys)

    from peft.utils import PeftType
    from peft.mapping import PEFT_TYPE_TO_PREFIX_MAPPING

    tuner = peft_model.peft_config[adapter_name].peft_type
    prefix = PEFT_TYPE_TO_PREFIX_MAPPING.get(tuner, "")
    adapter_missing = [k for k in missing if prefix in k and adapter_name in k and ".tinylora_v." not in k
                       and not (tuner == PeftType.UNILORA and ".unilora_theta_d." in k
                                and not k.startswith("base_model.unilora_theta_d."))]
    if hasattr(peft_model.base_model, "_cast_adapter_dtype"):
        peft_model.base_model._cast_adapter_dtype(adapter_name=adapter_name, autocast_adapter_dtype=autocast_adapter_dtype)
    if not is_trainable:
        peft_model.eval()
    if adapter_missing:
        warnings.warn(f"Found missing adapter keys while loading the checkpoint: {adapter_missing}.")
    return peft_model


# ---- full fine-tunes ---------------------------------------------------------------------------------


def apply(model: Any, source: Source, factor: float = 1.0, *, strict: bool = True, verify: bool = True) -> list[str]:
    """Adds ``factor × τ`` of every tensor of a container into the model's weights of the same name, in
    place: a full fine-tune (or a residual file) applied to its base model without a dense copy of τ.

    Args:
        model: a ``torch.nn.Module`` (its ``state_dict()`` names are matched) or a mapping of names to
            tensors.
        source: a container path, or an open :class:`Container`.
        factor: the scale of τ (1 gives the fine-tuned weights; 0.5 half the update; −1 removes it).
            Tensors stored exactly (not residuals) replace the weights and need factor 1.
        strict: every tensor of the container must be in the model (else nothing is changed).
        verify: check every payload's checksum before changing anything, so a damaged container
            raises instead of leaving the model half-updated.

    Returns:
        The names of the weights changed, in the container's order. A tensor whose memory another
        changed tensor shares (tied weights) is changed once.

    Raises:
        NotFoundError: with `strict`, a container tensor the model lacks (a ``KeyError``).
        InvalidArgumentError: a shape that differs; a factor other than 1 with exact tensors.
        CorruptError: with `verify`, a damaged payload (nothing is changed).
    """
    import torch

    from .tools import verify as verify_container

    factor = float(factor)
    targets = model.state_dict() if isinstance(model, torch.nn.Module) else dict(model)
    with _opened(source) as c:
        missing = [name for name in c.tensors if name not in targets]
        if missing and strict:
            raise NotFoundError(f"{c.path}: {len(missing)} tensor(s) not in the model: " + ", ".join(missing[:5])
                                + (", …" if len(missing) > 5 else ""))
        plan = []
        for info in c.tensors.values():
            if info.name not in targets:
                continue
            weights = targets[info.name]
            if tuple(weights.shape) != info.shape:
                raise InvalidArgumentError(f"{c.path}: tensor '{info.name}': shape {list(info.shape)}, the model's is {list(weights.shape)}")
            if _dtypes.of_array(weights)[0] is None:
                raise InvalidArgumentError(f"{c.path}: tensor '{info.name}': the model holds it as {weights.dtype}; "
                                           "compeft applies into float32, float16 or bfloat16 weights")
            if info.role == "exact" and factor != 1.0:
                raise InvalidArgumentError(f"{c.path}: tensor '{info.name}' is stored exactly (not a residual); apply it with factor 1")
            plan.append((info, weights))
        if verify:
            report = verify_container(c.path)
            if not report["ok"]:
                raise CorruptError(f"{c.path}: " + "; ".join(report["problems"]), function="compeft_verify")
        changed: list[str] = []
        seen: set[int] = set()
        with torch.no_grad():
            for info, weights in plan:
                if weights.data_ptr() in seen and info.count > 0:
                    continue
                seen.add(weights.data_ptr())
                if weights.device.type == "cpu" and weights.is_contiguous() and _dtypes.of_array(weights)[0] is not None:
                    c.apply(info.name, weights, factor)
                else:
                    work = weights.detach().to("cpu", copy=True).contiguous()
                    c.apply(info.name, work, factor)
                    weights.copy_(work)
                changed.append(info.name)
    return changed
