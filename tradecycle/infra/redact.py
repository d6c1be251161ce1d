"""Secret redaction for anything that may leave the process as text."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# Things that look like credentials even when we do not know the value.
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"""(?i)((?:token|api[_-]?key|apikey|secret|password|key_id)["']?\s*[=:]\s*["']?)[^\s&"',}]{4,}"""),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret value and anything credential-shaped with ***."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text
