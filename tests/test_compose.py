"""Static checks of docker-compose.yml and Dockerfile (no Docker engine needed)."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from rag.core import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

MILVUS = "milvus"  # the Milvus standalone service
APP = "banana"
APP_PORT = 7860
MILVUS_PORT = 19530

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` (enough for this file)."""

    def sub(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        value = env.get(name)
        if op == ":-":
            return value if value else default
        if op == "-":
            return default if value is None else value
        if op in (":?", "?"):
            raise AssertionError(f"{name} is required: {default}")
        return value or ""

    return _VAR.sub(sub, text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def words(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def parse_port(spec: str | int | dict) -> tuple[str, str | None, int]:
    """``(host_ip, host_port, container_port)`` of a short or long port spec, interpolated."""
    if isinstance(spec, dict):
        return spec.get("host_ip", ""), spec.get("published"), int(spec["target"])
    text = interpolate(str(spec), {})
    text = text.split("/")[0]
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return "", None, int(parts[0])
    if len(parts) == 2:
        return "", parts[0], int(parts[1])
    return parts[0], parts[1], int(parts[2])


def mounts(service: dict) -> dict[str, str]:
    """``{target: source}`` of a service's volumes."""
    out = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out[vol["target"]] = vol.get("source", "")
        else:
            source, target = vol.split(":")[:2]
            out[target] = source
    return out


def health_words(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(t) for t in test]


# --------------------------------------------------------------------------------------
# compose: services and images
# --------------------------------------------------------------------------------------


def test_services_are_milvus_standalone_plus_app(services: dict) -> None:
    assert set(services) == {"etcd", "minio", MILVUS, APP}


def test_images_are_pinned(services: dict) -> None:
    assert re.fullmatch(r"milvusdb/milvus:v2\.5\.\d+", services[MILVUS]["image"])
    assert re.fullmatch(r"quay\.io/coreos/etcd:v3\.5\.\d+", services["etcd"]["image"])
    assert re.fullmatch(r"minio/minio:RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z", services["minio"]["image"])


def test_milvus_runs_standalone(services: dict) -> None:
    milvus = services[MILVUS]
    assert words(milvus["command"]) == ["milvus", "run", "standalone"]
    assert "seccomp:unconfined" in milvus.get("security_opt", [])


def test_milvus_ticks_fast_enough_for_strong_searches(services: dict) -> None:
    # Strong consistency waits ~2 proxy time ticks: 392 ms a search at Milvus's default 200 ms.
    tick = env_of(services[MILVUS])["PROXY_TIMETICKINTERVAL"]
    assert re.fullmatch(r"\$\{MILVUS_TIME_TICK_MS:-(\d+)\}", tick) and int(tick.split("-")[1][:-1]) <= 50


def test_milvus_finds_etcd_and_minio(services: dict) -> None:
    env = env_of(services[MILVUS])
    etcd_cmd = words(services["etcd"]["command"])
    assert etcd_cmd[0] == "etcd"
    assert any(re.fullmatch(r"-?-listen-client-urls[= ]http://0\.0\.0\.0:2379", w) for w in etcd_cmd), etcd_cmd
    assert env["ETCD_ENDPOINTS"] == "etcd:2379"

    minio_cmd = words(services["minio"]["command"])
    assert minio_cmd[:2] == ["minio", "server"]
    if "--address" in minio_cmd:
        assert minio_cmd[minio_cmd.index("--address") + 1] == ":9000"
    assert env["MINIO_ADDRESS"] == "minio:9000"


def test_milvus_and_minio_share_credentials(services: dict) -> None:
    milvus, minio = env_of(services[MILVUS]), env_of(services["minio"])
    for env in ({}, {"MINIO_ACCESS_KEY": "k", "MINIO_SECRET_KEY": "s3cret"}):
        assert interpolate(milvus["MINIO_ACCESS_KEY_ID"], env) == interpolate(minio["MINIO_ROOT_USER"], env)
        assert interpolate(milvus["MINIO_SECRET_ACCESS_KEY"], env) == interpolate(minio["MINIO_ROOT_PASSWORD"], env)
    assert interpolate(minio["MINIO_ROOT_USER"], {"MINIO_ACCESS_KEY": "k"}) == "k"


# --------------------------------------------------------------------------------------
# compose: health checks and start order
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["etcd", "minio", MILVUS, APP])
def test_every_service_has_a_health_check(services: dict, name: str) -> None:
    check = services[name]["healthcheck"]
    test = health_words(services[name])
    assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1
    assert not check.get("disable", False)
    assert int(check.get("retries", 3)) >= 1


def test_health_checks_probe_the_right_endpoints(services: dict) -> None:
    assert health_words(services["etcd"])[1:] == ["etcdctl", "endpoint", "health"]
    assert "http://localhost:9000/minio/health/live" in health_words(services["minio"])
    assert "http://localhost:9091/healthz" in health_words(services[MILVUS])
    assert services[MILVUS]["healthcheck"].get("start_period"), "Milvus needs a start period"
    assert f"http://127.0.0.1:{APP_PORT}/" in " ".join(health_words(services[APP]))


def test_start_order_waits_for_health(services: dict) -> None:
    assert depends_on(services[MILVUS]) == {"etcd": "service_healthy", "minio": "service_healthy"}
    assert depends_on(services[APP]) == {MILVUS: "service_healthy"}
    assert depends_on(services["etcd"]) == {} and depends_on(services["minio"]) == {}


# --------------------------------------------------------------------------------------
# compose: ports and volumes
# --------------------------------------------------------------------------------------


def test_ports(services: dict) -> None:
    app_ports = [parse_port(p) for p in services[APP]["ports"]]
    assert [(ip, host, target) for ip, host, target in app_ports] == [("127.0.0.1", str(APP_PORT), APP_PORT)]
    milvus_ports = {target: (ip, host) for ip, host, target in map(parse_port, services[MILVUS]["ports"])}
    assert MILVUS_PORT in milvus_ports
    # No authentication on Milvus here: never publish it beyond the host's loopback.
    assert all(ip == "127.0.0.1" for ip, _ in milvus_ports.values()), milvus_ports
    assert "ports" not in services["etcd"] and "ports" not in services["minio"]


def test_app_can_be_published_beyond_loopback_on_request(services: dict) -> None:
    (spec,) = services[APP]["ports"]
    assert interpolate(str(spec), {"BANANA_BIND": "0.0.0.0"}) == f"0.0.0.0:{APP_PORT}:{APP_PORT}"


def test_volumes_declared_and_used(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in services.values():
        for target, source in mounts(service).items():
            assert not source.startswith(("/", ".")), f"bind mount {source}:{target}; use a named volume"
            used.add(source)
    assert used == declared
    assert mounts(services["etcd"])["/etcd"]
    assert "--data-dir=/etcd" in words(services["etcd"]["command"])
    assert "/minio_data" in mounts(services["minio"])
    assert words(services["minio"]["command"])[2] == "/minio_data"
    assert "/var/lib/milvus" in mounts(services[MILVUS])
    app = mounts(services[APP])
    assert "/app/data" in app and "/cache" in app and app["/app/data"] != app["/cache"]


# --------------------------------------------------------------------------------------
# compose: the app's settings
# --------------------------------------------------------------------------------------


def test_app_points_at_the_milvus_service(services: dict) -> None:
    env = env_of(services[APP])
    assert env["MILVUS_URI"] == f"http://{MILVUS}:{MILVUS_PORT}"
    container_ports = {target for _, _, target in map(parse_port, services[MILVUS]["ports"])}
    assert MILVUS_PORT in container_ports


def test_app_environment_as_the_app_reads_it(services: dict) -> None:
    raw = env_of(services[APP])
    assert raw["GEMINI_API_KEY"] == "${GEMINI_API_KEY:-}"

    settings = Settings.from_env({k: interpolate(v, {}) for k, v in raw.items()})
    assert settings.is_server
    assert settings.milvus_uri == f"http://{MILVUS}:{MILVUS_PORT}"
    assert settings.clip_pretrained == Settings().clip_pretrained  # an unset variable must not blank it
    assert settings.gemini_api_key == ""
    assert settings.data_dir == Path("/app/data")
    assert str(settings.library_dir).startswith("/app/data/")
    assert "/app/data" in mounts(services[APP])

    host = {"GEMINI_API_KEY": "key-123", "CLIP_PRETRAINED": "openai"}
    settings = Settings.from_env({k: interpolate(v, host) for k, v in raw.items()})
    assert settings.gemini_api_key == "key-123"
    assert settings.clip_pretrained == "openai"


def test_app_is_built_from_the_repo_dockerfile(services: dict) -> None:
    build = services[APP]["build"]
    build = {"context": build} if isinstance(build, str) else build
    assert (ROOT / build["context"]).resolve() == ROOT
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_base_install_and_cmd() -> None:
    instr = dockerfile_instructions()
    assert instr[0] == ("FROM", "python:3.11-slim")
    runs = [rest for kw, rest in instr if kw == "RUN"]
    assert any(re.search(r"pip install .*-r requirements\.txt", r) for r in runs)
    (cmd,) = [rest for kw, rest in instr if kw == "CMD"]
    assert json.loads(cmd) == ["python", "app.py", "--host", "0.0.0.0", "--port", str(APP_PORT)]
    assert ("EXPOSE", str(APP_PORT)) in instr
    (health,) = [rest for kw, rest in instr if kw == "HEALTHCHECK"]
    assert "CMD" in health and f"127.0.0.1:{APP_PORT}" in health


def test_dockerfile_copies_every_local_module_the_app_imports() -> None:
    copied = set()
    for kw, rest in dockerfile_instructions():
        if kw == "COPY":
            *sources, _dest = rest.split()
            copied.update(s.rstrip("/") for s in sources if not s.startswith("--"))
    assert "requirements.txt" in copied

    def local_imports(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        return {n for n in names if (ROOT / n).is_dir() or (ROOT / f"{n}.py").is_file()}

    needed = {"app.py"} | local_imports(ROOT / "app.py")
    assert {"rag", "ui"} <= needed  # the walk below starts from the packages app.py really imports
    for package in list(needed - {"app.py"}):
        for module in (ROOT / package).rglob("*.py"):
            needed |= local_imports(module)
    missing = {n for n in needed if n not in copied and f"{n}.py" not in copied}
    assert not missing, f"Dockerfile does not COPY {sorted(missing)}"


def test_dockerfile_keeps_data_and_secrets_out() -> None:
    for kw, rest in dockerfile_instructions():
        if kw in ("COPY", "ADD"):
            assert not rest.startswith(". "), "COPY . copies data/ and .env into the image"
            assert "data" not in rest.split()[:-1]
    assert ("USER", "banana") in dockerfile_instructions()
