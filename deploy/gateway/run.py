"""Render the nginx gateway config from the environment and run nginx in the foreground.

Environment: ``GATEWAY_HOST`` (127.0.0.1), ``GATEWAY_PORT`` (8080), ``<SERVICE>_UPSTREAM``
(``127.0.0.1:8001``...), ``GATEWAY_RATE_LIMIT`` (``100r/s`` per client address),
``GATEWAY_RATE_BURST`` (200), ``GATEWAY_RUN_DIR`` (``.run/gateway``), ``GATEWAY_ACCESS_LOG``
(``/dev/stdout``, a path, or ``off``), ``GATEWAY_TRUSTED_PROXIES`` (load balancers in front
of the gateway whose ``X-Forwarded-For`` is believed; none by default),
``GATEWAY_PUBLIC_METRICS`` (``off``: ``/<prefix>/metrics`` answers 404). ``--render-only``
writes the config and prints its path.

nginx runs as this process's child, not in its place: a master killed with SIGKILL leaves
its workers serving and holding the port, so when the master dies this process ends the
workers it left and then dies the way the master did (a supervisor sees "terminated by
SIGKILL" and restarts the gateway, with nothing left behind even if it is told to stop
meanwhile). Signals are passed on to nginx. Workers of a master that died while nobody
watched (this process killed too) are ended before nginx starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
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


def _real_ip(trusted: str) -> str:
    """nginx realip directives for the proxies (load balancers) in front of the gateway.

    ``GATEWAY_TRUSTED_PROXIES`` is a comma-separated list of addresses or networks; from
    those peers nginx takes the client from ``X-Forwarded-For`` (the rightmost address that
    is not itself trusted), from anyone else the connection's address stands.
    """
    networks = []
    for item in filter(None, (part.strip() for part in trusted.split(","))):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise SystemExit(f"gateway: GATEWAY_TRUSTED_PROXIES: not a network: {item!r}") from exc
    if not networks:
        return "    # (no trusted proxies: $remote_addr is the peer)"
    lines = [f"    set_real_ip_from {network};" for network in networks]
    lines += ["    real_ip_header X-Forwarded-For;", "    real_ip_recursive on;"]
    return "\n".join(lines)


def _metrics(public: str) -> str:
    """Each service's ``/<prefix>/metrics`` is for Prometheus on the services' own ports, not
    for the world: 404 at the gateway unless ``GATEWAY_PUBLIC_METRICS=on``."""
    if public.lower() in ("on", "true", "1", "yes"):
        return "        # GATEWAY_PUBLIC_METRICS=on: /<prefix>/metrics is routed like any path"
    return (
        "        location ~ ^/[a-z]+/metrics$ {\n"
        "            default_type application/problem+json;\n"
        '            return 404 \'{"type":"https://tessera.dev/problems/not_found",'
        '"title":"Metrics are not served through the gateway","status":404,'
        '"code":"not_found"}\';\n'
        "        }"
    )


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
        "REAL_IP_DIRECTIVES": _real_ip(env.get("GATEWAY_TRUSTED_PROXIES", "")),
        "METRICS_LOCATION": _metrics(env.get("GATEWAY_PUBLIC_METRICS", "off")),
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


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(command name, state, process group) of a process, from /proc; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    return head.partition("(")[2], fields[0], int(fields[2])


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _nginx_in_group(group: int) -> list[int]:
    """The live nginx processes of process group ``group`` (a master and its workers)."""
    proc = Path("/proc")
    pids = [int(p.name) for p in proc.iterdir() if p.name.isdigit()] if proc.is_dir() else []
    return [pid for pid in pids if _alive_nginx(pid, group=group)]


def _alive_nginx(pid: int, group: int | None = None) -> bool:
    stat = _stat(pid)
    return (
        stat is not None
        and stat[0] == "nginx"
        and stat[1] != "Z"
        and (group is None or stat[2] == group)
    )


def end_orphaned_workers(pid_file: Path, timeout: float = 5.0) -> list[int]:
    """End the workers left by a master that died without stopping them; return their pids.

    A master killed with SIGKILL leaves its workers serving and holding the listening socket,
    so a new master cannot bind. They are the nginx processes of the process group that the
    dead master (its pid is still in the pid file) led: a supervisor starts each program in a
    group of its own. Nothing is done while that master is still alive.
    """
    try:
        master = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return []
    if _alive_nginx(master):
        if _parent(master) != 1:
            return []  # its own run.py (or another supervisor) still runs it
        _end([master], group=master, timeout=timeout)  # nobody watches it: it holds the port
    workers = _nginx_in_group(master)
    _end(workers, group=master, timeout=timeout)
    if workers:
        print(f"gateway: ended workers {workers} left by nginx master {master}", flush=True)
    return workers


def _end(pids: list[int], *, group: int, timeout: float) -> None:
    """TERM, then KILL, the nginx processes ``pids`` of process group ``group``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [pid for pid in pids if _alive_nginx(pid, group=group)]
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(_alive_nginx(pid, group=group) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.05)


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)  # fmt: skip


def supervise(argv: list[str], *, timeout: float = 5.0) -> int:
    """Run nginx (``argv``) as a child until it exits; pass signals on; when it is gone, end
    the workers it left in this process group; return its exit status, or die of the signal
    that killed it."""
    # a session of its own: the master leads the process group its workers are in, so they
    # can be found (and only they) once it is gone
    child = subprocess.Popen(argv, start_new_session=True)  # noqa: S603 - our own nginx

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    status = child.wait()
    left = _nginx_in_group(child.pid)
    if left:
        _end(left, group=child.pid, timeout=timeout)
        print(f"gateway: ended workers {left} left by nginx master {child.pid}", flush=True)
    if status < 0:  # killed by a signal: go the same way, so the supervisor says so
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        time.sleep(1)
    return status if status >= 0 else 128 - status


def main() -> None:
    conf = render(dict(os.environ))
    if "--render-only" in sys.argv:
        print(conf)
        return
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("gateway: nginx is not installed (apt-get install nginx)")
    end_orphaned_workers(conf.parent / "nginx.pid")
    raise SystemExit(
        supervise([nginx, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"])
    )


if __name__ == "__main__":
    main()
