import json

import torch

from multidiff.core import provenance
from multidiff.core.provenance import Run, device_string


def test_a_run_records_command_device_load_memory_and_commit(monkeypatch):
    loads = iter([(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)])
    monkeypatch.setattr(provenance.os, "getloadavg", lambda: next(loads))
    run = Run(["benchmarks/x.py", "--name", "a b"])
    block = run.provenance()
    json.dumps(block)  # JSON-able as it is
    assert block["command"] == "python benchmarks/x.py --name 'a b'"  # quoted as a shell would need it
    assert block["load_before"] == [1.0, 2.0, 3.0] and block["load_after"] == [4.0, 5.0, 6.0]
    assert block["device"] == device_string() and f"{torch.get_num_threads()} torch threads" in block["device"]
    assert block["threads"] == torch.get_num_threads() and block["cpu_count"] >= 1
    assert 0.01 < block["peak_rss_gb"] < 1000  # torch alone takes more than 10 MB; KiB read as GiB would not
    assert block["date"].endswith(" UTC") and len(block["date"]) == len("2026-01-01 00:00 UTC")
    assert block["commit"] is None or len(block["commit"]) == 40


def test_no_commit_outside_a_checkout(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")
    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert provenance.git_commit() is None and Run([]).provenance()["commit"] is None
