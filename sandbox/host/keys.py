"""Host keys, kept in a local JSON file like the Functions host's key store.

``{"masterKey": "...", "functionKeys": {"default": "..."}, "systemKeys": {"durabletask_extension": "..."}}``
The master (admin) key works for every route; function keys for function-level routes; the system
key for the durable webhooks (``/runtime/webhooks/durabletask``).
"""

from __future__ import annotations

import json
import os
import secrets


def _new_key() -> str:
    return secrets.token_urlsafe(40)


class Keys:
    def __init__(self, master: str, function_keys: dict[str, str], system_keys: dict[str, str]) -> None:
        self.master = master
        self.function_keys = function_keys
        self.system_keys = system_keys

    @property
    def default_function_key(self) -> str:
        return self.function_keys.get("default") or next(iter(self.function_keys.values()))

    @property
    def durable_key(self) -> str:
        return self.system_keys["durabletask_extension"]

    def document(self) -> dict:
        return {"masterKey": self.master, "functionKeys": self.function_keys, "systemKeys": self.system_keys}

    @classmethod
    def generate(cls) -> Keys:
        return cls(_new_key(), {"default": _new_key()}, {"durabletask_extension": _new_key()})

    @classmethod
    def load(cls, path: str | None) -> Keys:
        """Read the keys file; create it (0600) with fresh keys when it does not exist."""
        if not path:
            return cls.generate()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
            keys = cls(document["masterKey"], dict(document.get("functionKeys") or {}),
                       dict(document.get("systemKeys") or {}))
            changed = False
            if not keys.function_keys:
                keys.function_keys["default"], changed = _new_key(), True
            if "durabletask_extension" not in keys.system_keys:
                keys.system_keys["durabletask_extension"], changed = _new_key(), True
            if changed:
                keys.save(path)
            return keys
        keys = cls.generate()
        keys.save(path)
        return keys

    def save(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.document(), handle, indent=2)

    def level(self, presented: str | None) -> str | None:
        """The auth level a presented key grants: 'admin', 'function', 'system' or None."""
        if not presented:
            return None
        if secrets.compare_digest(presented, self.master):
            return "admin"
        if any(secrets.compare_digest(presented, key) for key in self.function_keys.values()):
            return "function"
        if any(secrets.compare_digest(presented, key) for key in self.system_keys.values()):
            return "system"
        return None
