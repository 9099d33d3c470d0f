"""Where inference runs and at which precision, plus out-of-memory detection for the fallback path.

Device order for ``"auto"``: CUDA, then Apple MPS, then CPU. Reduced precision is an autocast dtype,
never a cast of the weights, so the model the caller passed in is left untouched.

Tolerance of the reduced-precision path, measured by ``benchmarks/bench_inference.py`` on an ACDC
volume (the bundled UNet2D 16/4, T = 10, same dropout masks as the fp32 run): bf16 mean softmax
within 0.026 of fp32 at the worst voxel (99.9th percentile 0.007), entropy within 0.04 nats,
99.99 % argmax agreement; two fp32 runs with different seeds differ by 0.23 and 0.62 nats.

bf16 keeps fp32's exponent range, so it is the reduced precision of choice; fp16 is used only on
CUDA devices without bf16. On a CPU, "auto" takes bf16 only where it is *measured* faster: native
bf16 arithmetic is necessary (without AVX512-BF16 or AMX oneDNN emulates it) but not sufficient. On
an AMD EPYC with AVX512-BF16 the bf16 engine ran at 4.2x the naive fp32 loop; on an Intel Xeon that
exposes AVX512-BF16 but no AMX, a 3x3 convolution took 4.5 ms in bf16 and 2.5 ms in fp32, and the
whole engine 8.8 s against 8.0 s in fp32 (``benchmarks/results/inference.md``).
"""

from __future__ import annotations

import functools
import time

import torch

from napari_uqseg.errors import InputError

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(override: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``None``/``"auto"`` picks CUDA, then MPS, then CPU.

    An explicit ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` is honoured if that device exists;
    anything else raises :class:`InputError` naming the value.
    """
    if isinstance(override, torch.device):
        override = str(override)
    choice = "auto" if override is None else str(override).strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as err:
        raise InputError(
            f"device {override!r} is not a device name; use auto, cpu, cuda, cuda:N or mps"
        ) from err
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {override!r} requested but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"device {override!r}: only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return device
    if device.type == "mps":
        if not _mps_available():
            raise InputError(f"device {override!r} requested but Apple MPS is not available here")
        return device
    raise InputError(f"device {override!r} is not supported; use auto, cpu, cuda, cuda:N or mps")


def _cpu_has_native_bf16() -> bool:
    # Without AVX512-BF16/AMX oneDNN emulates bf16, slower than fp32: not worth the accuracy cost.
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: bf16 must be at least this much faster than fp32 on the probe convolution to be chosen.
BF16_MIN_GAIN = 1.25


@functools.lru_cache(maxsize=1)
def cpu_bf16_pays_off() -> bool:
    """Whether this CPU runs bf16 convolutions clearly faster than fp32 ones, measured once per
    process (about 0.1 s): a 3x3, 32-channel convolution over two 64x64 channels-last images,
    the two dtypes timed in turn, the fastest of seven calls each (so a busy core delays both)."""
    if not _cpu_has_native_bf16():
        return False
    x = torch.randn(2, 32, 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(32, 32, 3, 3).contiguous(memory_format=torch.channels_last)
    inputs = {dtype: (x.to(dtype), w.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    fastest = dict.fromkeys(inputs, float("inf"))
    try:
        with torch.inference_mode():
            for _ in range(2):  # the first calls create oneDNN's kernels
                for xs, ws in inputs.values():
                    torch.nn.functional.conv2d(xs, ws, padding=1)
            for _ in range(7):
                for dtype, (xs, ws) in inputs.items():
                    start = time.perf_counter()
                    torch.nn.functional.conv2d(xs, ws, padding=1)
                    fastest[dtype] = min(fastest[dtype], time.perf_counter() - start)
    except RuntimeError:  # a oneDNN build that refuses bf16 after all
        return False
    return fastest[torch.float32] > BF16_MIN_GAIN * fastest[torch.bfloat16]


def autocast_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None`` means plain fp32).

    ``"auto"``: bf16 on CUDA with bf16 support (else fp16), bf16 on CPUs where it is measured
    faster (:func:`cpu_bf16_pays_off`), fp32 elsewhere (MPS, other CPUs). An explicit
    ``"bf16"``/``"fp16"`` is honoured where autocast supports it and raises :class:`InputError`
    otherwise.
    """
    device = torch.device(device)
    key = str(precision).strip().lower()
    if key not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if key == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_bf16_pays_off():
            return torch.bfloat16
        return None
    dtype = _DTYPES[key]
    if dtype is not None and not torch.amp.is_autocast_available(device.type):
        raise InputError(f"precision {precision!r} is not supported on device {device}")
    if device.type == "cpu" and dtype is not None and not _cpu_runs(dtype):
        need = "AVX512-FP16 or AVX-NE-CONVERT" if dtype == torch.float16 else "AVX512-BF16 or AMX"
        raise InputError(
            f"precision {precision!r}: this CPU's convolutions cannot run {key} "
            f"(they need {need}); "
            "use --precision auto or fp32"
        )
    return dtype


def _cpu_runs(dtype: torch.dtype) -> bool:
    """Whether oneDNN's convolutions take ``dtype`` on this CPU (they raise otherwise)."""
    if dtype == torch.bfloat16:
        return _cpu_has_native_bf16()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision_name(dtype: torch.dtype | None) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` for an autocast dtype (for reports and JSON)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure that a smaller batch or the CPU could avoid."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )
