# SPDX-License-Identifier: Apache-2.0
"""The three PATCH flavours the apiserver applies to built-in types:

  application/merge-patch+json            RFC 7386 (null deletes a key)
  application/strategic-merge-patch+json  merge, plus list merge keys and
                                          $patch / $retainKeys /
                                          $deleteFromPrimitiveList directives
  application/json-patch+json             RFC 6902 (add, remove, replace,
                                          move, copy, test)

Errors are PatchError(code, message) with the status the real server
answers: 400 for an undecodable patch, 422 for one that does not apply."""

import copy
import json

MAX_JSON_PATCH_OPS = 10000


class PatchError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _load(body):
    try:
        return json.loads(body)
    except ValueError as e:
        raise PatchError(400, f"invalid character in patch: {e}")


# --- RFC 7386 ------------------------------------------------------------------

def _merge(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def merge_patch(obj, body):
    try:
        patch = json.loads(body)
    except ValueError:
        raise PatchError(400, "Invalid JSON Patch")
    return _merge(obj, patch)


# --- strategic merge patch -------------------------------------------------------

# Lists that merge by key instead of being replaced (patchStrategy:"merge"
# patchMergeKey:...) in the types this fake serves; "*" is any list element.
MERGE_KEYS = {
    ("metadata", "ownerReferences"): "uid",
    ("spec", "containers"): "name",
    ("spec", "initContainers"): "name",
    ("spec", "ephemeralContainers"): "name",
    ("spec", "volumes"): "name",
    ("spec", "containers", "*", "env"): "name",
    ("spec", "containers", "*", "ports"): "containerPort",
    ("spec", "containers", "*", "volumeMounts"): "mountPath",
    ("spec", "template", "spec", "containers"): "name",
    ("spec", "template", "spec", "initContainers"): "name",
    ("spec", "template", "spec", "volumes"): "name",
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
}
# Primitive lists with patchStrategy "merge" (a union).
PRIMITIVE_MERGE = {("metadata", "finalizers")}

DIRECTIVE = "$patch"
RETAIN = "$retainKeys"
DEL_PRIMITIVE = "$deleteFromPrimitiveList/"
ORDER = "$setElementOrder/"


def _smp_map(orig, patch, path):
    if not isinstance(orig, dict):
        orig = {}
    directive = patch.get(DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != DIRECTIVE}
    if directive not in (None, "merge"):
        raise PatchError(400, f"Unknown patch type: {directive}")
    out = dict(orig)
    retain = patch.get(RETAIN)
    for k, v in patch.items():
        if k in (DIRECTIVE, RETAIN) or k.startswith(ORDER):
            continue
        if k.startswith(DEL_PRIMITIVE):
            key = k[len(DEL_PRIMITIVE):]
            if isinstance(out.get(key), list) and isinstance(v, list):
                out[key] = [x for x in out[key] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
            continue
        sub = path + (k,)
        if isinstance(v, dict):
            merged = _smp_map(out.get(k), v, sub)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k), v, sub)
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _schema_key(path, table):
    for pattern in table:
        if len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path)):
            return pattern
    return None


def _smp_list(orig, patch, path):
    orig = orig if isinstance(orig, list) else []
    pat = _schema_key(path, MERGE_KEYS)
    if pat is not None:
        key = MERGE_KEYS[pat]
        if any(isinstance(x, dict) and x.get(DIRECTIVE) == "replace" for x in patch):
            return [copy.deepcopy(x) for x in patch
                    if not (isinstance(x, dict) and DIRECTIVE in x)]
        out = [copy.deepcopy(x) for x in orig]
        for item in patch:
            if not isinstance(item, dict):
                raise PatchError(400, f"found non-map element in a list with merge key "
                                      f"{key}: {item!r}")
            if key not in item:
                raise PatchError(400, f"map: {item} does not contain declared merge key: {key}")
            idx = next((i for i, x in enumerate(out)
                        if isinstance(x, dict) and x.get(key) == item[key]), None)
            if item.get(DIRECTIVE) == "delete":
                if idx is not None:
                    del out[idx]
                continue
            if idx is None:
                out.append(_smp_map({}, item, path + ("*",)))
            else:
                out[idx] = _smp_map(out[idx], item, path + ("*",))
        return out
    if _schema_key(path, PRIMITIVE_MERGE) is not None:
        out = list(orig)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    return copy.deepcopy(patch)


def strategic_merge_patch(obj, body):
    patch = _load(body)
    if not isinstance(patch, dict):
        raise PatchError(400, "json: cannot unmarshal %s into Go value of type "
                              "map[string]interface {}" % type(patch).__name__)
    out = _smp_map(obj, patch, ())
    return out if out is not None else {}


# --- RFC 6902 --------------------------------------------------------------------

def _pointer(path):
    if not isinstance(path, str):
        raise PatchError(422, "path must be a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(422, f"JSON pointer must be empty or start with a \"/\": {path}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container, token, path, allow_end=False):
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(422, f"invalid array index {token!r} in {path}")
    i = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if i > limit:
        raise PatchError(422, f"index out of range in {path}")
    return i


def _parent(doc, parts, op, path):
    cur = doc
    for tok in parts[:-1]:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, path)]
        else:
            raise PatchError(422, f"{op} operation does not apply: doc is missing path: "
                                  f"\"{path}\": missing value")
    return cur


def _get(doc, path, op):
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, op, path)
    tok = parts[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(422, f"{op} operation does not apply: doc is missing path: "
                                  f"\"{path}\": missing value")
        return parent[tok]
    if isinstance(parent, list):
        return parent[_index(parent, tok, path)]
    raise PatchError(422, f"{op} operation does not apply: doc is missing path: \"{path}\"")


def _add(doc, path, value):
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _parent(doc, parts, "add", path)
    tok = parts[-1]
    if isinstance(parent, dict):
        parent[tok] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, tok, path, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(422, f"add operation does not apply: doc is missing path: \"{path}\"")
    return doc


def _remove(doc, path, op="remove"):
    parts = _pointer(path)
    if not parts:
        raise PatchError(422, f"{op} operation does not apply: cannot remove the document root")
    parent = _parent(doc, parts, op, path)
    tok = parts[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise PatchError(422, f"{op} operation does not apply: doc is missing path: "
                                  f"\"{path}\": missing value")
        return parent.pop(tok)
    if isinstance(parent, list):
        return parent.pop(_index(parent, tok, path))
    raise PatchError(422, f"{op} operation does not apply: doc is missing path: \"{path}\"")


def json_equal(a, b):
    """JSON equality: 1 == 1.0, but true != 1 (Python's bool is an int)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def json_patch(obj, body):
    ops = _load(body)
    if not isinstance(ops, list):
        raise PatchError(400, "json: cannot unmarshal %s into Go value of type jsonpatch.Patch"
                         % ("object" if isinstance(ops, dict) else type(ops).__name__))
    if len(ops) > MAX_JSON_PATCH_OPS:
        raise PatchError(413, f"The allowed maximum operations in a JSON patch is "
                              f"{MAX_JSON_PATCH_OPS}, got {len(ops)}")
    doc = copy.deepcopy(obj)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError(400, "json: cannot unmarshal %s into Go value of type "
                                  "jsonpatch.Operation" % type(op).__name__)
        kind, path = op.get("op"), op.get("path")
        if kind == "add":
            if "value" not in op:
                raise PatchError(422, "add operation does not apply: missing value")
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError(422, "replace operation does not apply: missing value")
            parts = _pointer(path)
            if not parts:
                doc = copy.deepcopy(op["value"])
                continue
            parent = _parent(doc, parts, "replace", path)
            tok = parts[-1]
            if isinstance(parent, dict):
                if tok not in parent:
                    raise PatchError(422, f"replace operation does not apply: doc is missing "
                                          f"key: {path}: missing value")
                parent[tok] = copy.deepcopy(op["value"])
            elif isinstance(parent, list):
                parent[_index(parent, tok, path)] = copy.deepcopy(op["value"])
            else:
                raise PatchError(422, f"replace operation does not apply: doc is missing "
                                      f"path: {path}")
        elif kind == "move":
            value = _remove(doc, op.get("from"), "move")
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, _get(doc, op.get("from"), "copy"))
        elif kind == "test":
            try:
                have = _get(doc, path, "test")
            except PatchError:
                have = None
                if op.get("value") is not None:
                    raise PatchError(422, f"testing value {path} failed: test failed")
            if not json_equal(have, op.get("value")):
                raise PatchError(422, f"testing value {path} failed: test failed")
        else:
            raise PatchError(422, f"Unexpected kind: {kind}")
    return doc
