"""`make run`: the six services and the gateway under supervisord, in the foreground.

Renders ``deploy/local/supervisord.conf`` into ``.run/supervisord.conf`` (absolute paths into
this checkout and its ``.venv``; pid file and control socket under ``.run/``) and replaces
itself with ``supervisord -n`` on it. Every program gets this process's environment plus the
optional ``.env`` of the checkout (a variable already set in the environment wins, as in the
services' own settings). Ctrl-C stops everything; the restart policy is described in the
template. ``--render-only`` writes the config and prints its path.

While it runs: ``.venv/bin/supervisorctl -c .run/supervisord.conf status`` (or ``restart
tessera:mailer``, ``tail -f tessera:auth``...).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "local" / "supervisord.conf"
BIN = Path(sys.prefix) / "bin"  # the workspace's .venv/bin (not resolved: it is a venv)


def render(run_dir: Path) -> Path:
    """Write the supervisord config for this checkout into ``run_dir`` and return its path."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "ROOT": str(ROOT),
        "BIN": str(BIN),
        "RUN_DIR": str(run_dir),
        # a private control socket (chmod 0700); the password only silences supervisord's
        # "running without any HTTP authentication" warning
        "PASSWORD": secrets.token_urlsafe(16),
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value.replace("%", "%%"))
    if "{{" in text:
        raise SystemExit(f"run: unrendered placeholder in {TEMPLATE}")
    conf = run_dir / "supervisord.conf"
    conf.write_text(text)
    conf.chmod(0o600)
    return conf


def environment() -> dict[str, str]:
    """The environment of every program: ``.env`` under the variables already set."""
    from_file = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
    return {**from_file, **os.environ}


def main() -> None:
    conf = render(ROOT / ".run")
    if "--render-only" in sys.argv:
        print(conf)
        return
    supervisord = BIN / "supervisord"
    args = [str(supervisord), "--nodaemon", "--configuration", str(conf)]
    if os.geteuid() == 0:
        args += ["--user", "root"]  # said, or supervisord warns it could not drop privileges
    os.execve(supervisord, args, environment())  # noqa: S606


if __name__ == "__main__":
    main()
