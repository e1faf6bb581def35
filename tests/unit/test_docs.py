"""The docs against the tree: every generated table is what its results folder renders and
names the commit and command that measured it; every relative link reaches a file (and a
heading, for an anchor); every command the README shows runs (its --help, or a request to the
endpoint it names); and the README's first screen shows its two commands and no other."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from controller.core.settings import Settings
from controller.service.metrics import Metrics
from controller.service.rest import RestApi
from scripts import tables

ROOT = Path(__file__).resolve().parents[2]
PAGES = tables.pages(ROOT)
README = ROOT / "README.md"
FIRST_SCREEN = 24          # lines: one terminal screen
TWO_COMMANDS = ["    sudo scripts/run-experiment   # set up everything, compare policies on H1-H7 (under 5 minutes)",
                "    sudo scripts/run-tests        # set up everything, run unit + integration tests"]
PROVENANCE = re.compile(r"^Measured at commit `[0-9a-f]{7}` by `[^`]+`\.", re.MULTILINE)


# -- generated tables ----------------------------------------------------------------------------
REGIONS = [r for page in PAGES for r in tables.regions(page)]


def test_the_readme_and_the_experiments_page_carry_generated_tables():
    assert {r.page.name for r in REGIONS} >= {"README.md", "experiments.md", "benchmarks.md", "models.md"}


@pytest.mark.parametrize("region", REGIONS, ids=lambda r: f"{r.where()}:{r.folder}")
def test_each_table_is_what_its_folder_renders_and_names_a_clean_commit_and_command(region):
    assert region.body == tables.render(region, ROOT), \
        f"{region.where()}: stale; run .venv/bin/python -m scripts.tables"
    assert PROVENANCE.search(region.body), f"{region.where()}: no 'Measured at commit `abc1234` by `command`.'"


# -- links ---------------------------------------------------------------------------------------
def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(page: Path) -> str:
    """The page without fenced or indented code blocks (their '#' lines are not headings)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"(?:^\n)((?: {4,}.*\n|\n)+)", "\n", text, flags=re.MULTILINE)


def anchors(page: Path) -> set[str]:
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", prose(page), re.MULTILINE)}


LINKS = [(page, target) for page in PAGES
         for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`\n]*`", "", prose(page)))
         if not re.match(r"[a-z]+:", target)]


def test_the_pages_link_to_one_another():
    assert len(LINKS) > 40


@pytest.mark.parametrize("page, target", LINKS, ids=lambda x: x if isinstance(x, str) else x.name)
def test_each_relative_link_reaches_a_file_and_heading(page, target):
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.name}: {target}: no such file"
    if anchor:
        assert anchor in anchors(dest), f"{page.name}: {target}: no heading with that anchor in {dest.name}"


# -- the README's commands -----------------------------------------------------------------------
def command_lines(lines: list[str]) -> list[str]:
    """What the README shows to be run: code lines (indented 4 or more, or fenced) and inline
    code spans that start with a command; comments left on."""
    found, fenced = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or re.match(r" {4,}\S", line):
            found.append(line.strip())
        else:
            found += [span for span in re.findall(r"`([^`]+)`", line) if " " in span]   # a name alone is no command
    return [c for c in found if is_command(c)]


def is_command(text: str) -> bool:
    words = program(text)
    return bool(words) and re.match(r"(sudo|scripts/|\.venv|python|curl|osken-manager|ryu-manager)", words[0]) is not None


def program(text: str) -> list[str]:
    """The words of a command without sudo, variable assignments and a trailing comment."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return []
    while words and (words[0] == "sudo" or re.fullmatch(r"[A-Z_]+=\S*", words[0])):
        words = words[1:]
    return words


README_COMMANDS = command_lines(README.read_text().splitlines())


def test_the_first_screen_shows_the_two_commands_and_no_other():
    lines = README.read_text().splitlines()[:FIRST_SCREEN]
    assert [line for line in lines if line in TWO_COMMANDS] == TWO_COMMANDS
    assert command_lines(lines) == [c.strip() for c in TWO_COMMANDS]


def test_the_readme_shows_the_ways_to_run_the_controller():
    assert len(README_COMMANDS) >= 6
    assert any("osken-manager" in c for c in README_COMMANDS) and any("-m controller" in c for c in README_COMMANDS)


@pytest.fixture(scope="module")
def not_root(tmp_path_factory) -> dict:
    """An environment in which `id -u` says 1000: a wrapper that went on to set the machine up
    instead of answering --help stops at once (setup.sh needs root) and the test fails."""
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("command", README_COMMANDS)
def test_each_readme_command_runs(command, not_root, booted):
    """Each command with --help added: it must exit 0 (argparse converts the values before it,
    so a bad number fails) and its help must list every option the command gives; a curl command by a request to the endpoint it names, on a controller
    booted against fake switches. The Ryu interpreter, where this machine has none, is checked
    with this one (the launcher's --help does not load a framework). Paths must exist."""
    words = program(command)
    for word in words[1:]:
        if re.fullmatch(r"[\w.-]+/[\w./-]+\.(py|json)", word):
            assert (ROOT / word).exists(), f"{command}: {word} does not exist"
    prog = words[0]
    if prog == "curl":
        return check_endpoint(command, words, booted)
    if prog.startswith("scripts/"):
        argv = [str(ROOT / prog), *words[1:]]
    elif prog in (".venv/bin/python", ".venv-ryu/bin/python", "python"):
        python = ROOT / prog if prog != "python" and (ROOT / prog).exists() else Path(sys.executable)
        argv = [str(python), *words[1:]]
    elif prog.endswith("osken-manager"):
        argv = [str(Path(sys.executable).parent / "osken-manager"), *words[1:]]
    else:
        pytest.fail(f"{command}: the README shows a command this test has no check for")
    done = subprocess.run([*argv, "--help"], cwd=ROOT, env=not_root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command} --help: exit {done.returncode}: {done.stderr[-800:]}"
    shown = done.stdout + done.stderr
    assert "usage" in shown.lower() or prog.startswith("scripts/")
    unknown = [w.split("=")[0] for w in words[1:] if w.startswith("--") and w.split("=")[0] not in shown]
    assert unknown == [], f"{command}: its --help lists no {', '.join(unknown)}"


def check_endpoint(command: str, words: list[str], booted) -> None:
    url = urlsplit("http://" + next(w for w in words[1:] if not w.startswith("-")))
    settings = Settings()
    hosts = [h.name for h in booted.spec.hosts]
    for host in hosts:                                  # every host has spoken, as in a running lab
        booted.arp(host, hosts[hosts.index(host) - 1])
    if url.port == settings.rest_port:
        environ = {"PATH_INFO": url.path, "QUERY_STRING": url.query, "REQUEST_METHOD": "GET"}
        app = RestApi(booted.balancer, clock=lambda: booted.now)
    elif url.port == settings.metrics_port:
        assert url.path == "/metrics", command
        environ = {"PATH_INFO": url.path, "QUERY_STRING": "", "REQUEST_METHOD": "GET"}
        app = Metrics(booted.balancer, clock=lambda: booted.now).wsgi_app()
    else:
        pytest.fail(f"{command}: port {url.port} is neither the REST ({settings.rest_port}) nor the metrics "
                    f"({settings.metrics_port}) default")
    status = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), f"{command}: {status[0]} {body[:300]!r}"
