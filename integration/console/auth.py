"""Signing in and out, who the request's user is, what they may see, and CSRF.

Every console request passes ``guard``: a form's CSRF token is checked first, then the user's
session, then the account of the URL (``/a/<account>/console/…``): an account the user may not
see, or one that is not served, is the same 404 page, so its existence is not revealed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from integration.config import RateLimit
from integration.console.blueprint import console
from integration.console.i18n import COOKIE, LANGUAGES, _
from integration.console.sessions import ConsoleSessions
from integration.keys import DEFAULT_ACCOUNT
from integration.ratelimit import RateLimiter
from integration.runtime import Runtime
from integration.timeutil import utc_now
from integration.users import User
from integration.web.errors import Problem
from integration.web.forms import client_key
from integration.web.state import ACCOUNT_ENVIRON, WebState, request_account, web

PUBLIC = {"console.sign_in", "console.static", "console.choose_language"}
FOR_EVERY_ROLE = {"console.sign_out"}  # the one form a viewer sends
# Sign-in attempts counted per email and per client address, in a quarter of an hour.
PER_EMAIL = RateLimit(10, 900)
PER_ADDRESS = RateLimit(50, 900)
PER_EMAIL_EVERYWHERE = RateLimit(100, 900)


def deployment() -> Runtime:
    return current_app.extensions["vats"]


def sessions() -> ConsoleSessions:
    return ConsoleSessions(deployment().redis)


def csrf_token() -> str:
    """The form token of this browser's session (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def current_user() -> User | None:
    """The signed-in user, or None (no session, or it has ended)."""
    if "user" not in g:
        g.user = None
        session_id = session.get("sid")
        if session_id:
            now = utc_now()
            found = sessions().get(session_id, now)
            g.user = deployment().users.signed_in(found.email, found.started_at) if found else None
            if g.user is None:
                session.pop("sid", None)
    return g.user


def account_state() -> WebState:
    """The request's account (its runtime and web state), checked by ``guard``."""
    return g.console_account


def prefixed() -> bool:
    return ACCOUNT_ENVIRON in request.environ


def console_url(account: str, endpoint: str = "console.overview", **values) -> str:
    """A console page of ``account`` (``/a/<account>/console/…``; ``default`` unprefixed)."""
    path = url_for(endpoint, **values)
    root = request.script_root
    if root:  # the current page's own /a/<account>
        path = path[len(root) :]
    return path if account == DEFAULT_ACCOUNT else f"/a/{account}{path}"


@console.before_request
def guard() -> ResponseReturnValue | None:
    if request.method == "POST" and not hmac.compare_digest(
        request.form.get("csrf_token", "").encode(), session.get("csrf", "-").encode()
    ):
        abort(400, "This form has expired or did not come from this console: reload the page and try again.")
    if request.endpoint in PUBLIC:
        return None
    user = current_user()
    if user is None:
        return redirect(url_for("console.sign_in", next=here() if request.method == "GET" else None), 303)
    account = request_account()
    if not user.sees(account):
        if request.endpoint == "console.overview" and not prefixed() and user.account:
            return redirect(console_url(user.account), 303)
        abort(404)
    try:
        g.console_account = web()
    except Problem:
        abort(404)
    if request.method == "POST" and not user.acts and request.endpoint not in FOR_EVERY_ROLE:
        abort(403, "Your role is viewer: it can read everything here but change nothing.")
    return None


def here() -> str:
    """This page's path and query, its account's prefix included (to come back to)."""
    return request.script_root + request.full_path


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (no scheme, host or control
    character: a header cannot be split by it)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not any(c < " " or c in "\\\x7f" for c in target)
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("console.overview")


def _limited(email: str) -> int:
    """Seconds to wait before another sign-in attempt (0: go ahead; counted). Guessing one
    user's password from one network stops after ``PER_EMAIL``; one network's guesses at anyone
    after ``PER_ADDRESS``; many networks' guesses at one user after ``PER_EMAIL_EVERYWHERE``
    (so locking a user out takes many networks)."""
    limiter = RateLimiter(deployment().redis, prefix="vats:console:signin:")
    who, where = hashlib.sha256(email.encode()).hexdigest()[:32], client_key()
    return limiter.hit(
        [
            (f"email:{who}:{where}", PER_EMAIL),
            (f"address:{where}", PER_ADDRESS),
            (f"email:{who}", PER_EMAIL_EVERYWHERE),
        ]
    )


@console.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if request.method == "GET":
        return render_template("console/sign_in.html", next=request.args.get("next", ""), email="", problem=None)
    email = request.form.get("email", "").strip().lower()[:254]
    password = request.form.get("password", "")
    audit = deployment().accounts.audit
    if not email or not password:
        problem, status = _("Enter your email and password."), 422
    elif wait := _limited(email):
        problem, status = _("Too many attempts: try again in %(minutes)s min.", minutes=max(1, wait // 60)), 429
    elif (user := deployment().users.authenticate(email, password)) is None:
        # Who tried is named only when that user exists: a password typed into the email field
        # must not end up in the audit log.
        known = deployment().users.get(email) is not None
        actor = email if known else "(unknown user)"
        audit.add(utc_now(), actor, None, "console.sign-in", f"from {client_key()}", "refused: wrong password")
        problem, status = _("Wrong email or password."), 401
    else:
        audit.add(utc_now(), user.email, user.account, "console.sign-in", f"from {client_key()}", "ok")
        if session.get("sid"):  # signing in again ends the session before
            sessions().end(session["sid"])
        session.clear()  # a new session id and CSRF token: nothing from before signing in carries over
        session["sid"] = sessions().start(user.email, utc_now())
        session.permanent = True
        return redirect(_safe_next(request.form.get("next")), 303)
    page = render_template("console/sign_in.html", next=request.form.get("next", ""), email=email, problem=problem)
    return page, status


@console.get("/language")
def choose_language():
    """The language switch: remembered a year in a cookie, then back to the page."""
    chosen = request.args.get("to", "")
    answer = redirect(_safe_next(request.args.get("next")), 303)
    if chosen in LANGUAGES:
        answer.set_cookie(COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True)
    return answer


@console.post("/sign-out")
def sign_out():
    session_id = session.get("sid")
    if session_id:
        sessions().end(session_id)
    session.clear()
    return redirect(url_for("console.sign_in"), 303)


@console.context_processor
def account_context() -> dict:
    """Pages of an account get it as ``account`` (its runtime, settings, zone)."""
    state = g.get("console_account")
    return {"account": state} if state is not None else {}
