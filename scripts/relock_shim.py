"""Loopback HTTPS proxy that lets an unmodified Poetry use the default PyPI source here.

Run by `scripts/relock` (a development tool of this repository, not part of the nbenv package),
with the Python of Poetry's own venv, which brings `requests` and `packaging`:

    relock_shim.py probe --index-url URL --poetry-version V --ca BUNDLE   # exit 0: plain Poetry works
    relock_shim.py serve --index-url URL --cert C --key K --upstream-ca BUNDLE --port-file F

Poetry's built-in PyPI repository needs two endpoints that this machine's intercepting
proxy does not serve: the PEP 691 JSON simple page (simple/<name>/ with a JSON Accept header)
and the per-release JSON API (pypi/<name>/<version>/json). This proxy is given to Poetry via
HTTPS_PROXY. For the index host it terminates TLS with a throw-away local CA and answers:
  * simple/<name>/ (JSON wanted) -> PEP 691 JSON converted from the upstream PEP 503 HTML page
  * pypi/<name>/<version>/json   -> built from that page plus the release's own core metadata
                                    (read from a wheel with HTTP range requests)
  * anything else                -> passed through to the index unchanged.
Every other CONNECT (file hosting) is tunnelled byte for byte, so downloads and hashes are the
real ones. The index host is never written here: it is taken from pip's defaults at run time.
"""

from __future__ import annotations

import argparse
import email.parser
import html.parser
import io
import json
import os
import re
import select
import socket
import ssl
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

PEP691 = "application/vnd.pypi.simple.v1+json"
_tls = threading.local()
UPSTREAM_VERIFY: str | bool = True
INDEX_BASE = ""  # e.g. https://<index host>/  (from pip, at run time)
INDEX_HOST = ""
File = dict[str, Any]  # one file of a PEP 691 JSON page
Release = dict[str, Any]  # the release JSON API's answer
_pages: dict[str, tuple[str, list[File]] | None] = {}
_pages_lock = threading.Lock()
_releases: dict[tuple[str, str], Release | None] = {}


def session() -> requests.Session:
    s = getattr(_tls, "s", None)
    if s is None:
        s = requests.Session()
        s.trust_env = False  # never loop back into ourselves
        s.verify = UPSTREAM_VERIFY
        _tls.s = s
    return s


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- simple HTML -> file list
class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self._cur: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._cur = dict(attrs)
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._cur is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._cur is not None:
            self._cur["#text"] = self._text.strip()
            self.anchors.append(self._cur)
            self._cur = None


def _packagetype(filename: str) -> str:
    f = filename.lower()
    if f.endswith(".whl"):
        return "bdist_wheel"
    if f.endswith(".egg"):
        return "bdist_egg"
    if f.endswith(".exe"):
        return "bdist_wininst"
    if f.endswith(".msi"):
        return "bdist_msi"
    if f.endswith(".rpm"):
        return "bdist_rpm"
    if f.endswith(".dmg"):
        return "bdist_dmg"
    return "sdist"


_SDIST_EXT = re.compile(r"\.(tar\.gz|tar\.bz2|tar\.xz|tar\.z|tgz|tbz|zip|tar)$", re.I)


def _file_version(filename: str, project: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        stem = _SDIST_EXT.sub("", filename)
        if stem == filename:
            stem = os.path.splitext(filename)[0]
        for i, ch in enumerate(stem):
            if ch == "-" and canonicalize_name(stem[:i]) == project:
                v = stem[i + 1 :]
                if filename.endswith(".egg"):
                    v = v.split("-")[0]
                return Version(v)
    except (InvalidVersion, ValueError, Exception):
        return None
    return None


def get_page(project: str) -> tuple[str, list[File]] | None:
    """(canonical name, files) from the upstream PEP 503 page, or None if 404."""
    with _pages_lock:
        if project in _pages:
            return _pages[project]
    url = f"{INDEX_BASE}simple/{project}/"
    r = session().get(url, headers={"Accept": "text/html"}, timeout=180)
    if r.status_code == 404:
        result = None
    else:
        r.raise_for_status()
        p = _Anchors()
        p.feed(r.text)
        files = []
        for a in p.anchors:
            href = a.get("href")
            if not href:
                continue
            absurl = urllib.parse.urljoin(r.url, href)
            base, _, frag = absurl.partition("#")
            hashes = {}
            if "=" in frag:
                k, _, v = frag.partition("=")
                hashes[k] = v
            filename = urllib.parse.unquote(base.rsplit("/", 1)[-1]) or a["#text"]
            entry: File = {"filename": filename, "url": base, "hashes": hashes}
            if a.get("data-requires-python"):
                entry["requires-python"] = a["data-requires-python"]
            if "data-yanked" in a:
                entry["yanked"] = a["data-yanked"] or True
            else:
                entry["yanked"] = False
            meta = a.get("data-core-metadata", a.get("data-dist-info-metadata"))
            if meta is not None:
                if meta and "=" in meta:
                    k, _, v = meta.partition("=")
                    entry["core-metadata"] = {k: v}
                else:
                    entry["core-metadata"] = meta != "false"
            files.append(entry)
        result = (project, files)
    with _pages_lock:
        _pages[project] = result
    return result


# ---------------------------------------------------------------- metadata of one release
class _RangeFile(io.RawIOBase):
    """Seekable read-only view of a remote file, fetched in blocks with Range requests."""

    BLOCK = 256 * 1024

    def __init__(self, url: str) -> None:
        self.url = url
        self.pos = 0
        self.blocks: dict[int, bytes] = {}
        self.whole: bytes | None = None
        r = session().get(url, headers={"Range": "bytes=-1048576"}, timeout=180)
        r.raise_for_status()
        if r.status_code == 206:
            total = int(r.headers["Content-Range"].rsplit("/", 1)[1])
            self.size = total
            start = total - len(r.content)
            self._store(start, r.content)
        else:
            self.whole = r.content
            self.size = len(r.content)

    def _store(self, start: int, data: bytes) -> None:
        # keep data keyed by absolute offset ranges (simple list of spans)
        self.blocks[start] = data

    def _get(self, start: int, end: int) -> bytes:  # [start, end)
        if self.whole is not None:
            return self.whole[start:end]
        for s, d in self.blocks.items():
            if s <= start and end <= s + len(d):
                return d[start - s : end - s]
        fs = (start // self.BLOCK) * self.BLOCK
        fe = min(self.size, max(end, fs + self.BLOCK))
        r = session().get(self.url, headers={"Range": f"bytes={fs}-{fe - 1}"}, timeout=180)
        r.raise_for_status()
        if r.status_code != 206:
            self.whole = r.content
            return self.whole[start:end]
        self._store(fs, r.content)
        return r.content[start - fs : end - fs]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = off if whence == 0 else self.pos + off if whence == 1 else self.size + off
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = max(0, min(n, self.size - self.pos))
        data = self._get(self.pos, self.pos + n) if n else b""
        self.pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _parse_metadata(raw: bytes) -> email.message.Message:
    import email.policy

    return email.parser.Parser(policy=email.policy.compat32).parsestr(raw.decode("utf-8", errors="replace"))


def _wheel_metadata(url: str) -> email.message.Message:
    with zipfile.ZipFile(_RangeFile(url)) as z:
        names = [n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        return _parse_metadata(z.read(names[0]))


def _sdist_metadata(url: str, filename: str) -> email.message.Message | None:
    data = session().get(url, timeout=600).content
    try:
        if filename.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                names = sorted(n for n in z.namelist() if re.fullmatch(r"[^/]+/PKG-INFO", n))
                return _parse_metadata(z.read(names[0])) if names else None
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            names = sorted(n for n in t.getnames() if re.fullmatch(r"[^/]+/PKG-INFO", n))
            f = t.extractfile(names[0]) if names else None
            return _parse_metadata(f.read()) if f else None
    except Exception as e:
        log(f"shim: cannot read PKG-INFO of {filename}: {e}")
        return None


def get_release(project: str, version: str) -> Release | None:
    key = (project, version)
    with _pages_lock:
        if key in _releases:
            return _releases[key]
    page = get_page(project)
    if page is None:
        return None
    try:
        want = Version(version)
    except InvalidVersion:
        return None
    files = [f for f in page[1] if _file_version(f["filename"], project) == want]
    if not files:
        return None
    wheels = [f for f in files if f["filename"].endswith(".whl")]
    sdists = [f for f in files if _packagetype(f["filename"]) == "sdist"]
    meta = None
    requires_dist_known = False
    if wheels:
        universal = [f for f in wheels if f["filename"].endswith("-none-any.whl")]
        pick = (universal or wheels)[0]
        meta = _wheel_metadata(pick["url"])
        requires_dist_known = True
    elif sdists:
        meta = _sdist_metadata(sdists[0]["url"], sdists[0]["filename"])
    name = (meta.get("Name") if meta else None) or project
    requires_dist = (meta.get_all("Requires-Dist") or None) if (meta and requires_dist_known) else None
    requires_python = meta.get("Requires-Python") if meta else None
    if not requires_python:
        requires_python = next((f["requires-python"] for f in files if f.get("requires-python")), None)
    yanked = all(f["yanked"] for f in files)
    reason = next((f["yanked"] for f in files if isinstance(f["yanked"], str)), None)
    summary = meta.get("Summary") if meta else None
    urls = []
    for f in files:
        urls.append(
            {
                "filename": f["filename"],
                "url": f["url"],
                "packagetype": _packagetype(f["filename"]),
                "digests": {k: v for k, v in f["hashes"].items()},
                "requires_python": f.get("requires-python"),
                "yanked": bool(f["yanked"]),
                "yanked_reason": f["yanked"] if isinstance(f["yanked"], str) else None,
            }
        )
    result = {
        "info": {
            "name": name,
            "version": version,
            "summary": summary,
            "requires_dist": requires_dist,
            "requires_python": requires_python,
            "yanked": yanked,
            "yanked_reason": reason if yanked else None,
        },
        "urls": urls,
    }
    with _pages_lock:
        _releases[key] = result
    return result


# ---------------------------------------------------------------- HTTP(S) front end
class IndexHandler(BaseHTTPRequestHandler):
    """Serves the index host's requests on the TLS-terminated CONNECT stream."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("SHIM_VERBOSE"):
            log("shim: " + format % args)

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object, ctype: str = "application/json") -> None:
        self._send(200, json.dumps(obj).encode(), ctype)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        accept = self.headers.get("Accept", "")
        try:
            m = re.fullmatch(r"/simple/([^/]+)/?", path)
            if m and PEP691 in accept:
                page = get_page(canonicalize_name(urllib.parse.unquote(m.group(1))))
                if page is None:
                    return self._send(404, b"Not Found", "text/plain")
                name, files = page
                versions = sorted({str(v) for f in files if (v := _file_version(f["filename"], name))}, key=Version)
                return self._json(
                    {"meta": {"api-version": "1.1"}, "name": name, "files": files, "versions": versions},
                    PEP691,
                )
            m = re.fullmatch(r"/pypi/([^/]+)/([^/]+)/json/?", path)
            if m:
                up = self._upstream()
                if up.status_code == 200:
                    return self._send(200, up.content, up.headers.get("Content-Type", "application/json"))
                rel = get_release(canonicalize_name(urllib.parse.unquote(m.group(1))), urllib.parse.unquote(m.group(2)))
                if rel is None:
                    return self._send(404, b"Not Found", "text/plain")
                return self._json(rel)
            up = self._upstream()
            return self._send(up.status_code, up.content, up.headers.get("Content-Type", "application/octet-stream"))
        except Exception as e:
            log(f"shim: error on {path}: {e!r}")
            return self._send(502, repr(e).encode(), "text/plain")

    def _upstream(self) -> requests.Response:
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "user-agent", "range")}
        return session().request(self.command, INDEX_BASE.rstrip("/") + self.path, headers=hdrs, timeout=180)


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    tls_ctx: ssl.SSLContext

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("SHIM_VERBOSE"):
            log("proxy: " + format % args)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        if host.lower() == INDEX_HOST and port == "443":
            conn = self.tls_ctx.wrap_socket(self.connection, server_side=True)
            IndexHandler(conn, self.client_address, self.server)
        else:
            self._tunnel(host, int(port))
        self.close_connection = True

    def _tunnel(self, host: str, port: int) -> None:
        up = socket.create_connection((host, port), timeout=180)
        socks = [self.connection, up]
        try:
            while True:
                r, _, x = select.select(socks, [], socks, 300)
                if x or not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (up if s is self.connection else self.connection).sendall(data)
        finally:
            up.close()

    def do_GET(self) -> None:
        self.send_error(501, "only CONNECT is supported")


def probe(index_url: str, poetry_version: str, ca: str) -> bool:
    """Does the index serve what Poetry's default source needs: PEP 691 JSON and the release JSON API?"""
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    base = index_url.rstrip("/") + "/"
    r = s.get(base + "simple/poetry/", headers={"Accept": PEP691}, timeout=60)
    ok = r.status_code == 200 and "json" in r.headers.get("Content-Type", "")
    r2 = s.get(f"{base}pypi/poetry/{poetry_version}/json", timeout=60)
    log(f"simple-json: {r.status_code} {r.headers.get('Content-Type')} | release-json: {r2.status_code}")
    return ok and r2.status_code == 200


def serve(index_url: str, cert: str, key: str, upstream_ca: str, port_file: str) -> None:
    """Listen on 127.0.0.1 (a free port, written to `port_file` once listening) until killed."""
    global UPSTREAM_VERIFY, INDEX_BASE, INDEX_HOST
    INDEX_BASE = index_url.rstrip("/") + "/"
    INDEX_HOST = (urllib.parse.urlsplit(INDEX_BASE).hostname or "").lower()
    UPSTREAM_VERIFY = upstream_ca or True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ProxyHandler.tls_ctx = ctx
    srv = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    srv.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    log(f"shim: listening on 127.0.0.1:{srv.server_address[1]}")
    srv.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="relock_shim.py", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = ap.add_subparsers(dest="command", required=True)
    check = commands.add_parser("probe", help="exit 0 if the index serves PEP 691 JSON and the release JSON API")
    check.add_argument("--index-url", required=True, help="index base URL (pip's default PyPI URL)")
    check.add_argument("--poetry-version", required=True, help="a release whose JSON page to ask for")
    check.add_argument("--ca", required=True, help="CA bundle to verify the index with")
    run = commands.add_parser("serve", help="run the loopback proxy until killed")
    run.add_argument("--index-url", required=True, help="index base URL (pip's default PyPI URL)")
    run.add_argument("--cert", required=True, help="the index host's certificate, from the throw-away CA")
    run.add_argument("--key", required=True)
    run.add_argument("--upstream-ca", default="", help="CA bundle to verify the real index with")
    run.add_argument("--port-file", required=True, help="written with the port once listening")
    a = ap.parse_args(argv)
    if a.command == "probe":
        return 0 if probe(a.index_url, a.poetry_version, a.ca) else 1
    serve(a.index_url, a.cert, a.key, a.upstream_ca, a.port_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
