"""The REST API on a booted Balancer: resources, errors as JSON 4xx, what changes need (token,
JSON), and metrics that agree."""

import csv
import io
import json
import os
import stat

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.service.capture import Capture, snapshot
from controller.service.metrics import Metrics
from controller.core.monitor import PortStat
from controller.__main__ import main
from controller.service.rest import RestApi, _forget_token, api_token, token_path
from controller.core.settings import ConfigError, Settings


def exchange(api, path, method="GET", query="", data=b"", **headers):
    """(status, headers, decoded JSON) for a request as the server hands it on; PUT and POST
    carry the token and a JSON content type, as the operator's tools send them, unless
    `headers` (WSGI names: HTTP_AUTHORIZATION=...) say otherwise."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)}
    if method != "GET":
        environ.update(HTTP_AUTHORIZATION=f"Bearer {api.token}", CONTENT_TYPE="application/json")
    environ.update(headers)
    response = []
    out = b"".join(api(environ, lambda status, headers: response.extend((status, dict(headers)))))
    return int(response[0].split()[0]), response[1], json.loads(out)


def call(api, path, method="GET", query="", body=None):
    status, _, decoded = exchange(api, path, method, query, json.dumps(body).encode() if body is not None else b"")
    return status, decoded


def loaded(booted):
    """s1 -> s2 carries 5 Mbit/s of 10 for one second, by the counters."""
    b = booted.balancer
    for t, n in ((0.0, 0), (1.0, 1)):
        b.port_stats(1, [PortStat(2, 0, 500 * n, 0, 625_000 * n, duration_s=1 + t)], booted.now + t)
        b.port_stats(2, [PortStat(2, 500 * n, 0, 625_000 * n, 0, duration_s=1 + t)], booted.now + t)
    booted.now += 1.0
    return RestApi(b, clock=lambda: booted.now)


def test_links_report_the_measured_utilisation(booted):
    status, links = call(loaded(booted), "/api/v1/links")
    assert status == 200
    s1s2 = next(lk for lk in links if (lk["src"], lk["dst"]) == ("s1", "s2"))
    assert (s1s2["capacity_mbps"], s1s2["utilisation"], s1s2["rate_mbps"]) == (10.0, 0.5, 5.0)
    assert next(lk for lk in links if (lk["src"], lk["dst"]) == ("s1", "s3"))["age_s"] is None  # never polled


def test_paths_list_candidates_with_features_scores_and_the_choice(booted):
    api = loaded(booted)
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    status, body = call(api, "/api/v1/paths", query="src=h1&dst=10.0.0.7")
    assert status == 200
    assert [c["path"] for c in body["candidates"]][0] == ["s1", "s2", "s7"]
    first = body["candidates"][0]
    assert (first["hops"], first["utilisation"], first["score"], first["chosen"]) == (2, 0.5, 2, True)


def test_bad_requests_get_json_4xx_that_say_what_was_wrong(booted):
    api = loaded(booted)
    assert call(api, "/api/v1/paths", query="src=h1")[0] == 400
    assert "unknown host 'h9'" in call(api, "/api/v1/paths", query="src=h9&dst=h1")[1]["error"]
    assert "not seen yet" in call(api, "/api/v1/paths", query="src=h1&dst=h7")[1]["error"]
    assert call(api, "/api/v1/nothing")[0] == 404
    assert call(api, "/api/v1/links", method="DELETE")[0] == 405
    status, body = call(api, "/api/v1/policy", method="PUT", body={"policy": "nope"})
    assert status == 400 and "unknown 'nope'" in body["error"]
    assert call(api, "/api/v1/policy", method="PUT", body=["shortest"])[0] == 400


def test_policy_can_be_read_and_set(booted):
    api = loaded(booted)
    assert call(api, "/api/v1/policy")[1]["policy"] == "shortest"
    assert call(api, "/api/v1/policy", "PUT", body={"policy": "shortest"})[0] == 200


def test_topology_and_flows(booted):
    api = loaded(booted)
    topo = call(api, "/api/v1/topology")[1]
    assert topo["complete"] is True and len(topo["switches"]) == 8 and len(topo["links"]) == 18
    assert call(api, "/api/v1/flows")[1] == []


def test_metrics_report_the_same_numbers_as_rest(booted):
    api = loaded(booted)
    metrics = Metrics(booted.balancer, clock=lambda: booted.now)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    gauges = {(s.labels["src"], s.labels["dst"]): s.value for s in families["lb_link_utilisation"].samples}
    for link in call(api, "/api/v1/links")[1]:
        assert gauges[(link["src"], link["dst"])] == link["utilisation"]
    assert families["lb_datapath_connects"].samples[0].value == 8


def scraped_counters(metrics: Metrics) -> dict[str, float]:
    """Every counter of a scrape, by its name without _total."""
    return {f.name: sum(s.value for s in f.samples) for f in text_string_to_metric_families(
            generate_latest(metrics.registry).decode()) if f.type == "counter"}


def test_metrics_count_packet_ins_and_stale_statistics_replies(booted):
    b, metrics = booted.balancer, Metrics(booted.balancer, clock=lambda: booted.now)
    before = scraped_counters(metrics)
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    booted.send("h1", b"\xff" * 9)                # malformed: handled (dropped) all the same
    assert scraped_counters(metrics)["lb_packet_in"] == before["lb_packet_in"] + 3
    b.poll(booted.now + 1)                          # nothing was asked before: nothing stale
    assert scraped_counters(metrics)["lb_stale_replies"] == before["lb_stale_replies"]
    b.poll(booted.now + 2)                          # no switch answered the first poll
    assert scraped_counters(metrics)["lb_stale_replies"] == before["lb_stale_replies"] + 8
    b.port_stats(1, [PortStat(1, 0, 0, 0, 0)], booted.now + 2.1)    # s1 answers the second
    b.poll(booted.now + 3)
    assert scraped_counters(metrics)["lb_stale_replies"] == before["lb_stale_replies"] + 8 + 7


def test_capture_files_load_after_a_kill_mid_row(booted, tmp_path):
    loaded(booted)
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    cap = Capture(tmp_path)
    for table, rows in snapshot(booted.balancer, booted.now, 1_700_000_000.125).items():
        cap.write(table, rows)
    cap.close()
    with open(tmp_path / "paths.csv", "a") as f:
        f.write("1700000001,s1,s7,s1>s2")          # the writer died mid-row
    Capture(tmp_path).close()                       # the next writer cuts the partial row
    rows = list(csv.DictReader(open(tmp_path / "paths.csv")))
    assert [r["path"] for r in rows] == ["s1>s2>s7", "s1>s3>s4>s7", "s1>s5>s6>s8>s7",
                                         "s7>s2>s1", "s7>s4>s3>s1", "s7>s8>s6>s5>s1"]
    assert float(rows[0]["utilisation"]) == 0.5
    assert rows[0]["time_s"] == "1700000000.125"
    links = list(csv.DictReader(open(tmp_path / "links.csv")))
    assert len(links) == 18


def test_path_features_follow_new_statistics_at_once(booted):
    booted.arp("h1", "h7")
    booted.arp("h7", "h1")
    b = booted.balancer
    h1, h7 = b.net.host_by_ip("10.0.0.1"), b.net.host_by_ip("10.0.0.7")
    path = b.paths.candidates(b.net, 1, 7)[0]
    assert b.features(path, h1, h7, booted.now).utilisation == 0
    api = loaded(booted)                     # s1 -> s2 now carries 5 of its 10 Mbit/s
    assert b.features(path, h1, h7, booted.now).utilisation == 0.5
    assert call(api, "/api/v1/paths", query="src=h1&dst=h7")[1]["candidates"][0]["utilisation"] == 0.5


def test_changes_need_the_token_and_change_nothing_without_it(booted):
    api = RestApi(booted.balancer, token="the-operators-token-0123")
    for auth in ({"HTTP_AUTHORIZATION": ""}, {"HTTP_AUTHORIZATION": "Bearer not-it"},
                 {"HTTP_AUTHORIZATION": "the-operators-token-0123"}, {"HTTP_AUTHORIZATION": "Bearer \xe9"}):
        status, headers, body = exchange(api, "/api/v1/policy", "PUT", data=b'{"policy": "ecmp"}', **auth)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer" and "token" in body["error"]
    assert booted.balancer.policy.name == "shortest"
    status, _, body = exchange(api, "/api/v1/policy", "PUT", data=b'{"policy": "ecmp"}',
                               HTTP_AUTHORIZATION="bearer the-operators-token-0123")
    assert status == 200 and booted.balancer.policy.name == "ecmp"
    assert exchange(api, "/api/v1/policy")[0] == 200                  # reading needs none


def test_changes_need_json_and_a_small_body(booted):
    api = RestApi(booted.balancer)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        status, _, body = exchange(api, "/api/v1/model/reload", "POST", CONTENT_TYPE=content_type)
        assert status == 415 and "application/json" in body["error"]
    assert exchange(api, "/api/v1/policy", "PUT", data=b'{"policy": "ecmp"}',
                    CONTENT_TYPE="application/json; charset=utf-8")[0] == 200
    status, _, body = exchange(api, "/api/v1/policy", "PUT", CONTENT_LENGTH="10001")
    assert status == 413 and "10000 bytes" in body["error"]


def test_deeply_nested_json_is_a_one_line_400(booted):
    api = RestApi(booted.balancer)
    status, _, body = exchange(api, "/api/v1/policy", "PUT", data=b"[" * 5000 + b"]" * 5000)
    assert status == 400 and "nested too deeply" in body["error"] and "\n" not in body["error"]


def test_a_generated_token_goes_to_a_file_only_the_user_can_read(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = token_path(8080)
    path.parent.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    path.symlink_to(victim)                       # planted where the token goes: replaced, not followed
    with caplog.at_level("INFO", "lb.rest"):
        token = api_token(Settings(rest_port=8080))
    assert path.read_text() == token + "\n" and len(token) >= 32 and victim.read_text() == "keep me"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not path.is_symlink()
    assert os.listdir(path.parent) == [path.name]                   # no temporary file left
    assert str(path) in caplog.text and token not in caplog.text
    assert api_token(Settings(rest_port=8080)) != token != path.read_text()    # a new one each start
    _forget_token(path, token)                    # at exit: not the file of a controller started since
    assert path.exists()
    _forget_token(path, path.read_text().strip())
    assert not path.exists()


def test_a_configured_token_is_used_and_checked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    token = "configured-token-0123456789"
    assert api_token(Settings.from_env({"LB_API_TOKEN": token})) == token
    assert not token_path(Settings.rest_port).exists()
    assert token not in repr(Settings(api_token=token))
    with pytest.raises(ConfigError, match="LB_API_TOKEN: must be 16 to 256 visible ASCII"):
        Settings.from_env({"LB_API_TOKEN": "short"})
    assert main(["--api-token", "has spaces in the middle"]) == 2
    assert "--api-token: must be 16 to 256" in capsys.readouterr().err
