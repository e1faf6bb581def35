"""The REST API on a booted Balancer: resources, errors as JSON 4xx, and metrics that agree."""

import csv
import io
import json

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.capture import Capture, snapshot
from controller.metrics import Metrics
from controller.monitor import PortStat
from controller.rest import RestApi


def call(api, path, method="GET", query="", body=None):
    data = json.dumps(body).encode() if body is not None else b""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data)}
    status = []
    out = b"".join(api(environ, lambda s, headers: status.append(s)))
    return int(status[0].split()[0]), json.loads(out)


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
