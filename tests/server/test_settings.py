"""Settings: the running dev stack's URLs reach CLI commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PRINT_URLS = (
    "from server.settings import Settings; s = Settings(); "
    "print(s.database_url); print(s.redis_url)"
)


def _urls(env: dict[str, str], cwd: Path) -> list[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    }
    result = subprocess.run(
        [sys.executable, "-c", PRINT_URLS],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_stack_env_of_a_running_stack_is_read(tmp_path: Path) -> None:
    (tmp_path / "stack.env").write_text(
        "DATABASE_URL='postgresql://postgres:@/postgres?host=/x'\n"
        "REDIS_URL='unix:///x/redis.sock'\n"
    )

    urls = _urls({"DATA_DIR": str(tmp_path)}, tmp_path)

    assert urls == ["postgresql://postgres:@/postgres?host=/x", "unix:///x/redis.sock"]


def test_environment_variables_win_over_the_stack_env(tmp_path: Path) -> None:
    (tmp_path / "stack.env").write_text("DATABASE_URL='postgresql://from-file/db'\n")

    urls = _urls(
        {"DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://from-env/db"},
        tmp_path,
    )

    assert urls[0] == "postgresql://from-env/db"
