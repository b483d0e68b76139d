# SPDX-License-Identifier: Apache-2.0
"""metav1.Status bodies, built the way k8s.io/apimachinery/pkg/api/errors
builds them (same messages, reasons, codes and details)."""

import json

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


def status_body(code, message, reason=None, details=None):
    """A metav1.Status failure, exactly as the apiserver writes it. reason ""
    leaves the field out (as for a Status without a reason)."""
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason or REASONS.get(code, ""), "code": code}
    if reason == "" or (reason is None and code not in REASONS):
        del st["reason"]
    if details is not None:
        st["details"] = {k: v for k, v in details.items() if v not in (None, "", [], 0)}
    return st


def success_body(code=None, details=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        st["details"] = {k: v for k, v in details.items() if v not in (None, "")}
    if code:
        st["code"] = code
    return st


class ApiError(Exception):
    """Raised by handlers: becomes a Status response. A Retry-After header
    goes out when details.retryAfterSeconds > 0, as ErrorNegotiated does."""

    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, reason, details)
        self.headers = dict(headers or {})
        ra = (self.body.get("details") or {}).get("retryAfterSeconds")
        if ra and "Retry-After" not in self.headers:
            self.headers["Retry-After"] = str(ra)


def qualified(group, resource):
    """schema.GroupResource.String(): "pods", "deployments.apps"."""
    return f"{resource}.{group}" if group else resource


def _gd(group, kind, name=None, **extra):
    d = {"name": name, "group": group, "kind": kind}
    d.update(extra)
    return d


def not_found(group, resource, name):
    return ApiError(404, f"{qualified(group, resource)} \"{name}\" not found", "NotFound",
                    _gd(group, resource, name))


def already_exists(group, resource, name):
    return ApiError(409, f"{qualified(group, resource)} \"{name}\" already exists",
                    "AlreadyExists", _gd(group, resource, name))


def conflict(group, resource, name, err):
    return ApiError(409, f"Operation cannot be fulfilled on {qualified(group, resource)} "
                         f"\"{name}\": {err}", "Conflict", _gd(group, resource, name))


def forbidden(group, resource, name, err):
    q = qualified(group, resource)
    msg = f"{q} \"{name}\" is forbidden: {err}" if name else f"{q} is forbidden: {err}"
    return ApiError(403, msg, "Forbidden", _gd(group, resource, name))


def bad_request(message):
    return ApiError(400, message, "BadRequest")


def too_many_requests(message, retry_after=0, causes=None):
    details = {"retryAfterSeconds": retry_after, "causes": causes}
    return ApiError(429, message, "TooManyRequests", details)


def internal_error(message):
    return ApiError(500, f"Internal error occurred: {message}", "InternalError",
                    {"causes": [{"message": message}]})


def method_not_allowed():
    return ApiError(405, "the server does not allow this method on the requested resource",
                    "MethodNotAllowed", {})


def path_not_found():
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def unsupported_media_type(accepted):
    return ApiError(415, "the body of the request was in an unknown format - accepted media "
                         f"types include: {', '.join(accepted)}", "UnsupportedMediaType")


# --- field errors (k8s.io/apimachinery/pkg/util/validation/field) ----------

_TYPES = {
    "required": ("Required value", "FieldValueRequired"),
    "invalid": ("Invalid value", "FieldValueInvalid"),
    "unsupported": ("Unsupported value", "FieldValueNotSupported"),
    "duplicate": ("Duplicate value", "FieldValueDuplicate"),
    "forbidden": ("Forbidden", "FieldValueForbidden"),
    "toolong": ("Too long", "FieldValueTooLong"),
}


def _value(v):
    if isinstance(v, str):
        return json.dumps(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


class FieldError:
    def __init__(self, etype, field, value=None, detail=""):
        self.type, self.field, self.value, self.detail = etype, field, value, detail

    def body(self):
        text, _ = _TYPES[self.type]
        s = text if self.type in ("required", "forbidden", "toolong") \
            else f"{text}: {_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self):
        return f"{self.field}: {self.body()}"

    def cause(self):
        return {"reason": _TYPES[self.type][1], "message": self.body(), "field": self.field}


def required(field, detail=""):
    return FieldError("required", field, None, detail)


def invalid_value(field, value, detail):
    return FieldError("invalid", field, value, detail)


def unsupported(field, value, supported):
    return FieldError("unsupported", field, value,
                      "supported values: " + ", ".join(json.dumps(s) for s in supported))


def forbidden_field(field, detail):
    return FieldError("forbidden", field, None, detail)


def duplicate(field, value, detail=""):
    return FieldError("duplicate", field, value, detail)


def invalid(group, kind, name, errs):
    """errors.NewInvalid(schema.GroupKind{group, kind}, name, errs)."""
    gk = f"{kind}.{group}" if group else kind
    if len(errs) == 1:
        agg = str(errs[0])
    else:
        agg = "[" + ", ".join(str(e) for e in errs) + "]"
    msg = f"{gk} \"{name}\" is invalid: {agg}" if errs else f"{gk} \"{name}\" is invalid"
    return ApiError(422, msg, "Invalid",
                    {"name": name, "group": group, "kind": kind,
                     "causes": [e.cause() for e in errs]})
