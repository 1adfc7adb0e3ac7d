"""Offline by construction: a whole tiny run with a socket tripwire installed first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers.settings import TINY_CLI

SCRIPT = textwrap.dedent("""
    import sys
    attempts = []
    def tripwire(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                     "socket.gethostbyaddr", "socket.sendto", "urllib.Request"):
            attempts.append((event, repr(args)[:200]))
            raise ConnectionRefusedError(f"network use during an offline run: {event} {args!r}")
    sys.addaudithook(tripwire)
    from albench.cli import main
    code = main(sys.argv[1:])
    if attempts:
        print("NETWORK ATTEMPTS:", attempts)
        sys.exit(3)
    sys.exit(code)
""")


def test_a_run_makes_no_network_call_and_writes_nothing_under_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "MPL"))}
    env.update(HOME=str(home), ALBENCH_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "run", "--strategy", "random", "--quiet",
         "--out", str(tmp_path / "runs"), *TINY_CLI],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NETWORK ATTEMPTS" not in proc.stdout
    assert list(home.rglob("*")) == [], "files were written under the home folder"
    font = tmp_path / "cache" / "ultralytics" / "Arial.ttf"
    assert font.exists(), "ultralytics' font was not placed, so check_font would download one"
    assert list((tmp_path / "runs").glob("*/rounds.csv"))


def test_the_tripwire_itself_catches_a_connection(tmp_path):
    """The hook above must really fire: a DNS look-up under it fails the script."""
    probe = SCRIPT.split("from albench.cli")[0] + textwrap.dedent("""
        import socket
        try:
            socket.getaddrinfo("example.org", 80)
        except Exception:
            pass
        print(len(attempts))
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.stdout.strip() == "1"
