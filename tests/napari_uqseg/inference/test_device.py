"""Device selection, autocast precision and out-of-memory detection."""

from __future__ import annotations

import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference.device import (
    autocast_dtype,
    cpu_bf16_pays_off,
    is_out_of_memory,
    precision_name,
    select_device,
)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("napari_uqseg.inference.device._mps_available", lambda: False)
    assert select_device() == torch.device("cpu")
    assert select_device("auto") == torch.device("cpu")
    monkeypatch.setattr("napari_uqseg.inference.device._mps_available", lambda: True)
    assert select_device(None) == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("AUTO") == torch.device("cuda")


def test_explicit_devices_are_checked(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("napari_uqseg.inference.device._mps_available", lambda: False)
    with pytest.raises(InputError, match=r"'cuda:1'.*not available"):
        select_device("cuda:1")
    with pytest.raises(InputError, match="'mps'"):
        select_device("mps")
    with pytest.raises(InputError, match="'gpu please'"):
        select_device("gpu please")


def test_precision_choices():
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "auto") in (None, torch.bfloat16)
    assert autocast_dtype(torch.device("mps"), "auto") is None
    with pytest.raises(InputError, match="'fp8'"):
        autocast_dtype(cpu, "fp8")
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == [
        "fp32",
        "bf16",
        "fp16",
    ]


@pytest.mark.parametrize("key, dtype", [("bf16", torch.bfloat16), ("FP16", torch.float16)])
def test_explicit_half_precision_on_cpu_follows_what_onednn_can_run(monkeypatch, key, dtype):
    # A CPU without the instructions made oneDNN raise mid-run (a traceback from uqseg predict
    # --precision fp16 on an AVX512-BF16 machine without AVX512-FP16): refused up front instead.
    monkeypatch.setattr("napari_uqseg.inference.device._cpu_runs", lambda d: True)
    assert autocast_dtype("cpu", key) is dtype
    monkeypatch.setattr("napari_uqseg.inference.device._cpu_runs", lambda d: False)
    with pytest.raises(InputError, match="cannot run"):
        autocast_dtype("cpu", key)


def test_cpu_half_precision_check_agrees_with_onednn():
    if torch.ops.mkldnn._is_mkldnn_fp16_supported():
        assert autocast_dtype("cpu", "fp16") is torch.float16
    else:
        with pytest.raises(InputError, match="fp16"):
            autocast_dtype("cpu", "fp16")
    # auto picks bf16 only where oneDNN has native bf16 and it measured faster
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    auto = autocast_dtype("cpu", "auto")
    assert auto is (torch.bfloat16 if cpu_bf16_pays_off() else None)
    assert native or auto is None


def test_auto_uses_bf16_only_where_native_and_measured_faster(monkeypatch):
    cpu_bf16_pays_off.cache_clear()
    monkeypatch.setattr("napari_uqseg.inference.device._cpu_has_native_bf16", lambda: False)
    assert autocast_dtype("cpu", "auto") is None
    cpu_bf16_pays_off.cache_clear()
    monkeypatch.setattr("napari_uqseg.inference.device._cpu_has_native_bf16", lambda: True)
    slow_bf16 = {torch.bfloat16: 0.004, torch.float32: 0.0025}  # the Intel Xeon of the docstring

    def fake_timer(times):
        clock = [0.0]

        def conv2d(x, w, padding):
            clock[0] += times[x.dtype]  # each call takes its dtype's time on a fake clock
            return x

        return conv2d, lambda: clock[0]

    for times, want in ((slow_bf16, None), ({torch.bfloat16: 0.001, torch.float32: 0.003}, True)):
        conv2d, perf_counter = fake_timer(times)
        monkeypatch.setattr("torch.nn.functional.conv2d", conv2d)
        monkeypatch.setattr("napari_uqseg.inference.device.time.perf_counter", perf_counter)
        cpu_bf16_pays_off.cache_clear()
        assert autocast_dtype("cpu", "auto") is (torch.bfloat16 if want else None)
    cpu_bf16_pays_off.cache_clear()


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: 1 GB"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))
