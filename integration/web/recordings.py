"""``GET /recordings/<id>.mp3?sig=…``: stored recordings behind signed links, with HTTP Range."""

from __future__ import annotations

import time

from flask import Blueprint, request, send_file
from werkzeug.http import parse_range_header

from integration.web.errors import Problem
from integration.web.state import web

recordings = Blueprint("recordings", __name__)


@recordings.get("/recordings/<recording_id>.mp3")
def serve_recording(recording_id: str):
    """The mp3 (206 for Range requests, ETag = sha256). 403 for a missing or bad signature,
    whether or not the id exists; 404 for a correctly signed link to a recording that is gone."""
    runtime = web().runtime
    if not runtime.links.verify(recording_id, request.args.get("sig"), request.args.get("exp"), time.time()):
        raise Problem(403, "Forbidden", "the link's signature is missing, wrong or expired")
    stored = web().stored_recording(recording_id)
    path = runtime.recording_store.local_path(stored[0]) if stored else None
    if stored is None or path is None:
        raise Problem(404, "Not Found", "this recording is not stored (any more)")
    range_header = parse_range_header(request.headers.get("Range"))
    if range_header is None or range_header.units != "bytes":
        # RFC 9110 §14.2: a Range a server cannot read is ignored (the whole file, 200), not 416.
        request.environ.pop("HTTP_RANGE", None)
    response = send_file(
        path,
        mimetype="audio/mpeg",
        conditional=True,
        etag=stored[1],
        download_name=f"{recording_id}.mp3",
        max_age=86400,
    )
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response
