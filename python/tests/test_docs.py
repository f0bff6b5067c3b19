"""The example of docs/CONTRACTS.md § Python services runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, RedisServer


def python_blocks(path: str, section: str) -> list[str]:
    text = (REPO / path).read_text()
    start = text.index(section)
    end = text.find("\n## ", start + len(section))
    body = text[start : end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def test_contracts_example_runs(redis_server: RedisServer, tmp_path: Path) -> None:
    (example,) = python_blocks("docs/CONTRACTS.md", "## Python services")
    script = tmp_path / "example.py"
    script.write_text(example + "\nprint('seen', seen)\n")
    env = {**os.environ, "REDIS_URL": redis_server.url}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["seen [7]"]
