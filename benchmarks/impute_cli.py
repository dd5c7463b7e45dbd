"""The command line shared by ``impute_aqi36.py`` and ``impute_physionet.py``: CSDI's protocol
(:mod:`multidiff.tasks.imputation.evaluate`) with the peers, the table with device, date,
command and load average, and the result as JSON."""
import argparse
import time

from multidiff.core.io import write_json_atomic
from multidiff.core.device import resolve_device
from multidiff.core.provenance import Run
from multidiff.tasks.imputation import peers as peer_lib
from multidiff.tasks.imputation.evaluate import format_row, format_table, run_aqi36, run_physionet


def main(dataset: str, argv=None) -> dict:
    """Run CSDI's ``dataset`` protocol ("aqi36" or "physionet"), print the table with device, date,
    command and load average, and write the result as JSON."""
    p = argparse.ArgumentParser(description=f"CSDI's {dataset} benchmark protocol")
    p.add_argument("--max-time", type=float, default=1200.0, help="training wall-time budget in seconds")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--base", default="interpolation", choices=["interpolation", "none"])
    p.add_argument("--prediction", default="v", choices=["eps", "x0", "v"])
    p.add_argument("--samplers", default="ddpm:50,ddim:10,ddim:5", help="name:steps,... to evaluate")
    p.add_argument("--pypots", action="store_true", help="also train PyPOTS SAITS and CSDI for the same time")
    p.add_argument("--peers", default=",".join(peer_lib.PEERS),
                   help=f"comma-separated baselines to run, among: {', '.join(peer_lib.PEERS)}")
    p.add_argument("--pretrained", default="none",
                   help="'none' (CSDI from scratch), 'default' (the shipped network, fine-tuned) or a network folder")
    p.add_argument("--compare-scratch", action="store_true",
                   help="with --pretrained: also train CSDI from scratch for the same time, in the same run")
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=f"benchmarks/out/impute_{dataset}.json")
    p.add_argument("--save-model", default=None, help="directory to save the trained imputer in")
    if dataset == "physionet":
        p.add_argument("--missing-ratio", type=float, default=0.1)
        p.add_argument("--limit", type=int, default=None, help="read only the first N records (CPU smoke runs)")
    a = p.parse_args(argv)
    samplers = [(sp.split(":")[0], int(sp.split(":")[1])) for sp in a.samplers.split(",")]
    peers = [name.strip() for name in a.peers.split(",") if name.strip()]
    unknown = sorted(set(peers) - set(peer_lib.PEERS))
    if unknown:
        p.error(f"unknown peers {unknown}; choose among {list(peer_lib.PEERS)}")
    pretrained = None if a.pretrained.lower() == "none" else a.pretrained
    params = dict(n_samples=a.samples, epochs=a.epochs, max_steps=a.max_steps, max_time=a.max_time,
                  batch_size=a.batch_size, channels=a.channels, layers=a.layers, heads=a.heads,
                  base=None if a.base == "none" else a.base, prediction=a.prediction, device=a.device,
                  progress=True, samplers=samplers, pypots=a.pypots, peers=peers, save_model=a.save_model,
                  pretrained=pretrained, report=lambda row: print("row:", format_row(row), flush=True))
    run = (lambda **kw: run_physionet(a.data, missing_ratio=a.missing_ratio, limit=a.limit, **kw)) \
        if dataset == "physionet" else (lambda **kw: run_aqi36(a.data, **kw))
    t0, prov = time.time(), Run(device=resolve_device(a.device))
    res = run(**params)
    if pretrained is not None:
        for row in res["rows"][:len(samplers)]:
            row["method"] = row["method"].replace("multidiff", f"multidiff pretrained ({a.pretrained}), fine-tuned")
    if pretrained is not None and a.compare_scratch:  # CSDI from scratch for the same time, no peers again
        scratch = run(**{**params, "pretrained": None, "peers": (), "pypots": False, "save_model": None})
        for row in scratch["rows"]:
            row["method"] = row["method"].replace("multidiff", "multidiff from scratch (CSDI)")
        res["rows"] = res["rows"][:len(samplers)] + scratch["rows"] + res["rows"][len(samplers):]
        res["scratch"] = {k: scratch[k] for k in ("train_s", "steps", "stopped_by", "params")}
    res.update(prov.provenance(), wall_s=time.time() - t0)
    print(f"device: {res['device']}  date: {res['date']}  wall: {res['wall_s']:.0f} s  load (1/5/15 min) before "
          f"{'/'.join(f'{v:.1f}' for v in res['load_before'])}, after {'/'.join(f'{v:.1f}' for v in res['load_after'])}")
    print(f"command: {res['command']}")
    print(format_table(res))
    write_json_atomic(a.out, res, indent=1, default=str)
    return res
