"""Process-wide torch settings shared by both training engines."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def cpu_cuda_probe(on_cpu: bool) -> Iterator[None]:
    """On the CPU, ask CUDA for its device count through the (cached) runtime instead of NVML.

    Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, and torch's Adam asks
    ``torch.accelerator.is_available()`` on every step; with a CUDA build of torch but no initialised GPU
    that reloads the NVML library each time (about 0.15 ms a step, a quarter of a small MLP's step here).
    """
    if not on_cpu:
        yield
        return
    previous = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
        else:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = previous

