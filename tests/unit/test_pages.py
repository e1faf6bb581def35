"""The web page beside the API (controller/service/pages.py): its files with their types and
headers, nothing else (no path reaches outside them), no token needed to load it, the API's
rules unchanged behind it, and a page that loads nothing from another site."""

import io
import json
import logging
import re

import pytest

from controller.service import pages
from controller.service.rest import RestApi

TOKEN = "a-token-of-the-operator-0123456789"


@pytest.fixture
def site(booted):
    return pages.Site(RestApi(booted.balancer, token=TOKEN), pages.load())


def fetch(site, path, method="GET", **environ):
    """(status code, headers, body bytes) of one request through the site."""
    response = []
    body = b"".join(site({"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": "",
                          "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b""), **environ},
                         lambda status, headers, exc_info=None: response.extend((status, dict(headers)))))
    return int(response[0].split()[0]), response[1], body


@pytest.mark.parametrize("path, kind", [("/", "text/html; charset=utf-8"), ("/index.html", "text/html; charset=utf-8"),
                                        ("/app.js", "text/javascript; charset=utf-8"),
                                        ("/style.css", "text/css; charset=utf-8")])
def test_each_file_is_served_with_the_type_of_its_extension_and_protective_headers(site, path, kind):
    status, headers, body = fetch(site, path)
    assert status == 200 and headers["Content-Type"] == kind and int(headers["Content-Length"]) == len(body) > 0
    assert {k: headers[k] for k in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options",
                                    "Content-Security-Policy")} == {
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}
    assert body == (pages.WEB / ("index.html" if path == "/" else path[1:])).read_bytes()


@pytest.mark.parametrize("path", ["/nothing.html", "/../rest.py", "/..%2frest.py", "/%2e%2e/pages.py", "/web/app.js",
                                  "/./app.js", "//app.js", "/app.js/", "/../../../../etc/passwd", "/APP.JS",
                                  "/pages.py", "/__init__.py", ""])
def test_any_other_path_is_a_json_404_and_nothing_outside_the_files_is_read(site, path):
    status, headers, body = fetch(site, path)
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert "no such page" in json.loads(body)["error"]


def test_the_page_loads_without_the_token_and_never_contains_it(site):
    for path in ("/", "/app.js", "/style.css"):
        status, _, body = fetch(site, path)       # no Authorization header at all
        assert status == 200 and TOKEN.encode() not in body


def put_policy(site, name: str, **headers) -> int:
    data = json.dumps({"policy": name}).encode()
    return fetch(site, "/api/v1/policy", "PUT", CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)),
                 **{"wsgi.input": io.BytesIO(data)}, **headers)[0]


def test_the_apis_rules_stand_behind_the_page(site, booted):
    assert fetch(site, "/api/v1/policy")[0] == 200                      # a read: no token
    assert put_policy(site, "ecmp") == 401                              # a change: the token
    assert put_policy(site, "ecmp", HTTP_AUTHORIZATION="Bearer not-the-token") == 401
    assert booted.balancer.policy.name == "shortest"
    assert put_policy(site, "ecmp", HTTP_AUTHORIZATION=f"Bearer {TOKEN}") == 200
    assert booted.balancer.policy.name == "ecmp"


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_a_page_is_only_read(site, method):
    status, _, body = fetch(site, "/", method, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 405 and "only GET" in json.loads(body)["error"]


def test_the_page_loads_only_its_own_files():
    html = (pages.WEB / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    served = pages.load()
    assert refs and all(r in served or r.startswith("data:") for r in refs), refs
    for name in ("index.html", "app.js", "style.css"):
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", (pages.WEB / name).read_text()), name


def test_only_small_files_of_known_types_are_loaded_and_a_bad_one_is_said(tmp_path, caplog):
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "big.js").write_bytes(b"x" * (pages.MAX_FILE_BYTES + 1))
    (tmp_path / "notes.txt").write_text("not a page file")
    (tmp_path / ".hidden.css").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.css").write_text("")
    with caplog.at_level(logging.ERROR, logger="lb.pages"):
        files = pages.load(tmp_path)
    assert sorted(files) == ["/", "/index.html"]
    assert "big.js: larger than" in caplog.text


def test_without_an_index_the_api_is_still_served(tmp_path, booted, caplog):
    with caplog.at_level(logging.ERROR, logger="lb.pages"):
        site = pages.Site(RestApi(booted.balancer), pages.load(tmp_path / "missing"))
    assert "no index.html" in caplog.text
    assert fetch(site, "/")[0] == 404 and fetch(site, "/api/v1/topology")[0] == 200
