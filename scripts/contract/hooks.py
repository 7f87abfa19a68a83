"""Schemathesis hooks of scripts/contract.sh (see docs/api-contract.md).

One rule of the API is about state, which no schema can express: an `Idempotency-Key` names
one request, and the same key sent with a different request is refused (422, reason
`idempotency_key_reused`). A generator that draws keys from the schema repeats short ones
("0", "A") across different requests all the time, so every schema-valid key is replaced by a
fresh UUID just before the request is sent. Keys that break the schema (empty, too long, not
visible ASCII) are sent as generated, so their 422 is still tested.
"""

import re
import uuid

import schemathesis

HEADER = "Idempotency-Key"
VALID_KEY = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() != HEADER.lower():
            continue
        value = headers[name]
        if isinstance(value, str) and VALID_KEY.fullmatch(value):
            headers[name] = str(uuid.uuid4())


# CPython before 3.11.8 / 3.12.2 (gh-106905) can raise "SystemError: AST constructor recursion
# depth mismatch" from `ast.parse` deep in a call stack; Hypothesis parses source there only to
# describe a lambda for its messages. A description is not worth a crashed test: fall back to
# Hypothesis's own "unknown" one.
def _tolerate_ast_recursion_bug():
    from hypothesis.internal import lambda_sources

    describe = lambda_sources._lambda_description

    def tolerant(f, *args, **kwargs):
        try:
            return describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = tolerant


_tolerate_ast_recursion_bug()
