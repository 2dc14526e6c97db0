"""``raykube/web``: an HTTP server that answers with its pod name.

Binds ``$POD_IP:$PORT`` (``PORT`` default 8080; ``POD_IP`` default
127.0.0.1). ``GET /`` -> ``<pod name>\\n`` (plus `` $MESSAGE`` if set);
``GET /info`` -> JSON (pod, namespace, node, pod IP, pid, uptime, hits);
``GET /healthz`` and ``GET /readyz`` -> 200 ``ok`` or 503; ``GET
/admin/healthz?ok=0`` (or ``/admin/readyz?ok=0``) makes the check fail,
``ok=1`` makes it pass again. ``READY_AFTER`` seconds: ``/readyz`` fails
until then; ``START_DELAY``: sleep before listening; ``FAIL_HEALTHZ_AFTER``:
``/healthz`` fails from then on; ``TERM_DELAY``: keep serving this long after
SIGTERM before exiting (0). Args ``--port N --host H`` override the env.
Each request is logged to stdout.

Deliberately minimal (``socketserver`` and a hand-written HTTP/1.1 reply
with ``Connection: close``; no ``http.server``, ``argparse`` or ``json`` at
start-up): a pod's process costs ~40 ms of CPU to start, so a hundred pods
starting at once don't swamp the control plane on a small machine.
"""

from __future__ import annotations

import os
import signal
import socketserver
import sys
import threading
import time

START = time.time()
STATE = {"healthz": True, "readyz": True, "hits": 0}
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _env_float(name: str, default: float = 0.0) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def respond(path: str) -> tuple[int, str, str]:
    """(status, body, content type) for a GET of ``path``."""
    route, _, query = path.partition("?")
    params = dict(kv.partition("=")[::2] for kv in query.split("&") if kv)
    pod = os.environ.get("POD_NAME") or os.uname().nodename
    up = time.time() - START
    if route == "/healthz":
        fail_after = _env_float("FAIL_HEALTHZ_AFTER")
        ok = STATE["healthz"] and not (fail_after > 0 and up >= fail_after)
        return (200, "ok\n", "text/plain") if ok else (503, "unhealthy\n", "text/plain")
    if route == "/readyz":
        ok = STATE["readyz"] and up >= _env_float("READY_AFTER")
        return (200, "ok\n", "text/plain") if ok else (503, "not ready\n", "text/plain")
    if route in ("/admin/healthz", "/admin/readyz"):
        key = route.rsplit("/", 1)[1]
        STATE[key] = params.get("ok", "1") not in ("0", "false", "no")
        return 200, f"{key}={'ok' if STATE[key] else 'failing'}\n", "text/plain"
    STATE["hits"] += 1
    if route == "/info":
        import json

        return (
            200,
            json.dumps(
                {
                    "pod": pod,
                    "namespace": os.environ.get("POD_NAMESPACE"),
                    "node": os.environ.get("NODE_NAME"),
                    "podIP": os.environ.get("POD_IP"),
                    "pid": os.getpid(),
                    "uptime": round(up, 3),
                    "hits": STATE["hits"],
                }
            )
            + "\n",
            "application/json",
        )
    msg = os.environ.get("MESSAGE")
    return 200, pod + (f" {msg}" if msg else "") + "\n", "text/plain"


class Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def handle(self) -> None:
        try:
            line = self.rfile.readline(8192).decode("latin-1").strip()
            while True:  # skip the headers
                h = self.rfile.readline(8192)
                if h in (b"\r\n", b"\n", b""):
                    break
        except OSError:
            return
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            code, body, ctype = 400, "bad request\n", "text/plain"
            method, path = "-", "-"
        else:
            method, path = parts[0], parts[1]
            if method in ("GET", "HEAD"):
                code, body, ctype = respond(path)
            else:
                code, body, ctype = 405, "method not allowed\n", "text/plain"
        data = body.encode()
        head = (
            f"HTTP/1.1 {code} {REASONS.get(code, '')}\r\nServer: raykube-web/1.0\r\n"
            f"Content-Type: {ctype}; charset=utf-8\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        try:
            self.wfile.write(head.encode() + (b"" if method == "HEAD" else data))
        except OSError:
            pass
        sys.stdout.write(f'{time.strftime("%H:%M:%S")} {self.client_address[0]} "{line}" {code} -\n')


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    port = int(os.environ.get("PORT") or 8080)
    host = os.environ.get("POD_IP") or "127.0.0.1"
    for i, a in enumerate(args):
        if a == "--port" and i + 1 < len(args):
            port = int(args[i + 1])
        elif a == "--host" and i + 1 < len(args):
            host = args[i + 1]
        elif a.startswith("--port="):
            port = int(a.split("=", 1)[1])
        elif a.startswith("--host="):
            host = a.split("=", 1)[1]
    delay = _env_float("START_DELAY")
    if delay > 0:
        print(f"starting in {delay:g} s", flush=True)
        time.sleep(delay)
    httpd = Server((host, port), Handler)

    def on_term(signum: int, frame: object) -> None:
        linger = _env_float("TERM_DELAY")
        print(f"received SIGTERM, shutting down{f' in {linger:g} s' if linger else ''}", flush=True)

        def stop() -> None:
            time.sleep(linger)
            httpd.shutdown()

        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    print(f"raykube/web {os.environ.get('POD_NAME', '')} serving on http://{host}:{port}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    print("bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
