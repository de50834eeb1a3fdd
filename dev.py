#!/usr/bin/env python3
"""One entry point for developers and CI; needs nothing but Python 3.11+.

    python3 dev.py run [--no-migrate] [--no-envoy] [--no-worker] [--demo]
    python3 dev.py test [pytest args...]
    python3 dev.py gen
    python3 dev.py lint
    python3 dev.py breaking [REF]     (buf breaking against REF, default main)

Every command first brings the environment up to date, doing only what is
needed: it creates ``.venv``, installs ``.[dev]`` when pyproject.toml changed
since the last install, puts ``gen/python`` on the venv's path, and regenerates
code when a proto is newer than ``gen/onboarding.pb``. Generating runs
``server.codegen``, then ``buf generate`` (Python and TypeScript clients) when
the npm tools are installed; ``test`` installs them (``npm ci``) where Node.js
is, for the Node.js client test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PYTHON = BIN / "python"
INSTALL_STAMP = VENV / ".dev-installed-pyproject.sha256"
PTH_NAME = "onboarding_gen.pth"
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
DESCRIPTOR_SET = GEN / "onboarding.pb"
CODEGEN = ROOT / "server" / "codegen.py"
# What gen/openapi.json is built from besides the protos.
OPENAPI_SOURCES = (ROOT / "gateway" / "openapi", ROOT / "server" / "security")
BUF = ROOT / "node_modules" / ".bin" / "buf"
TS_OUT = GEN / "ts"
MYPY_TARGETS = ("server", "services", "gateway")

USAGE = __doc__.split("\n\n")[1]


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


def run(argv: Sequence[str | Path]) -> int:
    return subprocess.run([str(a) for a in argv], cwd=ROOT).returncode


def check(argv: Sequence[str | Path], what: str) -> None:
    if run(argv) != 0:
        sys.exit(f"dev.py: {what} failed")


# Bootstrap ----------------------------------------------------------------------


def ensure_venv() -> None:
    if PYTHON.exists():
        return
    say(f"creating {VENV.name} with Python {sys.version.split()[0]}")
    if VENV.exists():
        shutil.rmtree(VENV)
    check([sys.executable, "-m", "venv", VENV], "python -m venv")


def ensure_installed() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text().strip() == digest:
        return
    say("installing .[dev] into .venv (a few minutes the first time)")
    command = [str(PYTHON), "-m", "pip", "install", "--quiet", "--editable", ".[dev]"]
    check(command, "pip install")
    INSTALL_STAMP.write_text(digest + "\n")


def ensure_gen_on_path() -> None:
    """A .pth file, so ``import onboarding.v1...`` works from any directory."""
    line = f"{GEN / 'python'}\n"
    for site_packages in VENV.glob("lib/python3*/site-packages"):
        pth = site_packages / PTH_NAME
        if not pth.exists() or pth.read_text() != line:
            pth.write_text(line)


def codegen_is_stale() -> bool:
    if not DESCRIPTOR_SET.exists() or not (GEN / "python").is_dir():
        return True
    built = DESCRIPTOR_SET.stat().st_mtime
    sources = [CODEGEN, *PROTOS.rglob("*.proto")]
    sources += [path for folder in OPENAPI_SOURCES for path in folder.glob("*.py")]
    return any(path.stat().st_mtime > built for path in sources)


def generate() -> None:
    check([PYTHON, "-m", "server.codegen"], "code generation")
    if BUF.exists():
        buf_generate()


def buf_generate() -> None:
    """The Python and TypeScript clients of buf.gen.yaml."""
    check([BUF, "generate"], "buf generate")
    # buf leaves unchanged files alone, so the folder's date records this run.
    TS_OUT.touch()


def ensure_ts_stubs() -> None:
    """npm tools and gen/ts for the Node.js client test, where Node.js is."""
    if not (shutil.which("node") and shutil.which("npm")):
        return  # that test skips itself
    if not ensure_node_tools():
        sys.exit("dev.py: npm ci failed")
    if not TS_OUT.is_dir() or TS_OUT.stat().st_mtime < DESCRIPTOR_SET.stat().st_mtime:
        say("generating the TypeScript stubs (buf generate)")
        buf_generate()


def bootstrap(*, regenerate: bool = False) -> None:
    # Older interpreters do get here: this file is what a fresh machine runs.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit("dev.py: Python 3.11 or newer is needed")
    ensure_venv()
    ensure_installed()
    ensure_gen_on_path()
    if regenerate or codegen_is_stale():
        say("generating code from protos/")
        generate()


def exec_in_venv(argv: Sequence[str | Path]) -> None:
    """Replace this process, so signals and the exit code pass straight through."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    os.chdir(ROOT)
    args = [str(a) for a in argv]
    os.execve(args[0], args, env)


# Commands -----------------------------------------------------------------------


def cmd_run(args: list[str]) -> int:
    exec_in_venv([BIN / "onboarding", "dev", *args])
    return 0  # not reached


def cmd_test(args: list[str]) -> int:
    ensure_ts_stubs()
    exec_in_venv([PYTHON, "-m", "pytest", *args])
    return 0  # not reached


def cmd_gen(args: list[str]) -> int:
    return 0  # bootstrap(regenerate=True) did the work


def cmd_lint(args: list[str]) -> int:
    targets = [t for t in MYPY_TARGETS if any((ROOT / t).rglob("*.py"))]
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [BIN / "ruff", "check", "."]),
        ("ruff format", [BIN / "ruff", "format", "--check", "."]),
        ("mypy", [BIN / "mypy", *targets]),
    ]
    if shutil.which("npx") and ensure_node_tools():
        steps.append(("buf lint", ["npx", "--no-install", "buf", "lint"]))
    else:
        say("skipping buf lint: Node.js (npx) is not installed")

    failed = []
    for name, argv in steps:
        say(name)
        if run(argv) != 0:
            failed.append(name)
    if failed:
        say("failed: " + ", ".join(failed))
        return 1
    say("lint passed")
    return 0


def cmd_breaking(args: list[str]) -> int:
    """``buf breaking`` against the protos of a git ref (default: main).

    ``--against '.git#branch=main'`` cannot build the old side while
    gen/googleapis is git-ignored, so the ref's protos/ are unpacked next to a
    copy of today's gen/googleapis and buf.yaml, and compared as a folder.
    """
    ref = args[0] if args else "main"
    if not (shutil.which("npx") and ensure_node_tools()):
        sys.exit("dev.py: buf breaking needs Node.js (npx)")
    with tempfile.TemporaryDirectory(prefix="dev-breaking-") as tmp:
        against = Path(tmp)
        archive = against / "protos.tar"
        if run(["git", "archive", f"--output={archive}", ref, "protos"]) != 0:
            sys.exit(f"dev.py: no protos/ at git ref {ref!r}")
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(against, filter="data")
            else:  # Python 3.11 before 3.11.4; the archive is our own
                tar.extractall(against)
        shutil.copy2(ROOT / "buf.yaml", against / "buf.yaml")
        shutil.copytree(GEN / "googleapis", against / "gen" / "googleapis")
        say(f"buf breaking against {ref}")
        return run(["npx", "--no-install", "buf", "breaking", "--against", against])


def ensure_node_tools() -> bool:
    """``npm ci`` when node_modules is missing or older than the lock file."""
    lock = ROOT / "package-lock.json"
    installed = ROOT / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return True
    say("installing npm dev tools (npm ci)")
    return run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]) == 0


COMMANDS = {
    "run": cmd_run,
    "test": cmd_test,
    "gen": cmd_gen,
    "lint": cmd_lint,
    "breaking": cmd_breaking,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    command, args = argv[0], argv[1:]
    bootstrap(regenerate=command == "gen")
    return COMMANDS[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
