"""The sandbox over HTTP: the operator's ``/api/v1/…`` methods, each routed to a contract by its token,
and the ``/_sandbox/…`` control API."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime, timedelta

from flask import Blueprint, Flask, Response, g, jsonify, request

from integration.sandbox.data import RecordingSpec
from integration.sandbox.state import (
    DEFAULT_CONTRACT,
    Contract,
    ContractConflict,
    Fault,
    Sandbox,
    SandboxError,
    UnknownContract,
)

B64_CHUNK = 3 * 64 * 1024  # a multiple of 3: base64 pieces concatenate without padding
Handler = Callable[[Contract, str], Response]


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json", headers=headers)


def _error(status: int, code: int, message: str, headers: dict | None = None) -> Response:
    return _json({"error": {"errorMessage": message, "errorCode": code}, "result": None}, status, headers)


def _bearer_text() -> str:
    """The bearer token, or "" when there is none."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def _bearer() -> str:
    token = _bearer_text()
    if not token:
        raise SandboxError(401, 401, "missing bearer token")
    return token


def _recording_stream(contract: Contract, spec: RecordingSpec, request_hash: str) -> Iterator[bytes]:
    head = {
        "error": {"errorMessage": "", "errorCode": 0},
        "result": {
            "file_NAME": f"{spec.id}.mp3",
            "apiName": "getcallrecordfile",
            "apiVersion": 1,
            "callTime": contract.local(contract.now()),
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

    def recording_response(contract: Contract, spec: RecordingSpec) -> Response:
        request_hash = contract.envelope("getcallrecordfile", {}, store=False)["result"]["requestHash"]
        with contract.lock:
            contract.results[request_hash] = ("getcallrecordfile", {"recordFileId": spec.id})
        return Response(_recording_stream(contract, spec, request_hash), mimetype="application/json")

    def by_hash(contract: Contract) -> Response:
        api_name, body = contract.result_by_hash(request.args.get("requestHash", ""))
        if api_name == "getcallrecordfile":
            return recording_response(contract, contract.recording(body["recordFileId"]))
        return _json(body)

    def api(authorized: bool = True) -> Callable:
        def wrap(work: Handler) -> Handler:
            def run(contract: Contract, bearer: str) -> Response:
                if authorized:
                    contract.authorize(bearer)
                return work(contract, bearer)

            return run

        return wrap

    methods: dict[str, tuple[str, Handler]] = {
        "auth/integrationapi/create": ("GET", api(False)(lambda c, bearer: _json(c.create_pair(bearer)))),
        "auth/integrationapi/refresh": ("GET", api(False)(lambda c, bearer: _json(c.refresh_pair(bearer)))),
        "callback/create": (
            "GET",
            api()(
                lambda c, _: _json(
                    c.create_callback(request.args.get("PhoneTo"), request.args.get("PhoneFrom"), g.received_at)
                )
            ),
        ),
        "request/getcalllist": ("POST", api()(lambda c, _: _json(c.call_list(request.get_json(silent=True))))),
        "request/getcallrecordfile": (
            "GET",
            api()(lambda c, _: recording_response(c, c.recording(request.args.get("recordFileId")))),
        ),
        "request/getrequestresultbyhash": ("GET", api()(lambda c, _: by_hash(c))),
        "Vats/settings/get": ("POST", api()(lambda c, _: _json(c.get_settings(request.get_json(silent=True))))),
        "Vats/settings/set": ("POST", api()(lambda c, _: _json(c.set_settings(request.get_json(silent=True))))),
    }

    @app.route("/api/v1/<path:method>", methods=["GET", "POST"])
    def operator_method(method: str) -> Response:
        g.received_at = sandbox.now()
        if method not in methods or methods[method][0] != request.method:
            return _error(404, 404, "no such method")
        contract = sandbox.route(_bearer_text())
        contract.count(method)
        handler = methods[method][1]
        fault = contract.take_fault(method)
        try:
            response = (
                handler(contract, _bearer())
                if fault is None
                else _with_fault(fault, lambda: handler(contract, _bearer()))
            )
        except SandboxError as exc:
            response = _error(exc.status, exc.code, exc.message)
        contract.count(f"{method} {response.status_code}")
        return response

    # -- control API: the whole sandbox --

    @app.post("/_sandbox/reset")
    def reset() -> Response:
        sandbox.reset()
        return jsonify(authorization_token=sandbox.default.authorization_token)

    @app.post("/_sandbox/clock")
    def clock() -> Response:
        body = request.get_json(force=True)
        with sandbox.lock:
            sandbox.clock.offset += float(body.get("shift", 0))
        return jsonify(now=sandbox.now().isoformat())

    @app.route("/_sandbox/contracts", methods=["GET", "POST"])
    def contracts() -> Response:
        if request.method == "GET":
            tokens = request.args.get("tokens") in ("1", "true")
            with sandbox.lock:
                listed = list(sandbox.contracts.values())
            return jsonify([c.summary(tokens) for c in listed])
        body = request.get_json(force=True)
        seed = None if body.get("seed") is None else int(body["seed"])
        number_count, calls, days = (
            int(body.get("number_count", 1)),
            int(body.get("calls", 0)),
            float(body.get("days", 7)),
        )
        if "count" in body:
            made = sandbox.create_contracts(int(body["count"]), seed, number_count, calls, days)
            return _json({"contracts": [c.summary() for c in made]}, 201)
        contract = sandbox.create_contract(
            body.get("id"), body.get("numbers"), number_count, body.get("contract"), seed, calls, days
        )
        return _json(contract.summary(), 201)

    @app.delete("/_sandbox/contracts/<contract_id>")
    def remove_contract(contract_id: str) -> Response:
        sandbox.remove_contract(contract_id)
        return jsonify(removed=contract_id)

    @app.post("/_sandbox/contracts/<contract_id>/reset")
    def reset_contract(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        contract.reset()
        return jsonify(authorization_token=contract.authorization_token)

    # -- control API: one contract, the default one at /_sandbox/…, any at /_sandbox/contracts/<id>/… --

    control = _contract_control(sandbox)
    app.register_blueprint(control, url_prefix="/_sandbox", url_defaults={"contract_id": DEFAULT_CONTRACT})
    app.register_blueprint(control, url_prefix="/_sandbox/contracts/<contract_id>", name="contracts")

    @app.errorhandler(UnknownContract)
    def unknown_contract(exc: UnknownContract) -> Response:
        return _json({"error": str(exc)}, 404)

    @app.errorhandler(ContractConflict)
    def conflict(exc: ContractConflict) -> Response:
        return _json({"error": str(exc)}, 409)

    @app.errorhandler(TypeError)
    @app.errorhandler(ValueError)
    @app.errorhandler(KeyError)
    def bad_control_request(exc: Exception) -> Response:
        return _json({"error": f"bad control request: {exc}"}, 400)

    return app


def _contract_control(sandbox: Sandbox) -> Blueprint:
    """The control routes of one contract; each view takes the contract's id."""
    control = Blueprint("control", __name__)

    @control.get("/state")
    def state(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        return jsonify(
            id=contract.id,
            numbers=list(contract.config.numbers),
            contract=contract.config.contract,
            timezone=contract.config.timezone,
            now=contract.now().isoformat(),
            enabled=contract.enabled,
            generation=contract.generation,
            authorization_token=contract.authorization_token,
            access_ttl=contract.access_ttl,
            refresh_ttl=contract.refresh_ttl,
        )

    @control.post("/switch")
    def switch(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        contract.enabled = bool(request.get_json(force=True).get("enabled", True))
        return jsonify(enabled=contract.enabled)

    @control.post("/token-lifetimes")
    def lifetimes(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        body = request.get_json(force=True)
        with contract.lock:
            contract.access_ttl = float(body.get("access", contract.access_ttl))
            contract.refresh_ttl = float(body.get("refresh", contract.refresh_ttl))
        return jsonify(access_ttl=contract.access_ttl, refresh_ttl=contract.refresh_ttl)

    @control.post("/tokens/invalidate")
    def invalidate(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        contract.invalidate_pair()
        return jsonify(generation=contract.generation)

    @control.post("/authorization-token/rotate")
    def rotate(contract_id: str) -> Response:
        return jsonify(authorization_token=sandbox.contract(contract_id).rotate_authorization_token())

    @control.post("/authorization-token/revoke")
    def revoke(contract_id: str) -> Response:
        sandbox.contract(contract_id).revoke_authorization_token()
        return jsonify(revoked=True)

    @control.route("/callbacks", methods=["GET", "DELETE"])
    def callbacks(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        with contract.lock:
            if request.method == "DELETE":
                contract.callbacks.clear()
            return jsonify(list(contract.callbacks))

    @control.get("/calls")
    def calls(contract_id: str) -> Response:
        return jsonify(sandbox.contract(contract_id).canonical_calls())

    @control.post("/calls/generate")
    def generate(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        body = request.get_json(force=True)
        now = contract.now()
        since = (
            datetime.fromisoformat(body["since"])
            if body.get("since")
            else now - timedelta(days=float(body.get("days", 7)))
        )
        until = datetime.fromisoformat(body["until"]) if body.get("until") else now
        made = contract.add_calls(
            int(body.get("count", 10)),
            since,
            until,
            body.get("nums"),
            float(body.get("recording_ratio", 0.4)),
            int(body.get("recording_size", 32 * 1024)),
            body.get("seed"),
        )
        return jsonify(count=len(made), first_id=made[0].id if made else None)

    @control.post("/recordings")
    def add_recording(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        body = request.get_json(force=True)
        spec = contract.add_recording(
            int(body.get("size", 64 * 1024)), float(body.get("ready_in", 0)), body.get("seed")
        )
        return jsonify(id=spec.id, size=spec.size, sha256=spec.sha256)

    @control.route("/faults", methods=["GET", "POST", "DELETE"])
    def faults(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        with contract.lock:
            if request.method == "POST":
                contract.faults.append(Fault(**request.get_json(force=True)))
            elif request.method == "DELETE":
                contract.faults.clear()
            return jsonify([asdict(f) for f in contract.faults])

    @control.route("/stats", methods=["GET", "DELETE"])
    def stats(contract_id: str) -> Response:
        contract = sandbox.contract(contract_id)
        with contract.lock:
            if request.method == "DELETE":
                contract.stats.clear()
            return jsonify(dict(contract.stats))

    return control


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
