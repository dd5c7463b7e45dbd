"""The report of a purification evaluation: :class:`RobustnessReport` (tables, Markdown, JSON) and
the summary of several seeds' reports (:func:`summarise_seeds`, :func:`seed_summary`,
:func:`summary_markdown`).

Every number of a :class:`RobustnessReport` is recomputed from the stored per-example
predictions (never stored as a result), with Wilson 95 % intervals over examples (Wilson 1927);
means over purification draws and over seeds carry Student-t intervals.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...core.io import write_json_atomic, write_text_atomic
from ...metrics.robustness import correct, first_converged, mean_interval, wilson_interval, worst_case_correct
from ...metrics.tables import markdown_table

__all__ = ["RobustnessReport", "summarise_seeds", "seed_summary", "cross_check", "summary_markdown"]

TARGETS = ("undefended", "defended")


def draw_target(k: int) -> str:
    """The predictions' key of the defended model under purification draw ``k`` (0: ``"defended"``)."""
    return "defended" if k == 0 else f"defended@{k}"


@dataclass
class RobustnessReport:
    """What :func:`~multidiff.tasks.purify.evaluate` measured: the per-input predictions of each target
    (clean and under every attack, every purification draw), the settings, timings and convergence
    curve; every accuracy and interval is recomputed from the predictions. ``save``/``load`` write and
    read it as JSON (with a Markdown rendering beside it)."""

    labels: list[int]                                # true class per example
    predictions: dict[str, dict[str, list[int]]]     # "clean" / attack -> target -> predicted class per example
    settings: dict = field(default_factory=dict)     # eps, norm, purifier, per-attack settings, seed ...
    timings: dict = field(default_factory=dict)      # seconds (measured, not derived)
    confidence: float = 0.95
    examples: Optional[dict] = field(default=None, repr=False)  # a few tensors for the PNG grid; not serialised
    convergence: Optional[dict] = None               # the attack's curve: schedule, tol, runs with their predictions

    def __post_init__(self):
        n = len(self.labels)
        runs = [] if self.convergence is None else self.convergence["runs"]
        named = [(name, by_target) for name, by_target in self.predictions.items()]
        named += [(f"convergence run {i}", r["predictions"]) for i, r in enumerate(runs)]
        for name, by_target in named:
            for target, pred in by_target.items():
                if len(pred) != n:
                    raise ValueError(f"predictions[{name!r}][{target!r}] has {len(pred)} entries for {n} labels")

    def correct(self, name: str, target: str) -> np.ndarray:
        """Per-input correctness under ``name`` (``"worst-case"``: under every attack run, the
        convergence runs included; the defence's draw is shared, so this is the per-input minimum)."""
        if name == "worst-case":
            runs = [r["predictions"][target] for r in (self.convergence or {"runs": []})["runs"]]
            attacks = [by[target] for a, by in self.predictions.items() if a != "clean" and target in by]
            return worst_case_correct(self.labels, *attacks, *runs)
        return correct(self.predictions[name][target], self.labels)

    def _row(self, c: np.ndarray) -> dict:
        lo, hi = wilson_interval(int(c.sum()), len(c), self.confidence)
        return {"accuracy": float(c.mean()), "ci_low": lo, "ci_high": hi, "n": len(c)}

    @property
    def n_draws(self) -> int:
        """How many purification draws every defended prediction was made under."""
        clean = self.predictions.get("clean", {})
        return 1 + sum(draw_target(k) in clean for k in range(1, len(clean) + 1))

    def _over_draws(self, correct_under) -> dict:
        """Mean accuracy over the draws with its Student-t interval: ``correct_under(target)`` gives
        the per-input correctness under one draw's predictions."""
        accs = [float(correct_under(draw_target(k)).mean()) for k in range(self.n_draws)]
        m, lo, hi = mean_interval(accs, self.confidence)
        return {"draws_mean": m, "draws_low": max(0.0, lo), "draws_high": min(1.0, hi), "n_draws": len(accs)}

    def over_draws(self, name: str) -> dict:
        """Defended accuracy under ``name`` (or ``"worst-case"``, taken per draw) averaged over the
        purification draws: ``{draws_mean, draws_low, draws_high, n_draws}``, a Student-t interval over
        draws (the attacks' adversarial inputs are fixed; only the defence's noise varies)."""
        return self._over_draws(lambda target: self.correct(name, target))

    def rows(self) -> list[dict]:
        """One row per (clean / attack / worst case, target): accuracy and its Wilson interval."""
        names = list(self.predictions)
        if sum(n != "clean" for n in names) + len((self.convergence or {"runs": []})["runs"]) > 1:
            names.append("worst-case")
        out = []
        for name in names:
            for target in TARGETS:
                if name != "worst-case" and target not in self.predictions[name]:
                    continue
                row = {"attack": name, "target": target, **self._row(self.correct(name, target))}
                if target == "defended" and self.n_draws > 1:
                    row.update(self.over_draws(name))
                out.append(row)
        return out

    def accuracy(self, name: str, target: str) -> float:
        """The fraction of inputs of row ``name`` that ``target`` classified correctly."""
        return float(self.correct(name, target).mean())

    # convergence -----------------------------------------------------------------------------

    def convergence_curve(self, along: str) -> list[dict]:
        """The curve ``along="attack_steps"`` (at the first EOT count) or ``"eot"`` (at the chosen
        steps): one row per run, ``{attack_steps, eot, seconds, undefended, defended}`` with each
        target's ``{accuracy, ci_low, ci_high, n}``, recomputed from the stored predictions."""
        if self.convergence is None:
            raise ValueError("this report has no convergence curve; run evaluate(..., converge=Convergence())")
        if along not in ("attack_steps", "eot"):
            raise ValueError(f"along must be 'attack_steps' or 'eot', got {along!r}")
        by_steps, by_eot = self._phases()
        chosen = by_steps if along == "attack_steps" else by_eot
        return [{"attack_steps": r["attack_steps"], "eot": r["eot"], "seconds": r["seconds"],
                 **{t: self._run_row(r, t) for t in TARGETS}} for r in chosen]

    def _phases(self) -> tuple[list[dict], list[dict]]:
        """The runs raising the steps, and those raising EOT headed by the chosen steps' run."""
        runs = self.convergence["runs"]
        by_steps = [r for r in runs if r["phase"] == "attack_steps"]
        accs = [float(correct(r["predictions"]["defended"], self.labels).mean()) for r in by_steps]
        i, _ = chosen_steps(accs, self.convergence["tol"])
        return by_steps, [by_steps[i]] + [r for r in runs if r["phase"] == "eot"]

    def _run_row(self, run: dict, target: str) -> dict:
        row = self._row(correct(run["predictions"][target], self.labels))
        if target == "defended" and self.n_draws > 1:
            row.update(self._over_draws(lambda t: correct(run["predictions"][t], self.labels)))
        return row

    def headline(self) -> dict:
        """The converged attack's setting and defended robust accuracy (the last run raising EOT,
        else the chosen steps' run), with whether each phase converged within ``tol`` (None: the
        schedule had one value, untested)."""
        if self.convergence is None:
            raise ValueError("this report has no convergence curve; run evaluate(..., converge=Convergence())")
        tol, sched = self.convergence["tol"], self.convergence["schedule"]
        flags = {}
        for along in ("attack_steps", "eot"):
            accs = [r["defended"]["accuracy"] for r in self.convergence_curve(along)]
            flags[f"{along}_converged"] = None if len(sched[along]) == 1 else first_converged(accs, tol)[1]
        last = self._phases()[1][-1]
        return {"attack": self.convergence["attack"], "attack_steps": last["attack_steps"], "eot": last["eot"],
                "tol": tol, **self._run_row(last, "defended"), **flags}

    # serialisation and rendering --------------------------------------------------------------

    def to_dict(self) -> dict:
        """The report as JSON-ready data: labels, every prediction, settings, timings, convergence."""
        d = {"labels": list(map(int, self.labels)),
             "predictions": {k: {t: list(map(int, p)) for t, p in v.items()} for k, v in self.predictions.items()},
             "settings": self.settings, "timings": self.timings, "confidence": self.confidence,
             "table": self.rows()}  # for readers; from_dict recomputes it from the predictions
        if self.convergence is not None:
            d["convergence"] = self.convergence
            d["headline"] = self.headline()  # for readers, recomputed on load as well
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RobustnessReport":
        """The report :meth:`to_dict` gave."""
        return cls(d["labels"], d["predictions"], d.get("settings", {}), d.get("timings", {}),
                   d.get("confidence", 0.95), convergence=d.get("convergence"))

    def to_markdown(self) -> str:
        """The settings and a table of accuracies with their Wilson intervals, in Markdown."""
        s = self.settings
        pct = lambda r: f"{100 * r['accuracy']:.1f} % [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
        mean = lambda r: f"{100 * r['draws_mean']:.1f} % ({100 * r['draws_low']:.1f}-{100 * r['draws_high']:.1f})"
        k = self.n_draws
        lines = []
        if self.convergence is not None:
            h = self.headline()
            said = lambda f: "untested (one value)" if f is None else ("yes" if f else "NO")
            over = f"; mean over {k} purification draws {mean(h)}" if k > 1 else ""
            lines += [f"**Headline:** {h['attack']} with {h['attack_steps']} attack steps and EOT {h['eot']}: "
                      f"{pct(h)} defended robust accuracy{over} (converged within {in_points(h['tol'])}: attack "
                      f"steps {said(h['attack_steps_converged'])}, EOT {said(h['eot_converged'])}).", ""]
        lines += [f"Robust accuracy ({s.get('norm', '?')} eps = {s.get('eps', '?')}, n = {len(self.labels)}, "
                  f"{int(self.confidence * 100)} % Wilson intervals; defended predictions share one purification "
                  f"draw per input across all rows" + (f"; last column: mean over {k} draws, Student-t "
                                                       f"{int(self.confidence * 100)} % interval)" if k > 1 else ")"),
                  ""]
        table: dict[str, dict[str, str]] = {}
        for r in self.rows():
            table.setdefault(r["attack"], {})[r["target"]] = pct(r)
            if k > 1 and r["target"] == "defended":
                table[r["attack"]]["draws"] = mean(r)
        header = ["attack", "undefended", "defended"] + ([f"defended, mean of {k} draws"] if k > 1 else [])
        lines.append(markdown_table(header, [[name, cells.get("undefended"), cells.get("defended")]
                                             + ([cells.get("draws")] if k > 1 else [])
                                             for name, cells in table.items()]))
        if self.convergence is not None:
            lines += ["", f"Convergence of {self.convergence['attack']} (tolerance {in_points(self.convergence['tol'])}; "
                          f"the undefended column is plain PGD with the same steps):", ""]
            rows = [[along.replace("_", " "), r["attack_steps"], r["eot"], pct(r["undefended"]), pct(r["defended"])]
                    + ([mean(r["defended"])] if k > 1 else []) + [f"{r['seconds']:.0f}"]
                    for along in ("attack_steps", "eot") for r in self.convergence_curve(along)]
            lines.append(markdown_table(["raising", "attack steps", "EOT", "undefended", "defended"]
                                        + ([f"defended, mean of {k} draws"] if k > 1 else []) + ["seconds"], rows))
        lines += ["", "Settings:", "", "```json", json.dumps(s, indent=1), "```"]
        if self.timings:
            lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.3g}" for k, v in self.timings.items())]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    def save(self, directory: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``stem.json`` and ``stem.md`` atomically; returns their paths."""
        d = Path(directory)
        js, md = d / f"{stem}.json", d / f"{stem}.md"
        write_json_atomic(js, self.to_dict(), indent=1)
        write_text_atomic(md, self.to_markdown())
        return js, md

    @classmethod
    def load(cls, path: str | Path) -> "RobustnessReport":
        """The report in the ``report.json`` that :meth:`save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def in_points(tol: float) -> str:
    """An accuracy tolerance in percentage points, in words."""
    return f"{100 * tol:g} point" + ("" if 100 * tol == 1 else "s")


def chosen_steps(accuracies: Sequence[float], tol: float) -> tuple[int, bool]:
    """The converged attack steps along the steps phase: the smaller of the first pair within
    ``tol`` (doubling them no longer helps; the larger is the check), else the last run."""
    k, ok = first_converged(accuracies, tol)
    return (k - 1 if ok else k), ok


def summarise_seeds(per_seed: Sequence[RobustnessReport]) -> dict[str, dict]:
    """The reports of one setting under several seeds (one per seed, the same attacks) summarised
    row by row: ``"attack|target" -> {mean, ci_low, ci_high, n_seeds, per_seed, wilson_seed0}``, the
    mean accuracy over seeds with its Student-t 95 % interval (clipped to [0, 1]), the number of seeds,
    each seed's accuracy, the Wilson interval of the first seed and, with several purification draws,
    the first seed's mean over draws (``draws_mean``, ``draws_low``, ``draws_high``, ``n_draws``)."""
    if not per_seed:
        raise ValueError("summarise_seeds needs at least one report")
    rows = {}
    for r0 in per_seed[0].rows():
        key = (r0["attack"], r0["target"])
        accs = [next(r["accuracy"] for r in rep.rows() if (r["attack"], r["target"]) == key) for rep in per_seed]
        m, lo, hi = mean_interval(accs)
        rows[f"{key[0]}|{key[1]}"] = {"mean": m, "ci_low": max(0.0, lo), "ci_high": min(1.0, hi), "n_seeds": len(accs),
                                      "per_seed": accs,
                                      "wilson_seed0": [r0["ci_low"], r0["ci_high"]],
                                      **({k: r0[k] for k in ("draws_mean", "draws_low", "draws_high", "n_draws")}
                                         if "draws_mean" in r0 else {})}
    return rows


def seed_summary(per_seed: Sequence[RobustnessReport], cross: Sequence[str] = ()) -> dict:
    """One setting's reports (one per seed) for a summary: the rows of :func:`summarise_seeds`, each
    seed's headline (None without a convergence curve), the :func:`cross_check` of the first seed, and
    the first seed's attack and purifier settings and timings."""
    first = per_seed[0]
    return {"rows": summarise_seeds(per_seed),
            "headline": [rep.headline() for rep in per_seed] if first.convergence is not None else None,
            "cross_check": cross_check(first, cross),
            "attack_settings": first.settings["attacks"], "purifier": first.settings["purifier"],
            "seconds_per_purified_input": first.timings["purify_and_classify_per_input"],
            "seconds": {k: v for k, v in first.timings.items() if k.startswith("attack_") or k in ("convergence", "total")}}


def cross_check(rep: RobustnessReport, cross: Sequence[str]) -> Optional[dict]:
    """multidiff's pgd-eot against each reference attack of ``cross`` (names of
    :data:`~multidiff.tasks.purify.REFERENCE_ATTACKS`) at the same setting: defended robust accuracy
    (first draw, and the mean over draws) and whether ours is at least as strong within 2 points.
    None when ``cross`` is empty or the report has no pgd-eot row."""
    if not cross or "pgd-eot" not in rep.predictions:
        return None
    acc = lambda name: rep.accuracy(name, "defended")
    mean = lambda name: rep.over_draws(name)["draws_mean"] if rep.n_draws > 1 else acc(name)
    return {name: {"reference": acc(name), "multidiff": acc("pgd-eot"), "reference_mean_over_draws": mean(name),
                   "multidiff_mean_over_draws": mean("pgd-eot"),
                   "multidiff_at_least_as_strong_within_2_points": mean("pgd-eot") <= mean(name) + 0.02}
            for name in cross}


def summary_markdown(s: dict) -> str:
    """Markdown of a multi-seed summary ``{"n_examples", "settings": {"seeds": "0,1", "norm"},
    "results": {tag: {"t_start", "eps", **seed_summary(reports)}}}``: per setting the headlines, the
    table of :func:`summarise_seeds` (mean over seeds, first seed's Wilson interval, mean over draws)
    and the cross-check; with several settings a sweep table (first seed, first draw)."""
    pct = lambda v: f"{100 * v:.1f} %"
    seeds = s["settings"]["seeds"]
    lines = []
    for tag, res in s["results"].items():
        lines += [f"### t* = {res['t_start']}, {s['settings']['norm']} eps = {res['eps']} ({s['n_examples']} test inputs)", ""]
        for h in res["headline"] or []:
            lines += [f"Headline: {h['attack']} at {h['attack_steps']} attack steps x EOT {h['eot']}: {pct(h['accuracy'])} "
                      f"[{pct(h['ci_low'])}, {pct(h['ci_high'])}]"
                      + (f", mean over {h['n_draws']} draws {pct(h['draws_mean'])} ({pct(h['draws_low'])}-"
                         f"{pct(h['draws_high'])})" if "draws_mean" in h else "")
                      + f"; converged: attack steps {h['attack_steps_converged']}, EOT {h['eot_converged']}", ""]
        several = len(seeds.split(",")) > 1
        table: dict = {}
        for key, r in res["rows"].items():
            attack, target = key.split("|")
            cell = (f"{pct(r['mean'])} ({100 * r['ci_low']:.1f}-{100 * r['ci_high']:.1f}) " if several else f"{pct(r['mean'])} ")
            cell += f"[{100 * r['wilson_seed0'][0]:.1f}-{100 * r['wilson_seed0'][1]:.1f}]"
            table.setdefault(attack, {})[target] = cell
            if "draws_mean" in r:
                table[attack]["draws"] = f"{pct(r['draws_mean'])} ({100 * r['draws_low']:.1f}-{100 * r['draws_high']:.1f})"
        draws = any("draws" in c for c in table.values())
        lines += [("Mean over seeds " + seeds + " (Student-t 95 % CI); " if several else "")
                  + "[Wilson 95 % CI of the first seed]" + ("; last column: first seed, mean over purification draws "
                                                            "(Student-t 95 % CI)" if draws else ""), ""]
        lines.append(markdown_table(["attack", "undefended", "defended"] + (["defended, mean over draws"] if draws else []),
                                    [[a, c.get("undefended"), c.get("defended")] + ([c.get("draws", "")] if draws else [])
                                     for a, c in table.items()]))
        if res["cross_check"]:
            lines += ["", "Cross-check (defended, same attack steps and EOT; mean over draws when several):", ""]
            lines.append(markdown_table(["reference attack", "reference", "multidiff pgd-eot", "multidiff at least as strong (2 points)"],
                                        [[k, pct(v["reference_mean_over_draws"]), pct(v["multidiff_mean_over_draws"]),
                                          "yes" if v["multidiff_at_least_as_strong_within_2_points"] else "NO"]
                                         for k, v in res["cross_check"].items()]))
        lines += ["", f"Purifier: {json.dumps(res['purifier'])}; {1000 * res['seconds_per_purified_input']:.1f} ms per "
                      f"purified + classified input; wall time (s, first seed): "
                      + ", ".join(f"{k.removeprefix('attack_')} {v:.0f}" for k, v in res["seconds"].items()), ""]
    if len(s["results"]) > 1:  # a sweep: one line per (t*, eps)
        lines += ["### Sweep (first seed; defended = first draw)", ""]
        rows = []
        for res in s["results"].values():
            r = res["rows"]
            attack = "pgd-eot" if "pgd-eot|defended" in r else next(k.split("|")[0] for k in r if k.split("|")[0] != "clean")
            get = lambda k: pct(r[k]["per_seed"][0]) if k in r else ""
            rows.append([res["t_start"], res["eps"], get("clean|undefended"), get("clean|defended"), get(f"{attack}|undefended"),
                         get(f"{attack}|defended"), get("worst-case|defended")])
        lines.append(markdown_table(["t*", "eps", "clean undefended", "clean defended", f"{attack} undefended",
                                     f"{attack} defended", "worst case defended"], rows))
    return "\n".join(lines)
