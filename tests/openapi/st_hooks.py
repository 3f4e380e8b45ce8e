"""Schemathesis hooks for tests/openapi.test.mjs (loaded through SCHEMATHESIS_HOOKS).

- Path parameters take the ids of what the test seeded (ST_SEEDED: JSON, path prefix -> {name:
  value}), so operations on one object reach their handlers instead of answering 404 to every
  random id.
- Body fields naming other objects (`parent_id`, `principal_id`, `org_id`, …) take seeded ids
  (ST_BODY_IDS) whenever the generated body has them.
- URLs the gateway would contact point at the test's own upstream (ST_UPSTREAM) or at a closed
  loopback port (ST_CLOSED): a fuzzer must not make the gateway talk to random hosts. The choice
  is a function of the generated body, so a run stays reproducible under its seed.
"""

import hashlib
import json
import os
from urllib.parse import urlsplit

import schemathesis

SEEDED = json.loads(os.environ["ST_SEEDED"])
# Body fields that name seeded objects (path prefix -> {field: value}): when generated, they
# take a seeded id, so creations get past "no such parent" to the rules after it.
BODY_IDS = json.loads(os.environ["ST_BODY_IDS"])
UPSTREAM = os.environ["ST_UPSTREAM"]
CLOSED = os.environ["ST_CLOSED"]
# Fields of request bodies the gateway may fetch from: a server's URL, a token endpoint, an
# authorization server, an identity provider's issuer.
FETCHED = ("url", "token_url", "authorization_server", "issuer")


def _stable_pick(value) -> bool:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).digest()
    return digest[0] % 4 != 0  # three in four to the real upstream


def _fetchable(value) -> bool:
    """Whether the gateway could fetch this value: an absolute http(s) URL with a host. Other
    values stay as generated (an invalid URL is what a negative case is about)."""
    if not isinstance(value, str):
        return False
    try:
        u = urlsplit(value)
    except ValueError:
        return False
    return u.scheme.lower() in ("http", "https") and bool(u.hostname)


def _negative(case, location) -> bool:
    """Whether the case's `location` component ("path", "body", …) was generated invalid on
    purpose: seeded ids must not turn it valid again."""
    meta = getattr(case, "meta", None)
    for loc, info in (getattr(meta, "components", None) or {}).items():
        if getattr(loc, "value", loc) == location and getattr(info.mode, "value", info.mode) == "negative":
            return True
    return False


def _redirect(node, real_ok):
    """Points every fetchable URL in `node` at CLOSED, a server's `url` at UPSTREAM if `real_ok`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FETCHED and _fetchable(value):
                node[key] = UPSTREAM if key == "url" and real_ok else CLOSED
            else:
                _redirect(value, real_ok)
    elif isinstance(node, list):
        for item in node:
            _redirect(item, real_ok)


# `map_case`: the one hook every phase applies (examples, coverage and fuzzing alike).
@schemathesis.hook
def map_case(context, case):
    path = case.operation.path
    if case.path_parameters and not _negative(case, "path"):
        for prefix, values in SEEDED.items():
            if path == prefix or path.startswith(prefix + "/"):
                for name, value in values.items():
                    if name in case.path_parameters:
                        case.path_parameters[name] = value
    if isinstance(case.body, dict) and not _negative(case, "body"):
        for prefix, fields in BODY_IDS.items():
            if path == prefix or path.startswith(prefix + "/"):
                for name, value in fields.items():
                    if name in case.body:
                        case.body[name] = value
    if isinstance(case.body, (dict, list)):
        _redirect(case.body, path.startswith("/servers") and _stable_pick(case.body))
    return case
