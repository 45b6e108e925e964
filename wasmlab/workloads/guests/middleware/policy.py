"""The middleware's policy in plain Python: what every guest build must decide.

Imported by the componentize-py guest (``app.py``) and by the host, which computes each
request's expected action from it, so a guest that skips work or decides differently is caught.
Both guests (this one compiled with CPython inside, and the hand-written ``middleware.wat``)
implement the same rules:

* on-request: a path under ``/v1`` needs header ``x-api-key: let-me-in`` (name matched without
  regard to ASCII case) or is rejected with 401; every other request continues with
  ``x-request-id`` set to the FNV-1a 64 hash of method, path and body (16 hex digits) and
  ``x-api-key`` removed, so the key never reaches the upstream.
* on-response: a 500 becomes a 503; anything else continues.
"""

API_KEY_HEADER = "x-api-key"
API_KEY = "let-me-in"
PROTECTED_PREFIX = "/v1"
REQUEST_ID_HEADER = "x-request-id"

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def request_id(method: str, path: str, body: bytes) -> str:
    """FNV-1a 64 over the method, path and body bytes, as 16 lowercase hex digits."""
    h = _FNV_OFFSET
    for part in (method.encode(), path.encode(), bytes(body)):
        for byte in part:
            h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return f"{h:016x}"


def protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def authorized(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == API_KEY_HEADER and value == API_KEY for name, value in headers)


def on_request(method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple:
    """``("continue",)``, ``("reject", status)`` or ``("modify", set_headers, remove_headers, status)``."""
    if protected(path) and not authorized(headers):
        return ("reject", 401)
    return ("modify", [(REQUEST_ID_HEADER, request_id(method, path, body))], [API_KEY_HEADER], None)


def on_response(status: int, headers: list[tuple[str, str]], body: bytes) -> tuple:
    if status == 500:
        return ("modify", [], [], 503)
    return ("continue",)
