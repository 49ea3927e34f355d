"""Browser-facing hardening: a CSRF proof for cookie-authenticated writes, security headers on every answer.

CSRF is a signed double-submit: login, register, refresh and switch-project set a readable
`csrf_token` cookie next to the HttpOnly access cookie. A POST, PUT, PATCH or DELETE that is
authenticated by the access cookie must repeat that value in `X-CSRF-Token`; the value must
match the cookie and carry an HMAC binding it to the caller's session, so a token planted from
elsewhere (or left over from another session) does not pass. A page of another origin can
neither read the cookie nor send the header. Requests with `Authorization: Bearer` carry no
ambient credential and are exempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.datastructures import Cookie

from copilot.domain import ForbiddenError

__all__ = [
    "API_CSP",
    "COMMON_HEADERS",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SecurityHeaders",
    "csrf_cookie",
    "new_csrf_token",
    "require_csrf_proof",
]

CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _mac(secret_key: str, session_id: UUID, nonce: str) -> str:
    digest = hmac.new(secret_key.encode(), f"csrf|{session_id}|{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_csrf_token(secret_key: str, session_id: UUID) -> str:
    """`<nonce>.<HMAC(session, nonce)>`: fresh at every login and refresh, valid for the session."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_mac(secret_key, session_id, nonce)}"


def csrf_cookie(token: str, *, max_age: int, secure: bool) -> Cookie:
    # Readable by the page's script (not HttpOnly): it has to copy the value into the header.
    return Cookie(key=CSRF_COOKIE, value=token, max_age=max_age, httponly=False, samesite="lax", secure=secure,
                  path="/")


def _bearer(request: Request[Any, Any, Any]) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def require_csrf_proof(request: Request[Any, Any, Any], secret_key: str, session_id: UUID) -> None:
    """Refuse (403) a cookie-authenticated unsafe request without a valid proof; anything else passes."""
    if request.method not in UNSAFE_METHODS or _bearer(request):
        return
    sent = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not sent:
        raise ForbiddenError(f"CSRF check failed: a request authenticated by cookie must send the {CSRF_HEADER} "
                             f"header with the value of the {CSRF_COOKIE} cookie")
    nonce, _, mac = sent.partition(".")
    # Both comparisons in constant time; both always run, so timing does not tell which one failed.
    matches_cookie = hmac.compare_digest(sent.encode(), cookie.encode())
    signed_for_session = hmac.compare_digest(mac.encode(), _mac(secret_key, session_id, nonce).encode())
    if not (matches_cookie and signed_for_session):
        raise ForbiddenError(f"CSRF check failed: the {CSRF_HEADER} header does not match this session's "
                             f"{CSRF_COOKIE} cookie; sign in again")


# -- headers ------------------------------------------------------------------------------------

# The API answers JSON only: nothing may load, run, frame or submit anything from it.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc are pages: their bundles come from these CDNs, they run an inline script with
# the schema, ReDoc uses Google Fonts and a blob: worker. Still never framed, never posting forms.
DOCS_CSP = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://cdn.redoc.ly; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://cdn.jsdelivr.net https://cdn.redoc.ly; "
    "worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PREFIXES = ("/docs", "/redoc")
# On every answer of every port (the API's and the gateway's), with a content-security-policy.
COMMON_HEADERS = (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"),
                  ("referrer-policy", "no-referrer"), ("cross-origin-opener-policy", "same-origin"))
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """A before-send hook: runs for every answer of the app, matched route or not, error or not.

    A header the handler set itself is left alone.
    """

    def __init__(self, *, hsts: bool = False) -> None:
        common = [(name.encode(), value.encode()) for name, value in COMMON_HEADERS]
        if hsts:  # only meaningful (and only safe to promise) when the site is served over TLS
            common.append((b"strict-transport-security", HSTS.encode()))
        self._api = [*common, (b"content-security-policy", API_CSP.encode())]
        self._docs = [*common, (b"content-security-policy", DOCS_CSP.encode())]
        self._no_store = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]

    async def __call__(self, message: Any, scope: Any) -> None:
        if message["type"] != "http.response.start":
            return
        path: str = scope.get("path", "")
        extra = self._docs if path.startswith(DOCS_PREFIXES) else self._api
        if path.startswith("/api/"):  # tokens and tenants' data: never kept by a browser or a proxy
            extra = [*extra, *self._no_store]
        headers = list(message.get("headers") or [])
        present = {name.lower() for name, _ in headers}
        headers.extend((name, value) for name, value in extra if name not in present)
        message["headers"] = headers
