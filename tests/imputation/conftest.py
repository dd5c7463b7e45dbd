import pandas as pd
import pytest

TINY = dict(window=12, channels=8, layers=1, heads=2, epochs=1, max_steps=6, num_train_steps=10, n_samples=4,
            progress=False, device="cpu", pretrained=None)


@pytest.fixture(scope="session")
def tiny():
    """Keyword arguments of a tiny Imputer that trains in about a second."""
    return dict(TINY)


@pytest.fixture(scope="session")
def aqi_week(data_dir):
    """One real week of AQI-36 (6 stations) with its published gaps."""
    df = pd.read_csv(data_dir / "air_quality_pm25" / "pm25_missing.txt", index_col="datetime", parse_dates=True)
    return df.iloc[24 * 60: 24 * 67, :6].copy()


@pytest.fixture(scope="session")
def tiny_imputer(aqi_week):
    from multidiff.tasks.imputation import Imputer
    return Imputer(**TINY).fit(aqi_week)
