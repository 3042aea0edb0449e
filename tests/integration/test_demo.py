"""`shoprec demo` runs the whole chain end to end (tiny shop) and shows reasons."""

import pytest
from typer.testing import CliRunner

from shoprec.cli import app


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(
        app,
        [
            "demo",
            "--out",
            str(out),
            "--users",
            "200",
            "--items",
            "80",
            "--models",
            "popularity,itemknn",
            "--budget",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "demo finished" in res.output
    assert "often bought after" in res.output or "trending in" in res.output  # reasons shown
    assert (out / "shop.db").exists() and (out / "artifacts" / "latest").exists()
    assert len(list((out / "shop" / "images").glob("*.png"))) == 80
