# SPDX-License-Identifier: Apache-2.0
"""Field selectors and label selectors, as the apiserver parses and applies
them: ?fieldSelector=..., ?labelSelector=... and metav1.LabelSelector
objects (matchLabels / matchExpressions) in PDBs and network policies."""

import re

from .status import (ApiError, bad_request, forbidden_field, invalid_value, required,
                     unsupported)


def get_field(obj, dotted):
    """Value at a dotted path ("spec.nodeName"), as the field selector sees
    it: missing is "", booleans are "true"/"false"."""
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(res, text):
    """[(field, op, value)]; 400 for unsupported fields, as the server does."""
    terms = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|!=|=)\s*(.*)$", raw)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = m.group(1), m.group(2), m.group(3)
        if field not in res.field_labels:
            raise bad_request(f"field label not supported: {field}")
        terms.append((field, "!=" if op == "!=" else "=", value))
    return terms


def field_match(terms, obj):
    for field, op, value in terms:
        have = get_field(obj, field)
        if (have == value) != (op == "="):
            return False
    return True


def _split_label_terms(text):
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


_KEY = r"[A-Za-z0-9_./\-]+"


def parse_label_selector(text):
    """[(key, op, values)] with op in =, !=, in, notin, exists, !exists."""
    out = []
    for raw in _split_label_terms(text):
        m = re.match(rf"^({_KEY})\s+(in|notin)\s+\(([^)]*)\)$", raw)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            out.append((m.group(1), m.group(2), vals))
            continue
        m = re.match(rf"^({_KEY})\s*(==|!=|=)\s*([A-Za-z0-9_.\-]*)$", raw)
        if m:
            out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = re.match(rf"^(!?)\s*({_KEY})$", raw)
        if m:
            out.append((m.group(2), "!exists" if m.group(1) else "exists", set()))
            continue
        raise ApiError(400, f"unable to parse requirement: found '{raw}', expected: "
                            "in, notin, =, ==, !=, gt, lt")
    return out


def labels_match(terms, labels):
    labels = labels or {}
    for key, op, vals in terms:
        has = key in labels
        v = labels.get(key)
        if op in ("=", "in") and not (has and v in vals):
            return False
        if op in ("!=", "notin") and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def label_match(terms, obj):
    return labels_match(terms, (obj.get("metadata") or {}).get("labels") or {})


# --- metav1.LabelSelector ------------------------------------------------------

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(sel, path):
    """Field errors for a metav1.LabelSelector (ValidateLabelSelector)."""
    errs = []
    if sel is None:
        return errs
    if not isinstance(sel, dict):
        return [invalid_value(path, sel, "must be an object")]
    ml = sel.get("matchLabels") or {}
    if not isinstance(ml, dict):
        errs.append(invalid_value(f"{path}.matchLabels", ml, "must be a map of strings"))
    else:
        for k, v in ml.items():
            if not isinstance(v, str):
                errs.append(invalid_value(f"{path}.matchLabels", v, "must be a string"))
    for i, e in enumerate(sel.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(e, dict):
            errs.append(invalid_value(p, e, "must be an object"))
            continue
        op, vals = e.get("operator"), e.get("values") or []
        if not e.get("key"):
            errs.append(required(f"{p}.key"))
        if op not in OPERATORS:
            errs.append(unsupported(f"{p}.operator", op, OPERATORS))
        elif op in ("In", "NotIn") and not vals:
            errs.append(required(f"{p}.values",
                                 "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and vals:
            errs.append(forbidden_field(f"{p}.values",
                                        "may not be specified when `operator` is 'Exists' "
                                        "or 'DoesNotExist'"))
    return errs


def selector_empty(sel):
    return not sel or (not sel.get("matchLabels") and not sel.get("matchExpressions"))


def selector_match(sel, labels):
    """Whether a metav1.LabelSelector selects these labels. An empty selector
    selects everything (the caller decides what empty means for it)."""
    labels = labels or {}
    for k, v in ((sel or {}).get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in (sel or {}).get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), set(e.get("values") or [])
        has = k in labels
        if op == "In" and not (has and labels[k] in vals):
            return False
        if op == "NotIn" and has and labels[k] in vals:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
    return True


class Filter:
    """Which objects a list or watch sees: resource, namespace, selectors."""

    def __init__(self, res, ns, fields, labels):
        self.res, self.ns, self.fields, self.labels = res, ns, fields, labels

    def match(self, res, obj):
        if obj is None or res is not self.res:
            return False
        meta = obj.get("metadata") or {}
        if self.ns is not None and meta.get("namespace") != self.ns:
            return False
        return field_match(self.fields, obj) and label_match(self.labels, obj)
