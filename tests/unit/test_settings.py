"""The settings consistency test: the table in controller/core/settings.py is the one source, so
every field has a row, and the variables, the launcher's options, their checks and
docs/settings.md, all made from the rows, agree with each other."""

import os
from dataclasses import fields
from pathlib import Path

import pytest

from controller.__main__ import launch_settings, main, parse_args, settings_env, settings_markdown
from controller.core.settings import TABLE, ConfigError, Range, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
# Valid values other than the default, for the rows a Range or a bool does not give one.
SAMPLES = {"policy": "least-loaded", "log_level": "DEBUG", "api_token": "t" * 20, "q_explore": "count",
           "q_model": "linear", "q_window": "flow", "service_policy": "least-connections"}
# Bad values for the checks that are not a Range.
BAD = {"log_level": "LOUD", "api_token": "short", "q_explore": "guess", "q_model": "deep", "q_window": "forever",
       "service_policy": "fastest"}


def launched(*_):
    raise AssertionError("the launcher took a bad value and went on to listen")


def sample(row, tmp_path):
    if isinstance(row.check, Range):
        return row.check.hi
    if row.kind is bool:
        return True
    return SAMPLES.get(row.name, str(tmp_path / row.name))   # else a path, absolute as the launcher makes it


def test_every_field_has_exactly_one_row():
    assert [row.name for row in TABLE] == [f.name for f in fields(Settings)]


def test_variables_and_options_are_unique():
    for names in ([row.var for row in TABLE], [row.option for row in TABLE]):
        assert len(set(names)) == len(names)
    assert all(row.var.startswith("LB_") and row.option.startswith("--") for row in TABLE)


@pytest.mark.parametrize("row", TABLE, ids=lambda row: row.name)
def test_the_variable_and_the_option_give_the_same_setting(row, tmp_path, monkeypatch):
    monkeypatch.delenv("LB_API_TOKEN", raising=False)     # the launcher's default for the token
    value = sample(row, tmp_path)
    assert value != row.default
    argv = [row.option] if value is True else [row.option, str(value)]
    by_option = launch_settings(parse_args(argv))
    by_variable = Settings.from_env({row.var: str(value)})
    assert getattr(by_option, row.name) == value
    assert by_option == by_variable
    assert Settings.from_env(by_option.env()) == by_option


@pytest.mark.parametrize("row", [row for row in TABLE if row.absolute], ids=lambda row: row.name)
def test_the_launcher_makes_absolute_a_path_the_app_opens_again(row, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert getattr(launch_settings(parse_args([row.option, "x"])), row.name) == str(tmp_path.resolve() / "x")


def test_the_launcher_upper_cases_the_log_level():
    assert launch_settings(parse_args(["--log-level", "debug"])).log_level == "DEBUG"


@pytest.mark.parametrize("row", [row for row in TABLE if row.check], ids=lambda row: row.name)
def test_a_bad_value_is_refused_naming_the_variable_or_the_option(row, capsys, monkeypatch):
    monkeypatch.setattr("controller.__main__.check_listen", launched)      # were it let through
    check = row.check
    bads = [check.hi * 2 + 1, check.lo if check.low_open else check.lo - 1] if isinstance(check, Range) \
        else [BAD[row.name]]
    for bad in map(str, bads):
        with pytest.raises(ConfigError, match=f"^{row.var}: "):
            Settings.from_env({row.var: bad})
        assert main([row.option, bad]) == 2
        assert capsys.readouterr().err.startswith(f"error: {row.option}: ")


@pytest.mark.parametrize("row", [row for row in TABLE if row.secret], ids=lambda row: row.name)
def test_a_secret_comes_to_the_launcher_by_its_variable_and_stays_out_of_repr(row, monkeypatch):
    monkeypatch.setenv(row.var, SAMPLES[row.name])
    assert getattr(parse_args([]), row.name) == SAMPLES[row.name]
    assert SAMPLES[row.name] not in repr(Settings(**{row.name: SAMPLES[row.name]}))


def test_docs_list_the_table():
    assert DOC.read_text() == settings_markdown(), \
        "docs/settings.md is stale; regenerate it: .venv/bin/python -m controller --settings-markdown > docs/settings.md"


def test_a_setting_left_unset_at_the_launcher_is_not_taken_from_the_shell(monkeypatch):
    """The launcher hands the app every variable; one the options leave unset is empty, so a
    stale LB_TOPOLOGY or LB_Q_TABLE in the user's shell cannot reach the app unchecked."""
    monkeypatch.setenv("LB_TOPOLOGY", "/nonexistent.json")
    monkeypatch.setenv("LB_Q_TABLE", "relative.json")
    env = settings_env(parse_args([]))
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    settings = Settings.from_env()
    assert (settings.topology, settings.q_table) == (None, None)
