"""torch's thread pool is capped at the CPUs a container's quota allows."""
import os

import torch

from rgbkit.models.threads import apply_default, cpu_budget


def _cgroup(tmp_path, text):
    (tmp_path / "cpu.max").write_text(text)
    return tmp_path


def test_cpu_budget_reads_the_cgroup_quota(tmp_path):
    visible = len(os.sched_getaffinity(0))
    assert cpu_budget(_cgroup(tmp_path, "max 100000\n")) == visible
    assert cpu_budget(_cgroup(tmp_path, "100000 100000\n")) == 1
    assert cpu_budget(_cgroup(tmp_path, "150000 100000\n")) == min(visible, 2)
    assert cpu_budget(tmp_path / "absent") == visible


def test_apply_default_respects_the_user(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("RGBKIT_THREADS", "1")
        assert apply_default() == 1
        monkeypatch.delenv("RGBKIT_THREADS")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(3)
        assert apply_default() == 3  # OMP_NUM_THREADS set: left alone
        monkeypatch.delenv("OMP_NUM_THREADS")
        torch.set_num_threads(cpu_budget() + 4)
        assert apply_default() == cpu_budget()
    finally:
        torch.set_num_threads(before)
