from multidiff.tasks.tts import EvalResult


def test_eval_table_by_hand():
    rows = [{"setting": "recorded audio", "sampler_steps": None, "mcd": 0.0, "wer": 0.25, "cer": 0.125},
            {"setting": "prior", "sampler_steps": 0, "mcd": 9.5, "rtf_decoder": 0.0, "rtf_end_to_end": 0.12345},
            {"setting": "euler_ode-4", "mcd": 8.25, "log_f0_rmse": float("nan"), "f0_clips": 0, "rtf_decoder": 0.5,
             "rtf_end_to_end": 1.0, "wer": 0.5, "cer": 0.3}]
    assert EvalResult(rows=rows).table() == (
        "| setting | wer | cer | mcd | log_f0_rmse | f0_clips | rtf_decoder | rtf_end_to_end |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| recorded audio | 0.2500 | 0.1250 | 0.0000 |  |  |  |  |\n"
        "| prior |  |  | 9.5000 |  |  | 0.0000 | 0.1235 |\n"
        "| euler_ode-4 | 0.5000 | 0.3000 | 8.2500 | nan | 0 | 0.5000 | 1.0000 |")
