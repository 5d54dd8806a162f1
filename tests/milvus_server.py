"""A real Milvus server for tests, reachable only on loopback.

The server is the embedded Milvus standalone from PyPI's ``milvus`` package (``pip install
milvus``; 2.3.5 is the newest on PyPI, the server reports ``v2.3.5-lite``). It is a test-only
dependency and is not in ``requirements.txt``.

Why a network namespace
-----------------------
Milvus 2.3.5 binds its gRPC ports (proxy 19530, 19529, the coordinators and nodes, metrics
9091) on every interface (``*:PORT`` in ``ss -ltnp``); only its embedded etcd listens on
127.0.0.1. Setting ``<component>.ip: 127.0.0.1`` in ``milvus.yaml`` changes the *advertised*
address, not the listen address (checked: still ``*:19530``), and ``default_server`` has no
listen-address option. So binding to 127.0.0.1 through configuration is not possible.

What this module does instead (no root daemon, no Docker):

1. The test process binds a listening socket on ``127.0.0.1:PORT`` in its own (host)
   network namespace.
2. It starts ``unshare --net --pid --fork --kill-child -- python tests/milvus_server.py
   --serve ...`` and hands that socket over (fd inheritance). The child lives in a fresh
   network namespace whose only interface is ``lo``; it brings ``lo`` up, refuses to go on
   if any other interface is visible, and starts Milvus there. Milvus's wildcard binds are
   therefore reachable from nowhere but that namespace.
3. The child accepts connections on the inherited host-side socket (a socket keeps the
   namespace it was created in) and forwards the bytes to Milvus's proxy on the namespace's
   own ``127.0.0.1:19530``. Tests use ``MilvusClient(uri="http://127.0.0.1:PORT")``.
4. The child is PID 1 of a new PID namespace: when it exits, the kernel kills Milvus too.
   It exits when told (``stop()``), on SIGTERM, or when the test process dies (its stdin, a
   pipe from the test process, reaches EOF).

If the whole pytest process already runs in an isolated namespace (only ``lo`` visible, for
example ``unshare --net sh -c 'ip link set lo up && python -m pytest ...'``), no new namespace
is made: the child runs without ``unshare`` (and without the PID-namespace guarantee; it
still stops Milvus on EOF/SIGTERM), the forwarder still serves the requested port.

Requires: Linux, root (or CAP_SYS_ADMIN) for ``unshare --net``, util-linux ``unshare``.

Measured on a 2-core machine: start 6.8-7.1 s the first time (3.3 s of it decompressing the
246 MB of binaries, cached afterwards under ``~/.cache/banana-studio`` or
``$MILVUS_TEST_CACHE``), 3.3-3.5 s after that; the first ``create_collection`` with an index
takes ~3 s (it loads the collection); a restart on the same ``base_dir`` ~12 s; ~250 MB RSS
idle; the forwarder adds ~0.4 ms a call. Data for one server: ~550 MB after 20k vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

READY_PREFIX = "MILVUS-READY"
DEFAULT_START_TIMEOUT_S = 180.0

# milvus.yaml overrides applied to every test server (dotted paths, see the generated
# base_dir/configs/milvus.yaml).
TEST_CONFIG: dict[str, object] = {
    # Strong-consistency reads wait for about two proxy time ticks: 200 ms ticks (the
    # default) made every Strong search ~400 ms; 20 ms ticks make it ~40 ms, for ~5% of a
    # core when idle instead of ~2%.
    "proxy.timeTickInterval": 20,
}


# --------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------


def embedded_server_unavailable_reason() -> str | None:
    """``None`` when the embedded server can be started here, else a one-line reason."""
    if not sys.platform.startswith("linux"):
        return f"the embedded Milvus server needs Linux network namespaces (platform is {sys.platform})"
    try:
        import milvus  # noqa: F401
    except ImportError:
        return "the embedded Milvus server needs PyPI's `milvus` package (pip install milvus==2.3.5)"
    if shutil.which("unshare") is None:
        return "the embedded Milvus server needs util-linux `unshare` to keep it on loopback"
    if _in_isolated_netns():
        return None
    probe = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return (
            "cannot create a network namespace to keep Milvus on loopback "
            f"(`unshare --net --pid --fork true` exited {probe.returncode}: {probe.stderr.strip()})"
        )
    return None


def _in_isolated_netns() -> bool:
    """True when the only network interface this process can see is ``lo``."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return False
    return names == ["lo"]


# --------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------


def start_milvus_server(
    base_dir: Path,
    port: int | None = None,
    *,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
    config: dict[str, object] | None = None,
) -> tuple[str, Callable[[], None]]:
    """Start the embedded Milvus server; return ``(uri, stop)``.

    ``uri`` is ``http://127.0.0.1:PORT`` (``PORT`` = ``port``, or a free one when ``None``).
    Data and logs go under ``base_dir`` (logs: ``base_dir/logs``, the launcher's own log:
    ``base_dir/launcher.log``). ``config`` overrides ``milvus.yaml`` keys by dotted path
    (``{"proxy.timeTickInterval": 50}``); it is merged over :data:`TEST_CONFIG`. ``stop()`` is
    idempotent. Raises ``RuntimeError`` with the
    tail of the logs when the server does not come up within ``timeout_s``.
    """
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    reason = embedded_server_unavailable_reason()
    if reason:
        raise RuntimeError(reason)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port or 0))
    listener.listen(64)
    host_port = listener.getsockname()[1]

    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", "--base-dir", str(base_dir)]
    if _in_isolated_netns():
        # Option (a): we are already inside an isolated namespace; still use the forwarder so
        # the returned port is the one asked for, but no new namespace is needed.
        pass
    else:
        cmd = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--"] + cmd
    cmd += ["--listen-fd", str(listener.fileno())]
    for key, value in {**TEST_CONFIG, **(config or {})}.items():
        cmd += ["--set", f"{key}={value}"]

    launcher_log = open(base_dir / "launcher.log", "wb")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=launcher_log,
        pass_fds=(listener.fileno(),),
        start_new_session=True,
    )
    listener.close()  # the child owns it now

    ready = threading.Event()
    lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            lines.append(line)
            if line.startswith(READY_PREFIX):
                ready.set()

    reader = threading.Thread(target=read_stdout, name="milvus-launcher-stdout", daemon=True)
    reader.start()

    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()  # EOF: the child stops Milvus and exits
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        launcher_log.close()

    deadline = time.monotonic() + timeout_s
    while not ready.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(
                f"Milvus server did not start (launcher exit code {proc.returncode}).\n"
                + _tail(base_dir / "launcher.log")
                + _tail(base_dir / "logs" / "milvus-stderr.log")
            )
    return f"http://127.0.0.1:{host_port}", stop


@contextlib.contextmanager
def milvus_server(base_dir: Path, port: int | None = None) -> Iterator[str]:
    """Context-manager form of :func:`start_milvus_server`; yields the URI."""
    uri, stop = start_milvus_server(base_dir, port)
    try:
        yield uri
    finally:
        stop()


def milvus_test_uri(base_dir_factory: Callable[[], Path]) -> Iterator[str]:
    """Generator for a pytest fixture: a URI from ``MILVUS_TEST_URI``, or an embedded server.

    Skips (``pytest.skip``) with the exact reason when neither is possible. Wrap it as::

        @pytest.fixture(scope="session")
        def milvus_uri(tmp_path_factory):
            yield from milvus_test_uri(lambda: tmp_path_factory.mktemp("milvus-server"))
    """
    import pytest

    uri = os.environ.get("MILVUS_TEST_URI", "").strip()
    if uri:
        yield uri
        return
    if os.environ.get("MILVUS_TEST_EMBEDDED", "1") == "0":
        pytest.skip("MILVUS_TEST_URI is not set and MILVUS_TEST_EMBEDDED=0")
    reason = embedded_server_unavailable_reason()
    if reason:
        pytest.skip(f"MILVUS_TEST_URI is not set and {reason}")
    try:
        uri, stop = start_milvus_server(base_dir_factory())
    except RuntimeError as exc:
        pytest.skip(f"MILVUS_TEST_URI is not set and the embedded Milvus server failed to start: {exc}")
    try:
        yield uri
    finally:
        stop()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text[-lines:]) + "\n"


# --------------------------------------------------------------------------------------
# Child side (runs inside the namespace)
# --------------------------------------------------------------------------------------

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifreq))[1]
        if not flags & _IFF_UP:
            fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _cached_binaries(base_dir: Path) -> None:
    """Point ``base_dir/bin`` at a shared, once-decompressed copy of the Milvus binaries."""
    import milvus

    cache_root = Path(
        os.environ.get("MILVUS_TEST_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "banana-studio"
    )
    cache = cache_root / f"milvus-server-{milvus.__version__}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        milvus._initialize_data_files(str(cache))  # no-op when the md5 files match
    link = base_dir / "bin"
    if not link.exists():
        link.symlink_to(cache / "bin", target_is_directory=True)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _forward(listener: socket.socket, target_port: int, stopping: threading.Event) -> None:
    listener.settimeout(0.5)
    while not stopping.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        client.settimeout(None)
        try:
            upstream = socket.create_connection(("127.0.0.1", target_port), timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def pair(a: socket.socket = client, b: socket.socket = upstream) -> None:
            t = threading.Thread(target=_pump, args=(b, a), daemon=True)
            t.start()
            _pump(a, b)
            t.join()
            a.close()
            b.close()

        threading.Thread(target=pair, daemon=True).start()


def _serve(base_dir: Path, listen_fd: int, overrides: list[str]) -> int:
    _bring_loopback_up()
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        print(f"refusing to start: interfaces other than lo are visible: {names}", file=sys.stderr)
        return 3

    from milvus import MilvusServer, MilvusServerConfig

    listener = socket.socket(fileno=listen_fd)
    _cached_binaries(base_dir)
    config = MilvusServerConfig(data_dir=str(base_dir))
    for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
        config.set(f"{component}.ip", "127.0.0.1")  # advertised address only
    for item in overrides:
        key, _, value = item.partition("=")
        if key in config.configurable_items:  # template variables such as proxy_port
            kind = config.get_type(key)
            config.set(key, (value == "true") if kind is bool else kind(value))
        else:
            config.set(key, value)
    server = MilvusServer(config)

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    def watch_stdin() -> None:
        with contextlib.suppress(OSError):
            while sys.stdin.buffer.read(1):
                pass
        stopping.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    started = time.monotonic()
    try:
        server.start()
        listen = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
        print(listen, file=sys.stderr, flush=True)
        threading.Thread(target=_forward, args=(listener, server.listen_port, stopping), daemon=True).start()
        print(
            f"{READY_PREFIX} start_s={time.monotonic() - started:.1f} inner_port={server.listen_port}",
            flush=True,
        )
        while not stopping.wait(0.5):
            if server.server_proc is not None and server.server_proc.poll() is not None:
                print(f"milvus exited with {server.server_proc.returncode}", file=sys.stderr, flush=True)
                return 4
    finally:
        listener.close()
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="(internal) run inside the namespace")
    parser.add_argument("--base-dir", type=Path, required=True)
    parser.add_argument("--listen-fd", type=int, default=-1)
    parser.add_argument("--port", type=int, default=None, help="host port when run by hand")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="milvus.yaml override by dotted path, e.g. proxy.timeTickInterval=50")
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.base_dir, args.listen_fd, args.set)
    # By hand: python tests/milvus_server.py --base-dir /tmp/milvus-test [--port 19530]
    overrides = dict(item.partition("=")[::2] for item in args.set)
    uri, stop = start_milvus_server(args.base_dir, args.port, config=overrides)
    print(f"Milvus at {uri} (Ctrl+C to stop)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
