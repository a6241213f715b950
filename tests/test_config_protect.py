"""``protect: true`` in the configuration: where it is accepted and what it loads as."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.core.errors import ConfigError

CONFIG = """\
version: 1
accounts:
  "guarded-1":
    protect: true
    callbacks:
      DeviceUsage: {url: "https://hooks.example.com/u"}
  "open-1":
    callbacks:
      DeviceUsage: {url: "https://hooks.example.com/u", protect: true}
      Fota: {url: "https://hooks.example.com/f", protect: false}
      QoS: {url: "https://hooks.example.com/q"}
"""


def test_protect_loads_on_accounts_and_registrations(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    accounts = load_config(str(path), env={}, require_env=True).desired.accounts
    assert accounts["guarded-1"].protect is True
    assert accounts["open-1"].protect is False  # the default
    assert accounts["guarded-1"].callbacks["DeviceUsage"].protect is False
    callbacks = accounts["open-1"].callbacks
    assert [callbacks[s].protect for s in ("DeviceUsage", "Fota", "QoS")] == [True, False, False]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("protect: true\n", "protect: 'yes'\n", "$.accounts['guarded-1'].protect: "),
        ("protect: true}", "protect: 1}", "$.accounts['open-1'].callbacks.DeviceUsage.protect: "),
    ],
)
def test_protect_must_be_a_boolean(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), env={}, require_env=True)
    assert any(message in line for line in caught.value.lines()), caught.value.lines()
