"""The web page in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium against a running controller and the H1-H7 lab. The page draws the spec's
network, a flooded link changes colour within 3 s, a host pair shows its candidates with the
chosen one marked, a flow's decision is explained, and the policy is switched from the page
(with the token typed in, not without). Screenshots of the page are kept in
results/webview-test-<time>/ (pytest's own folders are recycled after three runs).

The browser runs with a fresh profile and everything that would reach out of this machine off
(this machine's network is closed: without those flags Chromium keeps trying)."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import FLOODED, assert_clean_log, require, running_lab
from tests.prerequisites import browser_missing
from topologies.lab import default_workdir, wait_until

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-extensions", "--window-size=1280,900")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require(browser_missing())     # before the lab: no lab is started for a test that cannot run
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    logs = tmp_path_factory.mktemp("chromedriver")
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver"),
                                                               log_output=str(logs / "chromedriver.log")))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    yield from running_lab(tmp_path_factory, "webview", policy="shortest")


@pytest.fixture(scope="module")
def page(browser, lab):
    browser.get(f"http://127.0.0.1:{lab.rest_port}/")
    return browser


def count(page, css: str) -> int:
    return len(page.find_elements("css selector", css))


def rows(page, table: str) -> list[tuple[str, bool]]:
    """(data-path, chosen?) of each candidate row of a table, read at once (tables are redrawn
    every second: an element found in one call may be gone in the next)."""
    return [tuple(r) for r in page.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' tr.candidate')]"
        ".map((r) => [r.dataset.path, r.classList.contains('chosen')])", table)]


def line(page, src: str, dst: str):
    return page.find_element("css selector", f'line.link[data-src="{src}"][data-dst="{dst}"]')


@pytest.fixture(scope="module")
def artifacts():
    return default_workdir("webview-test")


def screenshot(page, folder, name: str) -> str:
    path = folder / name
    page.save_screenshot(str(path))
    print(f"\nscreenshot of the page: {path}")
    return str(path)


def test_the_page_draws_the_specs_switches_hosts_and_links_without_a_token(page, lab, artifacts):
    try:
        wait_until(lambda: count(page, "g.node.switch") == 8 and count(page, "g.node.host") == 7, 10,
                   what="the page to draw 8 switches and 7 hosts")
    except TimeoutError as exc:     # what the page said (its fetch errors land in its status line)
        status, topology = lab.api("topology")
        raise TimeoutError(f"{exc}; the page's status line: {page.find_element('id', 'status').text!r}; "
                           f"GET topology from the test: HTTP {status}, {len(topology.get('switches', []))} "
                           f"switches; {screenshot(page, artifacts, 'not-drawn.png')}") from None
    spec_links = {frozenset((lk.a, lk.b)) for lk in lab.spec.switch_links()}
    drawn = {(e.get_attribute("data-src"), e.get_attribute("data-dst"))
             for e in page.find_elements("css selector", "line.link[data-src]")}
    assert drawn == {(a, b) for pair in spec_links for a, b in (tuple(pair), tuple(pair)[::-1])}   # each direction
    assert count(page, "line.host-link") == len(lab.spec.hosts)
    # every link discovered and measured, each line as wide as its capacity says
    wait_until(lambda: {e.get_attribute("data-state") for e in page.find_elements("css selector", "line.link[data-src]")}
               == {"measured"}, 10, what="every link to be drawn as measured")
    width = {(e.get_attribute("data-src"), e.get_attribute("data-dst")): float(e.get_attribute("stroke-width"))
             for e in page.find_elements("css selector", "line.link[data-src]")}
    assert width["s2", "s7"] < width["s3", "s4"] < width["s5", "s6"]      # 10 < 20 < 30 Mbit/s
    assert "shortest" in page.find_element("id", "policy-name").text
    assert lab.api_token not in page.page_source
    screenshot(page, artifacts, "page-loaded.png")


def test_selecting_h1_and_h7_shows_three_candidates_and_marks_the_chosen_one(page, lab):
    from selenium.webdriver.support.ui import Select
    Select(page.find_element("id", "src")).select_by_value("h1")
    Select(page.find_element("id", "dst")).select_by_value("h7")
    shown = wait_until(lambda: len(rows(page, "#candidates")) == 3 and rows(page, "#candidates"), 5,
                       what="three candidates")
    expected = [(">".join(c["path"]), c["chosen"]) for c in lab.api("paths?src=h1&dst=h7")[1]["candidates"]]
    assert shown == expected and [p for p, chosen in shown if chosen] == ["s1>s2>s7"]
    halo = page.execute_script(      # read at once: the halo is redrawn every second, as the rows are
        "return document.querySelector('polyline.chosen-path').getAttribute('data-path')")
    assert halo == "h1>s1>s2>s7>h7"


def test_a_flooded_link_changes_colour_within_3_s(page, lab, artifacts):
    s2s7 = line(page, "s2", "s7")
    wait_until(lambda: s2s7.get_attribute("data-state") == "measured", 10, what="s2 -> s7 to be measured")
    idle = s2s7.get_attribute("stroke")
    with lab.udp_flood("h2", "h7", 20, 15, stop=True):     # pinned to s2 -> s7 by shortest; outlasts the waits
        start = time.monotonic()
        wait_until(lambda: s2s7.get_attribute("stroke") != idle, 3, interval_s=0.05,
                   what="the s2 -> s7 line to change colour")
        took = time.monotonic() - start
        wait_until(lambda: float(s2s7.get_attribute("data-utilisation") or 0) >= FLOODED, 5,
                   what="the s2 -> s7 line to read the flood")
        s2s7.click()            # its history beside h1 -> h7's candidates (the test above), for the screenshot
        wait_until(lambda: "s2 -> s7" in page.find_element("id", "link-hint").text, 3, what="the link's panel")
        screenshot(page, artifacts, "page-flooded.png")
    print(f"s2 -> s7: {idle} -> {s2s7.get_attribute('stroke')} {took:.2f} s after the flood started")
    assert line(page, "s7", "s2").get_attribute("stroke") == idle     # the other direction stays idle


def test_a_flows_why_link_explains_its_decision(page, lab):
    lab.owd_probe("h1", "h7", sport=43000, count=5)
    flow = next(f for f in lab.api("flows")[1] if f["src_port"] == 43000)
    click_why = ("const row = [...document.querySelectorAll('#flows tr.flow')]"
                 ".find((r) => r.cells[0].textContent === arguments[0]);"
                 "if (row) row.querySelector('a.why').click(); return !!row;")
    wait_until(lambda: page.execute_script(click_why, flow["flow"]), 5, what="the flow's why? link")
    shown = wait_until(lambda: rows(page, "#decision-candidates"), 5, what="the decision's candidates")
    assert len(shown) == 3 and [p for p, chosen in shown if chosen] == [">".join(flow["path"])]
    assert "by hops alone" in page.find_element("id", "decision").text      # shortest is not load-aware


def test_switching_the_policy_from_the_page_needs_the_token_and_changes_get_policy(page, lab):
    from selenium.webdriver.support.ui import Select
    token, said = page.find_element("id", "token"), page.find_element("id", "action")
    token.clear()
    token.send_keys("not-the-token-of-this-controller")
    Select(page.find_element("id", "policy-select")).select_by_value("least-loaded")
    page.find_element("id", "policy-apply").click()
    wait_until(lambda: "not switched: wrong token" in said.text, 5, what="the page to say the switch was refused")
    assert lab.api("policy")[1]["policy"] == "shortest"
    token.clear()
    token.send_keys(lab.api_token)
    Select(page.find_element("id", "policy-select")).select_by_value("least-loaded")
    page.find_element("id", "policy-apply").click()
    wait_until(lambda: lab.api("policy")[1]["policy"] == "least-loaded", 5, what="GET /api/v1/policy to change")
    wait_until(lambda: page.find_element("id", "policy-name").text == "least-loaded"
               and said.text == "switched to least-loaded", 3, what="the page to show it")
    assert page.execute_script("return sessionStorage.getItem('sdn-lb-api-token')") == lab.api_token
    assert lab.api_token not in page.page_source
    assert_clean_log(lab)
