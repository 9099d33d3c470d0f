"""Thread choice: affinity, cgroup quota and competing runnable threads at our priority."""

from __future__ import annotations

import os

import pytest
import torch

from napari_uqseg.errors import InputError
from napari_uqseg.inference import threads


def fake_task(proc, pid: int, state: str, nice: int) -> None:
    task = proc / str(pid) / "task" / str(pid)
    task.mkdir(parents=True)
    fields = [state, "1", "1", "1", "0", "-1", "0"] + ["0"] * 9 + [str(nice), "1"]
    (task / "stat").write_text(f"{pid} (a (b) c) {' '.join(fields)}\n")


def test_runnable_competitors_ignore_niced_sleeping_and_own_threads(tmp_path):
    fake_task(tmp_path, 101, "R", 0)
    fake_task(tmp_path, 102, "R", 19)  # a nice'd training run: does not count
    fake_task(tmp_path, 103, "S", 0)
    fake_task(tmp_path, os.getpid(), "R", 0)
    assert threads.runnable_competitors(tmp_path) == 1
    assert threads.busy_cores(samples=3, interval_s=0, proc=tmp_path) == 1


def test_cgroup_quota_v2_and_v1(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert threads.cgroup_quota(v1) == 2.0


def test_auto_subtracts_busy_cores_and_keeps_one(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0)
    monkeypatch.setattr(threads, "_last_auto", None)
    assert threads.choose_threads("auto") == 2
    monkeypatch.setattr(threads, "busy_cores", lambda: 5)
    assert threads.choose_threads("auto") == 2  # reused for REUSE_S seconds
    monkeypatch.setattr(threads, "REUSE_S", 0.0)
    assert threads.choose_threads("auto") == 1
    assert threads.choose_threads(3) == 3 and threads.choose_threads(None) is None
    with pytest.raises(InputError, match="threads"):
        threads.choose_threads("many")


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with threads.torch_threads(1) as used:
        assert used == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
