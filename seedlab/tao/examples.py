"""Rule scorers for the shipped TAO example (`examples/tao/prompts.jsonl`): answers in JSON with fields a and b.

Use as `seedlab tao run --scorer seedlab.tao.examples:json_ab`."""

from __future__ import annotations

import json
from typing import Any

from seedlab.tao._scorers import json_objects


def _filled(value: Any) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or (isinstance(value, int | float)
                                                                 and not isinstance(value, bool))


def json_ab(_prompt: str, response: str) -> float:
    """1.0: the response is only a JSON object with exactly the fields "a" and "b", both filled (text or a number).
    0.5: such an object sits inside other text or a code fence. 0.25: some other JSON object. 0.0: no JSON."""
    text = response.strip()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and set(whole) == {"a", "b"} and all(_filled(v) for v in whole.values()):
        return 1.0
    found = [v for v in json_objects(text) if isinstance(v, dict)]
    if any(set(v) == {"a", "b"} and all(_filled(x) for x in v.values()) for v in found):
        return 0.5
    return 0.25 if found else 0.0
