import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from functools import partial

import numpy as np
import pytest

from multidiff.datasets import fetch
from multidiff.datasets.aqi36 import TEST_MONTHS, load_aqi36
from multidiff.datasets.physionet import ATTRIBUTES, _parse_record, csdi_split, eval_mask, load_physionet


def test_aqi36_reads_published_files(data_dir):
    d = load_aqi36(data_dir / "air_quality_pm25")
    assert d.ground.shape == (8759, 36)
    mask = d.eval_mask.to_numpy()
    assert not np.isnan(d.ground.to_numpy()[mask]).any() and np.isnan(d.missing.to_numpy()[mask]).all()
    train, valid, test = d.split(valid_month=1)
    assert len(train) == 7 and valid[0].index.month.unique().tolist() == [1] and test == TEST_MONTHS
    with pytest.raises(ValueError, match="valid_month"):
        d.split(valid_month=3)


def test_physionet_parse_by_hand():
    text = "Time,Parameter,Value\n00:00,RecordID,1\n00:00,Age,54\n00:07,HR,80\n00:35,HR,90\n01:10,Temp,36.5\n47:59,pH,7.4\n48:00,HR,70\n"
    out = _parse_record(text)
    assert out.shape == (48, 35)
    hr, temp, ph = ATTRIBUTES.index("HR"), ATTRIBUTES.index("Temp"), ATTRIBUTES.index("pH")
    assert out[0, hr] == 90  # the last value of the hour wins, as in CSDI
    assert out[1, temp] == 36.5 and out[47, ph] == 7.4
    assert np.isfinite(out).sum() == 3  # descriptors (Age) and hour 48 are dropped


def test_physionet_reads_the_tarball_and_csdi_protocol(data_dir):
    d = load_physionet(data_dir / "physionet2012", limit=50)
    assert d.values.shape == (50, 48, 35) and (np.diff(d.record_ids) > 0).all()
    m = eval_mask(d.values, 0.1)
    obs = ~np.isnan(d.values)
    assert (m <= obs).all()
    assert [int(p.sum()) for p in m] == [int(o.sum() * 0.1) for o in obs]  # 10 % of each patient, floored
    train, valid, test = csdi_split(4000)
    assert (len(train), len(valid), len(test)) == (2800, 400, 800)
    assert len(set(train) | set(valid) | set(test)) == 4000


def test_explicit_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not hold the aqi36 files"):
        load_aqi36(tmp_path)


@pytest.fixture
def http_server(tmp_path):
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_download_from_a_local_server_checks_checksums(tmp_path, http_server, data_dir, monkeypatch):
    spec = fetch.REGISTRY["aqi36"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # the owner's archive layout
        for name, member in spec.members.items():
            zf.write(data_dir / "air_quality_pm25" / name, member)
    (tmp_path / "STMVL.zip").write_bytes(buf.getvalue())
    dest = fetch.download_dataset("aqi36", url=f"{http_server}/STMVL.zip", dest=tmp_path / "cache")
    for name, digest in spec.files.items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest
    monkeypatch.setenv("MULTIDIFF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MULTIDIFF_DATA", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    assert fetch.locate("aqi36", download=False) in ((tmp_path / "cache" / "air_quality_pm25"), data_dir / "air_quality_pm25")
    # a corrupted archive is refused
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as zf:
        for name, member in spec.members.items():
            zf.writestr(member, "datetime,x\n")
    (tmp_path / "bad.zip").write_bytes(bad.getvalue())
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch.download_dataset("aqi36", url=f"{http_server}/bad.zip", dest=tmp_path / "cache2")
    assert not (tmp_path / "cache2" / "air_quality_pm25" / "pm25_ground.txt").exists()
    with pytest.raises(FileNotFoundError, match="could not download"):
        fetch.download_dataset("aqi36", url=f"{http_server}/absent.zip", dest=tmp_path / "cache3")
