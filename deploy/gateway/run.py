"""Render the nginx gateway config from the environment and run nginx in the foreground.

Environment: ``GATEWAY_HOST`` (127.0.0.1), ``GATEWAY_PORT`` (8080), ``<SERVICE>_UPSTREAM``
(``127.0.0.1:8001``...), ``GATEWAY_RATE_LIMIT`` (``100r/s`` per client address),
``GATEWAY_RATE_BURST`` (200), ``GATEWAY_RUN_DIR`` (``.run/gateway``), ``GATEWAY_ACCESS_LOG``
(``/dev/stdout``, a path, or ``off``). ``--render-only``
writes the config and prints its path.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PORTS = {
    "AUTH": 8001,
    "APPLETS": 8002,
    "ANSWERS": 8003,
    "MAILER": 8004,
    "SYNC": 8005,
    "CHAT": 8006,
}


def _access_log(target: str) -> str:
    """``off`` turns the access log off (benchmarks); anything else is a file path."""
    return "access_log off;" if target == "off" else f"access_log {target} tessera;"


def render(env: dict[str, str]) -> Path:
    run_dir = Path(env.get("GATEWAY_RUN_DIR", ".run/gateway")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "RUN_DIR": str(run_dir),
        "USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "",
        "ACCESS_LOG_DIRECTIVE": _access_log(env.get("GATEWAY_ACCESS_LOG", "/dev/stdout")),
        "GATEWAY_HOST": env.get("GATEWAY_HOST", "127.0.0.1"),
        "GATEWAY_PORT": env.get("GATEWAY_PORT", "8080"),
        "RATE_LIMIT": env.get("GATEWAY_RATE_LIMIT", "100r/s"),
        "RATE_BURST": env.get("GATEWAY_RATE_BURST", "200"),
        "MAX_BODY": env.get("GATEWAY_MAX_BODY", "2m"),
    }
    for name, port in DEFAULT_PORTS.items():
        values[f"{name}_UPSTREAM"] = env.get(f"{name}_UPSTREAM", f"127.0.0.1:{port}")
    text = (HERE / "nginx.conf.template").read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise SystemExit("gateway: unrendered placeholder in nginx.conf.template")
    conf = run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def main() -> None:
    conf = render(dict(os.environ))
    if "--render-only" in sys.argv:
        print(conf)
        return
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("gateway: nginx is not installed (apt-get install nginx)")
    os.execv(nginx, [nginx, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"])  # noqa: S606


if __name__ == "__main__":
    main()
