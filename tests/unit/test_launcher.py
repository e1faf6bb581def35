"""Launcher and settings: bad options give one clear error naming the option."""

import subprocess
import sys

import pytest

from controller.__main__ import main
from controller.core.settings import ConfigError, Settings
from fakes.switches import SPEC
from topologies.lab import ROOT


@pytest.mark.parametrize("argv, message", [
    (["--policy", "fastest"], "policy: unknown 'fastest'"),
    (["--k-paths", "0"], "--k-paths: must be in 1..64"),
    (["--probe-interval", "0"], "--probe-interval: must be in 0.1..60"),
    (["--log-level", "LOUD"], "--log-level: unknown level 'LOUD'"),
    (["--topology", "nowhere.json"], "nowhere.json: cannot read"),
])
def test_bad_option_is_named(argv, message, capsys, monkeypatch):
    def launched(*_):
        raise AssertionError("the launcher took a bad value and went on to listen")
    monkeypatch.setattr("controller.__main__.check_listen", launched)      # were it let through
    assert main(argv + ["--topology", str(SPEC)] if "--topology" not in argv else argv) == 2
    assert message in capsys.readouterr().err


def test_bad_port_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["--ofp-port", "70000"])
    assert "--ofp-port" in capsys.readouterr().err


def test_settings_from_env_name_the_variable():
    assert Settings.from_env({"LB_K_PATHS": "8"}).k_paths == 8
    with pytest.raises(ConfigError, match="LB_IDLE_TIMEOUT_S: expected int"):
        Settings.from_env({"LB_IDLE_TIMEOUT_S": "soon"})


@pytest.mark.parametrize("env, message", [
    ({"LB_SYMMETRIC": "maybe"}, "LB_SYMMETRIC: expected true or false"),
    ({"LB_NEW_FLOW_MBPS": "-1"}, "LB_NEW_FLOW_MBPS: must be in"),
    ({"LB_NEW_FLOW_MBPS": "nan"}, "LB_NEW_FLOW_MBPS: must be in"),
    ({"LB_NEW_FLOW_MBPS": "inf"}, "LB_NEW_FLOW_MBPS: must be in"),
    ({"LB_IDLE_TIMEOUT_S": "0"}, "LB_IDLE_TIMEOUT_S: must be in 1..65535"),
])
def test_bad_decision_settings_name_the_variable(env, message):
    """A booking of NaN or infinity would make every path read full or nothing; a permanent
    entry would never report its flow's end."""
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
    assert Settings.from_env({"LB_SYMMETRIC": "true"}).symmetric is True


@pytest.mark.parametrize("argv, message", [
    (["--topology", "BAD"], "links[0].capacity_mbps: must be in"),
    (["--policy", "nope"], "policy: unknown 'nope'"),
    (["--q-alpha", "2"], "--q-alpha: must be in"),
])
def test_bad_configuration_is_one_clear_error_at_launch(tmp_path, argv, message):
    """The real process (no lab needed): exit status 2 and one line on stderr, nothing else."""
    bad = tmp_path / "bad.json"
    bad.write_text(SPEC.read_text().replace('"capacity_mbps": 100}', '"capacity_mbps": -1}', 1))
    argv = [str(bad) if a == "BAD" else a for a in argv]
    run = subprocess.run([sys.executable, "-m", "controller", *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
