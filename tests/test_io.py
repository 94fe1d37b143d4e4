import os
import stat

import pytest

from noisefloor import io


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "out.json"
    io.write_json(target, {"a": 1})
    io.write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failure_keeps_the_previous_version(tmp_path):
    target = tmp_path / "out.txt"
    io.write_text(target, "complete")
    with pytest.raises(ZeroDivisionError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            1 / 0
    assert target.read_text() == "complete" and len(list(tmp_path.iterdir())) == 1


def test_nan_is_refused_in_json(tmp_path):
    with pytest.raises(ValueError):
        io.write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_text(tmp_path / "r.html", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == 0o644
