from __future__ import annotations

from pathlib import Path

import pytest

from ccn.config import ConfigError, NodeConfig, parse_route
from ccn.name import Name


def test_toml_file_sets_everything(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    f.write_text(
        'store = "/srv/ccn"\n'
        'listen = ["unix:///run/ccn.sock", "tcp://0.0.0.0:6464"]\n'
        'routes = ["/videos=tcp://10.0.0.2:6464"]\n'
        "cs_bytes = 1048576\n"
        "fsync = true\n"
    )
    cfg = NodeConfig.from_file(f)
    assert cfg.store == Path("/srv/ccn")
    assert cfg.listen == ["unix:///run/ccn.sock", "tcp://0.0.0.0:6464"]
    assert cfg.routes == [(Name.parse("/videos"), "tcp://10.0.0.2:6464")]
    assert cfg.cs_bytes == 1048576 and cfg.fsync is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n", None),
        ("cs_bytes = 'big'\n", None),
        ("listen = ['ftp://x']\n", None),
        ("routes = ['no-equals']\n", None),
        ("fsync = 1\n", None),
        ("= broken toml", None),
        # a cs_bytes beyond 64 bits was accepted, and the node died on its first 'ccn status'
        ("cs_bytes = 99999999999999999999999\n", "must be at"),
        ("pit_max_entries = 9223372036854775808\n", "must be at"),
        ("cache_bytes = -1\n", "must be at"),
        ("cache_max_entries = -1\n", "cache_max_entries must be at least 0"),
        ("auto_merge = -1\n", "auto_merge must be at least 0"),
        ("auto_merge_age = -60\n", "auto_merge_age must be at least 0"),
        ("auto_merge = true\n", "auto_merge must be int"),
        ("cs_bytes = -5\n", "cs_bytes must be at least 1"),
        ('listen = ["unix:///s", "tcp://127.0.0.1:1", "unix:///s"]\n', "unix:///s is given twice"),
        ('listen = ["tcp://127.0.0.1:1"]\nndn = ["tcp://127.0.0.1:1"]\n', "given twice"),
        # a node that printed "listening on " and nothing, reachable by nobody
        ("listen = []\n", "listen is empty"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str | None) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        NodeConfig.from_file(f)
    # every error names the file, including the checks of values ("cs_bytes must be at least
    # 1" alone did not say where the setting came from)
    assert str(caught.value).startswith(("config ", f"{f}: ")), caught.value


def test_parse_route() -> None:
    assert parse_route("/a/b=unix:///s") == (Name.parse("/a/b"), "unix:///s")
    # NDN spellings in the prefix: the '=' that splits is the one before the scheme
    assert parse_route("/a/v=1=tcp://h:1") == (Name.parse("/a/v1"), "tcp://h:1")
    assert parse_route("/a/32=x=unix:///d=e/s") == (Name.parse("/a/32=x"), "unix:///d=e/s")
    with pytest.raises(ConfigError):
        parse_route("/a")
    with pytest.raises(ConfigError, match=r"^route 'a=tcp://h:1': name must start with '/'"):
        parse_route("a=tcp://h:1")
    with pytest.raises(ConfigError, match=r"^route '/a=http://h': bad address"):
        parse_route("/a=http://h")
    with pytest.raises(ConfigError, match="takes no routes"):
        parse_route("/localhost/ccn=tcp://h:1")


def test_cache_tier_may_be_off_and_numbers_may_be_large(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    f.write_text(
        "cache_bytes = 0\ncs_bytes = 9223372036854775807\ncache_max_entries = 5\nauto_merge = 0\n"
    )
    cfg = NodeConfig.from_file(f)
    assert cfg.cache_bytes == 0 and cfg.cs_bytes == (1 << 63) - 1
    assert cfg.cache_max_entries == 5 and NodeConfig().cache_max_entries == 1 << 18
    assert cfg.auto_merge == 0 and NodeConfig().auto_merge == 50  # 0: only ccn gc merges


def test_port_zero_twice_is_two_listeners() -> None:
    NodeConfig(listen=["tcp://127.0.0.1:0", "tcp://127.0.0.1:0"]).validate()
