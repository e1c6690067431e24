"""JSON output: the Analysis as a dict (exact integers), one document."""

from __future__ import annotations

import json
from typing import Any


def render(analysis: Any, depth: int = 0, **_: Any) -> str:
    return json.dumps(analysis.to_dict(depth), indent=2) + "\n"
