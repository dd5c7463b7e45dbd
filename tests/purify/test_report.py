"""The summary of several seeds' robustness reports (multidiff.tasks.purify.report), against
values computed by hand."""
import pytest

from multidiff.tasks import purify

LABELS = [0, 1, 1, 0]


def _report(defended_pgd: list[int], pgd_eot: list[int] = None) -> purify.RobustnessReport:
    preds = {"clean": {"undefended": [0, 1, 1, 0], "defended": [0, 1, 1, 1]},
             "pgd": {"undefended": [1, 0, 0, 1], "defended": defended_pgd}}
    if pgd_eot is not None:
        preds["pgd-eot"] = {"undefended": [1, 0, 0, 1], "defended": pgd_eot}
        preds["torchattacks-eotpgd"] = {"undefended": [1, 0, 0, 1], "defended": [1, 1, 0, 0]}
    return purify.RobustnessReport(LABELS, preds, settings={"attacks": {}, "purifier": {"t_start": 0.1}},
                                   timings={"purify_and_classify_per_input": 0.002, "attack_pgd": 3.0, "other": 1.0})


def test_rows_are_the_mean_over_seeds_with_a_student_t_interval():
    # defended accuracy under pgd per seed: 2/4, 3/4, 2/4
    reports = [_report([0, 1, 0, 1]), _report([0, 1, 1, 1]), _report([1, 1, 0, 0])]
    rows = purify.summarise_seeds(reports)
    row = rows["pgd|defended"]
    assert row["per_seed"] == [0.5, 0.75, 0.5] and row["n_seeds"] == 3
    assert row["mean"] == pytest.approx(7 / 12)
    half = 4.302653 * (1 / 12 * 3 ** 0.5) / 3 ** 0.5  # t(0.975, 2) x sample sd / sqrt(n); sd = sqrt(1/48)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((7 / 12 - half, 7 / 12 + half), abs=1e-6)
    assert row["wilson_seed0"] == [reports[0].rows()[3]["ci_low"], reports[0].rows()[3]["ci_high"]]
    assert rows["pgd|undefended"]["per_seed"] == [0.0, 0.0, 0.0]
    assert list(rows) == ["clean|undefended", "clean|defended", "pgd|undefended", "pgd|defended"]
    with pytest.raises(ValueError, match="at least one report"):
        purify.summarise_seeds([])


def test_seed_summary_cross_check_and_markdown():
    reports = [_report([0, 1, 0, 1], pgd_eot=[0, 1, 1, 1]), _report([0, 1, 1, 1], pgd_eot=[1, 0, 0, 1])]  # pgd-eot: 3/4, 0/4
    res = purify.seed_summary(reports, ["torchattacks-eotpgd"])
    assert res["headline"] is None and res["seconds"] == {"attack_pgd": 3.0}
    check = res["cross_check"]["torchattacks-eotpgd"]
    assert (check["reference"], check["multidiff"]) == (0.5, 0.75)
    assert check["multidiff_at_least_as_strong_within_2_points"] is False
    assert purify.cross_check(_report([0, 1, 0, 1]), ["torchattacks-eotpgd"]) is None  # no pgd-eot row
    text = purify.summary_markdown({"n_examples": 4, "settings": {"seeds": "0,1", "norm": "linf"},
                                    "results": {"eps0.1": {"t_start": 0.1, "eps": 0.1, **res}}})
    assert "### t* = 0.1, linf eps = 0.1 (4 test inputs)" in text
    assert "Mean over seeds 0,1 (Student-t 95 % CI)" in text
    # mean over seeds (Student-t, clipped to [0, 1]) [Wilson interval of the first seed: 0/4 and 3/4]
    assert "| pgd-eot | 0.0 % (0.0-0.0) [0.0-49.0] | 37.5 % (0.0-100.0) [30.1-95.4] |" in text
