"""Where and in what precision a model runs: device choice and dynamic int8 quantisation for CPU."""

from __future__ import annotations

import warnings

import torch

from rag.config import EmbeddingSettings, RerankerSettings
from rag.errors import ConfigError, ModelNotAvailableError


def pick_device(requested: str, setting: str = "embedding.device") -> str:
    """auto -> cuda when available, else cpu; an explicit cuda without a GPU is an error naming ``setting``."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        env = "RAG_" + setting.upper().replace(".", "__")
        raise ModelNotAvailableError(
            f"{setting} is cuda but PyTorch sees no CUDA GPU (CPU build of torch, or no driver). "
            f"Set {setting}: auto or cpu ({env}=cpu)."
        )
    return requested


def device_for(settings: EmbeddingSettings | RerankerSettings, section: str = "embedding") -> str:
    """The device a model runs on; int8 quantisation is a CPU technique, so it implies the CPU.

    ``section`` is where the settings live in the config (``embedding``, ``retrieval.reranker``), for messages.
    """
    if settings.quantize == "int8":
        if settings.device == "cuda":
            raise ConfigError(
                f"{section}.quantize is int8 but {section}.device is cuda: dynamic int8 quantisation runs on the "
                "CPU only. On a GPU use quantize: none (fp16 is used there); on a CPU set device: cpu or auto."
            )
        return "cpu"
    return pick_device(settings.device, f"{section}.device")


def quantize_int8(module: torch.nn.Module, setting: str = "embedding.quantize") -> torch.nn.Module:
    """Quantise ``module``'s Linear layers to dynamic int8, in place, and return it (``setting``: for messages).

    Weights become int8 per output channel; activations are quantised per forward pass from their observed
    range (PyTorch's eager dynamic quantisation, fbgemm/x86 kernels). Embeddings, LayerNorms and the heads
    outside ``module`` stay fp32. ``torch.ao.quantization`` is marked deprecated in favour of torchao, but
    torchao's int8 path ran slower than fp32 in eager mode on CPU (see benchmarks/encoder_throughput.py),
    while this one is about twice as fast, so it is used while PyTorch ships it.
    """
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # a future PyTorch without eager quantisation
        raise ConfigError(
            f"{setting} is int8 but this PyTorch ({torch.__version__}) has no torch.ao.quantization dynamic "
            f"quantisation. Set {setting}: none (RAG_{setting.upper().replace('.', '__')}=none)."
        ) from exc
    if "fbgemm" not in torch.backends.quantized.supported_engines and (
        "x86" not in torch.backends.quantized.supported_engines
    ):
        raise ConfigError(
            f"{setting} is int8 but this PyTorch build has no x86 int8 kernels (fbgemm); int8 needs an "
            f"x86-64 CPU build of PyTorch. Set {setting}: none."
        )
    module.float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return module
