"""Plugin discovery: by name, loaded late, cached, with errors that say what to install."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flexlock.core import PluginError
from tests._helpers import run_python


def _fake_distribution(site: Path, name: str, entry_points: str) -> None:
    """Make an installed-looking distribution (dist-info with entry_points.txt) in `site`."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def _run_with_site(site: Path, code: str) -> str:
    import os

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    return run_python(code, env=env).stdout


def test_unknown_name_lists_installed_ones_and_first_party_provider(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "pbs-exec", "[flexlock.executors]\npbs = pbs_exec:factory\n")
    # Every first-party plugin may be installed here, so register one more that is not.
    out = _run_with_site(
        tmp_path,
        textwrap.dedent("""
        from flexlock.core import load_plugin, PluginError
        from flexlock.core._plugins import _PROVIDERS
        _PROVIDERS[("flexlock.executors", "lsf")] = "flexlock-lsf"
        try:
            load_plugin("flexlock.executors", "lsf")
        except PluginError as e:
            print(e)
    """),
    )
    assert "'lsf'" in out
    assert "pbs" in out
    assert "pip install flexlock-lsf" in out


def test_plugin_is_loaded_by_name_only_and_cached(tmp_path: Path) -> None:
    (tmp_path / "good_plugin.py").write_text(
        "LOADS = []\nLOADS.append(1)\ndef factory(): return 'made'\n"
    )
    _fake_distribution(
        tmp_path,
        "good-plugin",
        """
        [flexlock.executors]
        good = good_plugin:factory
        broken = no_such_module_xyz:factory
    """,
    )
    out = _run_with_site(
        tmp_path,
        textwrap.dedent("""
        import sys
        from flexlock.core import load_plugin, plugin_names
        print("broken" in plugin_names("flexlock.executors"), "good_plugin" in sys.modules)
        first = load_plugin("flexlock.executors", "good")
        second = load_plugin("flexlock.executors", "good")
        import good_plugin
        print(first(), first is second, good_plugin.LOADS, "no_such_module_xyz" in sys.modules)
    """),
    )
    assert ["True False", "made True [1] False"] == out.split("\n")[:2]


def test_broken_plugin_error_names_its_distribution(tmp_path: Path) -> None:
    _fake_distribution(
        tmp_path, "broken-dist", "[flexlock.executors]\nbroken = no_such_module_xyz:f\n"
    )
    out = _run_with_site(
        tmp_path,
        textwrap.dedent("""
        import warnings
        from flexlock.core._plugins import iter_plugins, load_plugin
        from flexlock.core import PluginError
        try:
            load_plugin("flexlock.executors", "broken")
        except PluginError as e:
            print(e)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = [n for n, _ in iter_plugins("flexlock.executors")]
        print("broken" in names, any("broken-dist" in str(w.message) for w in caught))
    """),
    )
    first, second = out.strip().split("\n")[-2:]
    assert "broken-dist" in first
    assert "no_such_module_xyz" in first
    assert "False True" == second


def test_plugin_error_is_a_usage_error() -> None:
    assert 2 == PluginError.exit_code


def test_unknown_name_without_first_party_provider_suggests_installing(tmp_path: Path) -> None:
    from flexlock.core import load_plugin

    with pytest.raises(PluginError, match=r"'nope'.*Install the package that provides it"):
        load_plugin("flexlock.executors", "nope")
