"""`make lab`'s JupyterLab starts on 127.0.0.1 and lists the course notebooks."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from helpers.servers import free_port, stop_process_tree

REPO = Path(__file__).resolve().parent.parent


def get_json(url: str, token: str):
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_lab_lists_course_notebooks(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
        f"--IdentityProvider.token={token}", "--notebook-dir", str(REPO / "notebooks"),
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "lab.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        contents = None
        deadline = time.monotonic() + 60
        while contents is None and time.monotonic() < deadline and process.poll() is None:
            try:
                contents = get_json(f"http://127.0.0.1:{port}/api/contents", token)
            except OSError:
                time.sleep(0.5)
        assert contents is not None, (tmp_path / "lab.log").read_text()[-2000:]
        names = sorted(item["name"] for item in contents["content"] if item["type"] == "notebook")
        expected = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        assert names == expected
        extensions = get_json(f"http://127.0.0.1:{port}/lab/api/extensions", token)
        assert "jupyterlab-rise" in {extension["name"] for extension in extensions}, "RISE is not installed in JupyterLab"
        kernels = get_json(f"http://127.0.0.1:{port}/api/kernelspecs", token)
        assert "python3" in kernels["kernelspecs"]
    finally:
        stop_process_tree(process.pid)
        log.close()
