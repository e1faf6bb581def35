"""The web page on the REST port: the files of controller/service/web/ (plain HTML, CSS and
JavaScript; no build step, nothing from another site), served beside the API.

    GET /            index.html: the network drawn live from the API, decisions explained,
                     the policy switched (with the token, which the user types into the page)
    GET /<file>      app.js, style.css: the page's own files

Every file is read once, when the server starts: only those names exist (a request path is
looked up, never joined to a directory, so no path leaves it), each is at most MAX_FILE_BYTES,
and its type comes from its extension (TYPES), never from its content. The page is a read,
so it needs no token, like every GET; its own requests to PUT carry the token it was given.
Headers keep the page from being framed by another site or loading anything but its own
files (Content-Security-Policy), and browsers from guessing types (nosniff).
"""

from __future__ import annotations

import logging
from pathlib import Path

from controller.files import read_bytes
from controller.service.httpd import error
from controller.service.rest import PREFIX

WEB = Path(__file__).resolve().with_name("web")
MAX_FILE_BYTES = 256 << 10
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
           ("Cache-Control", "no-cache"), ("X-Frame-Options", "DENY"),
           ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"))
log = logging.getLogger("lb.pages")


class PageError(ValueError):
    """A page file that cannot be served; the message names it."""


def load(directory: Path = WEB) -> dict[str, tuple[str, bytes]]:
    """URL path -> (content type, bytes) for each file of a known type directly in `directory`
    ('/' is its index.html). A file that cannot be read is left out, and the log says why:
    the API goes on without its page."""
    files: dict[str, tuple[str, bytes]] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else ():
        kind = TYPES.get(path.suffix)
        if kind is None or path.name.startswith("."):
            continue
        try:
            files["/" + path.name] = (kind, read_bytes(path, MAX_FILE_BYTES, PageError))
        except PageError as exc:
            log.error("web page: %s; not served", exc)
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    else:
        log.error("web page: no index.html in %s; only the API is served", directory)
    return files


class Site:
    """The REST port's application: paths under /api/v1/ go to the API, the rest to the files."""

    def __init__(self, api, files: dict[str, tuple[str, bytes]]) -> None:
        self.api, self.files = api, files

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX):
            return self.api(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return error(start_response, "405 Method Not Allowed", f"{path} is a page: only GET")
        found = self.files.get(path)
        if found is None:
            return error(start_response, "404 Not Found",
                         f"no such page '{path}' (the page is /, the API is under {PREFIX})")
        kind, data = found
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(data))), *HEADERS])
        return [data]
