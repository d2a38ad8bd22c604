"""The provider origins the page's network worker may call directly (its connect-src), kept on disk.

The chat page itself may only fetch from this server and the model hosts; calls to a provider the
person added run in a dedicated worker whose own Content-Security-Policy lists exactly the origins
registered here. Registering needs this server's page token (webapp/owner.py), so another site cannot
widen the list; a new origin works at once, because the page starts a fresh worker after registering.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

MAX_ORIGINS = 200


class OriginError(ValueError):
    """An origin that cannot be registered; the message says why and what to do."""


def normalize_origin(text: str) -> str:
    """scheme://host[:port] of an http(s) URL, lowercased; raises OriginError for anything else."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OriginError(f"{text!r} is not an http(s) origin such as https://api.example.com")
    if parts.username or parts.password:
        raise OriginError("an origin carries no user name or password: put keys in the key field")
    try:
        port = parts.port
    except ValueError as exc:
        raise OriginError(f"{text!r} has a port that is not a number from 1 to 65535") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class ConnectOrigins:
    """The registered origins, in a JSON file written atomically; an unreadable file is set aside."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._origins = self._read()

    def all(self) -> tuple[str, ...]:
        """The registered origins, in the order they were added."""
        return tuple(self._origins)

    def add(self, text: str) -> str:
        """Register an origin (normalized, and returned); adding one twice is harmless."""
        origin = normalize_origin(text)
        with self._lock:
            if origin in self._origins:
                return origin
            if len(self._origins) >= MAX_ORIGINS:
                raise OriginError(f"{MAX_ORIGINS} provider origins are registered already: remove some first")
            self._origins.append(origin)
            self._write()
        return origin

    def remove(self, text: str) -> None:
        """Forget an origin (the worker stops reaching it the next time it starts)."""
        origin = normalize_origin(text)
        with self._lock:
            if origin in self._origins:
                self._origins.remove(origin)
                self._write()

    def _read(self) -> list[str]:
        try:
            saved = json.loads(self.path.read_text())
            origins = [normalize_origin(o) for o in saved["origins"]]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError):
            # Kept for the owner to look at, never thrown away; the list starts empty.
            self.path.replace(self.path.with_name(self.path.name + ".unreadable"))
            return []
        return list(dict.fromkeys(origins))

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".origins-")
        with os.fdopen(fd, "w") as out:
            json.dump({"origins": self._origins}, out, indent=1)
        os.replace(temp, self.path)
