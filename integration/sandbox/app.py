"""The sandbox over HTTP: the operator's ``/api/v1/…`` methods and the ``/_sandbox/…`` control API."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timedelta

from flask import Flask, Response, g, jsonify, request

from integration.sandbox.data import RecordingSpec
from integration.sandbox.state import Fault, Sandbox, SandboxError

B64_CHUNK = 3 * 64 * 1024  # a multiple of 3: base64 pieces concatenate without padding


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json", headers=headers)


def _error(status: int, code: int, message: str, headers: dict | None = None) -> Response:
    return _json({"error": {"errorMessage": message, "errorCode": code}, "result": None}, status, headers)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise SandboxError(401, 401, "missing bearer token")
    return header[7:].strip()


def _recording_stream(sandbox: Sandbox, spec: RecordingSpec, request_hash: str) -> Iterator[bytes]:
    head = {
        "error": {"errorMessage": "", "errorCode": 0},
        "result": {
            "file_NAME": f"{spec.id}.mp3",
            "apiName": "getcallrecordfile",
            "apiVersion": 1,
            "callTime": sandbox.local(sandbox.now()),
            "responseDuration": "0.100",
            "code": 0,
            "requestHash": request_hash,
            "fileContent": "@",
        },
    }
    prefix, suffix = json.dumps(head).split('"@"')
    yield (prefix + '"').encode()
    carry = b""
    for chunk in spec.chunks():
        carry += chunk
        usable = len(carry) - len(carry) % 3
        for offset in range(0, usable, B64_CHUNK):
            yield base64.b64encode(carry[offset : min(offset + B64_CHUNK, usable)])
        carry = carry[usable:]
    yield base64.b64encode(carry) + b'"' + suffix.encode()


def create_sandbox_app(sandbox: Sandbox) -> Flask:
    app = Flask("integration.sandbox")

    def recording_response(spec: RecordingSpec) -> Response:
        request_hash = sandbox.envelope("getcallrecordfile", {}, store=False)["result"]["requestHash"]
        with sandbox.lock:
            sandbox.results[request_hash] = ("getcallrecordfile", {"recordFileId": spec.id})
        return Response(_recording_stream(sandbox, spec, request_hash), mimetype="application/json")

    def by_hash() -> Response:
        api_name, body = sandbox.result_by_hash(request.args.get("requestHash", ""))
        if api_name == "getcallrecordfile":
            return recording_response(sandbox.recording(body["recordFileId"]))
        return _json(body)

    def api(authorized: bool = True) -> Callable:
        def wrap(work: Callable[[str], Response]) -> Callable[[str], Response]:
            def run(bearer: str) -> Response:
                if authorized:
                    sandbox.authorize(bearer)
                return work(bearer)

            return run

        return wrap

    methods: dict[str, tuple[str, Callable[[str], Response]]] = {
        "auth/integrationapi/create": ("GET", api(False)(lambda bearer: _json(sandbox.create_pair(bearer)))),
        "auth/integrationapi/refresh": ("GET", api(False)(lambda bearer: _json(sandbox.refresh_pair(bearer)))),
        "callback/create": (
            "GET",
            api()(
                lambda _: _json(
                    sandbox.create_callback(request.args.get("PhoneTo"), request.args.get("PhoneFrom"), g.received_at)
                )
            ),
        ),
        "request/getcalllist": ("POST", api()(lambda _: _json(sandbox.call_list(request.get_json(silent=True))))),
        "request/getcallrecordfile": (
            "GET",
            api()(lambda _: recording_response(sandbox.recording(request.args.get("recordFileId")))),
        ),
        "request/getrequestresultbyhash": ("GET", api()(lambda _: by_hash())),
        "Vats/settings/get": ("POST", api()(lambda _: _json(sandbox.get_settings(request.get_json(silent=True))))),
        "Vats/settings/set": ("POST", api()(lambda _: _json(sandbox.set_settings(request.get_json(silent=True))))),
    }

    @app.route("/api/v1/<path:method>", methods=["GET", "POST"])
    def operator_method(method: str) -> Response:
        g.received_at = sandbox.now()
        if method not in methods or methods[method][0] != request.method:
            return _error(404, 404, "no such method")
        sandbox.stats[method] += 1
        handler = methods[method][1]
        fault = sandbox.take_fault(method)
        try:
            response = handler(_bearer()) if fault is None else _with_fault(fault, lambda: handler(_bearer()))
        except SandboxError as exc:
            response = _error(exc.status, exc.code, exc.message)
        sandbox.stats[f"{method} {response.status_code}"] += 1
        return response

    # -- control API --

    @app.get("/_sandbox/state")
    def state() -> Response:
        return jsonify(
            numbers=list(sandbox.config.numbers),
            contract=sandbox.config.contract,
            timezone=sandbox.config.timezone,
            now=sandbox.now().isoformat(),
            enabled=sandbox.enabled,
            generation=sandbox.generation,
            authorization_token=sandbox.authorization_token,
            access_ttl=sandbox.access_ttl,
            refresh_ttl=sandbox.refresh_ttl,
        )

    @app.post("/_sandbox/reset")
    def reset() -> Response:
        sandbox.reset()
        return jsonify(authorization_token=sandbox.authorization_token)

    @app.post("/_sandbox/clock")
    def clock() -> Response:
        body = request.get_json(force=True)
        with sandbox.lock:
            sandbox.clock_offset += float(body.get("shift", 0))
        return jsonify(now=sandbox.now().isoformat())

    @app.post("/_sandbox/switch")
    def switch() -> Response:
        sandbox.enabled = bool(request.get_json(force=True).get("enabled", True))
        return jsonify(enabled=sandbox.enabled)

    @app.post("/_sandbox/token-lifetimes")
    def lifetimes() -> Response:
        body = request.get_json(force=True)
        with sandbox.lock:
            sandbox.access_ttl = float(body.get("access", sandbox.access_ttl))
            sandbox.refresh_ttl = float(body.get("refresh", sandbox.refresh_ttl))
        return jsonify(access_ttl=sandbox.access_ttl, refresh_ttl=sandbox.refresh_ttl)

    @app.post("/_sandbox/tokens/invalidate")
    def invalidate() -> Response:
        sandbox.invalidate_pair()
        return jsonify(generation=sandbox.generation)

    @app.post("/_sandbox/authorization-token/rotate")
    def rotate() -> Response:
        return jsonify(authorization_token=sandbox.rotate_authorization_token())

    @app.post("/_sandbox/authorization-token/revoke")
    def revoke() -> Response:
        sandbox.revoke_authorization_token()
        return jsonify(revoked=True)

    @app.route("/_sandbox/callbacks", methods=["GET", "DELETE"])
    def callbacks() -> Response:
        with sandbox.lock:
            if request.method == "DELETE":
                sandbox.callbacks.clear()
            return jsonify(list(sandbox.callbacks))

    @app.route("/_sandbox/calls", methods=["GET"])
    def calls() -> Response:
        return jsonify(sandbox.canonical_calls())

    @app.post("/_sandbox/calls/generate")
    def generate() -> Response:
        body = request.get_json(force=True)
        now = sandbox.now()
        since = (
            datetime.fromisoformat(body["since"])
            if body.get("since")
            else now - timedelta(days=float(body.get("days", 7)))
        )
        until = datetime.fromisoformat(body["until"]) if body.get("until") else now
        made = sandbox.add_calls(
            int(body.get("count", 10)),
            since,
            until,
            body.get("nums"),
            float(body.get("recording_ratio", 0.4)),
            int(body.get("recording_size", 32 * 1024)),
            body.get("seed"),
        )
        return jsonify(count=len(made), first_id=made[0].id if made else None)

    @app.post("/_sandbox/recordings")
    def add_recording() -> Response:
        body = request.get_json(force=True)
        spec = sandbox.add_recording(int(body.get("size", 64 * 1024)), float(body.get("ready_in", 0)), body.get("seed"))
        return jsonify(id=spec.id, size=spec.size, sha256=spec.sha256)

    @app.route("/_sandbox/faults", methods=["GET", "POST", "DELETE"])
    def faults() -> Response:
        with sandbox.lock:
            if request.method == "POST":
                sandbox.faults.append(Fault(**request.get_json(force=True)))
            elif request.method == "DELETE":
                sandbox.faults.clear()
            return jsonify([asdict(f) for f in sandbox.faults])

    @app.route("/_sandbox/stats", methods=["GET", "DELETE"])
    def stats() -> Response:
        with sandbox.lock:
            if request.method == "DELETE":
                sandbox.stats.clear()
            return jsonify(dict(sandbox.stats))

    @app.errorhandler(TypeError)
    @app.errorhandler(ValueError)
    @app.errorhandler(KeyError)
    def bad_control_request(exc: Exception) -> Response:
        return _json({"error": f"bad control request: {exc}"}, 400)

    return app


def _with_fault(fault: Fault, work: Callable[[], Response]) -> Response:
    """Answer ``work`` through an injected fault."""
    if fault.kind == "500":
        return _error(500, 500, "internal error")
    if fault.kind == "html502":
        return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, mimetype="text/html")
    if fault.kind == "html200":
        return Response("<html><body>Maintenance</body></html>", 200, mimetype="text/html")
    if fault.kind == "empty":
        return Response(b"", 200, mimetype="application/json")
    if fault.kind == "429":
        return _error(429, 429, "too many requests", {"Retry-After": f"{fault.retry_after:g}"})
    if fault.kind == "timeout":
        response = work() if fault.after_effect else _error(504, 504, "gateway timeout")
        time.sleep(fault.delay)
        return response
    if fault.kind == "drop":
        if fault.after_effect:
            work()
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        return Response(b"", 500)
    raise SandboxError(500, 500, f"unknown fault kind {fault.kind}")
