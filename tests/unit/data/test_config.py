from dataclasses import dataclass

import pytest

from shoprec.config import ConfigError, load_config, section


def test_defaults_and_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(
        "[cleaning]\nhalf_life_days = 7\n[cleaning.weights]\npurchase = 10\n[serving]\nport = 9000\n"
    )
    cfg = load_config(p)
    assert cfg.cleaning.half_life_days == 7.0 and cfg.cleaning.weights.purchase == 10.0
    assert cfg.cleaning.weights.view == 1.0

    @dataclass(frozen=True)
    class Serving:
        port: int = 8000
        host: str = "127.0.0.1"

    assert section(cfg, "serving", Serving) == Serving(port=9000)


@pytest.mark.parametrize(
    "text, match",
    [
        ("[cleaning]\nhalf_life = 3\n", "unknown key"),
        ("[split]\nseed = 'x'\n", "expected int"),
        ("[cleaning\n", "cannot read"),
    ],
)
def test_errors_name_the_key(tmp_path, text, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(p)
