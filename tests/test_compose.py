"""The docker compose stack as written: pinned images, health-gated start order, loopback-only ports, named
volumes, settings that point at the compose services, the image's Dockerfile, and the entrypoint's seeding.

No Docker engine is needed: the files are parsed, configs/docker.yaml is loaded with the real load_settings, the
entrypoint runs for real against a `milvus-lite server` (the same http:// code path as Milvus standalone), and
`docker-compose config -q` validates the file when the Debian `docker-compose` package is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from rag.config import Settings, load_settings
from rag.store import MilvusStore
from tests.conftest import EXAMPLES, ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
DOCKER_CONFIG = ROOT / "configs" / "docker.yaml"
APP_ROOT = "/app"  # WORKDIR of the image; the repository is copied there
GPU_VARIANTS = {"ollama": "ollama-gpu", "ollama-pull": "ollama-pull-gpu", "app": "app-gpu"}

_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>[A-Za-z_]\w*)(?::?-(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)")


def interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    """Compose's variable substitution (${VAR}, ${VAR:-default}, $$) applied to every string in ``value``."""
    env = env or {}
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        return env.get(name) or match.group("default") or ""

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml with YAML anchors merged and variables at their defaults, as `docker compose up` sees it."""
    return interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture
def docker_settings(monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]]) -> Settings:
    """configs/docker.yaml loaded the way the container loads it: RAG_CONFIG plus the app's environment."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    env = services["app"]["environment"]
    for name, value in env.items():
        if name.startswith("RAG_"):
            monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("RAG_CONFIG", str(container_path(env["RAG_CONFIG"])))
    return load_settings()


def container_path(path: str) -> Path:
    """The repository file that the image holds at ``path`` (the Dockerfile copies the repository to /app)."""
    assert path.startswith(APP_ROOT + "/"), f"{path} is not inside the image's {APP_ROOT}"
    return ROOT / path[len(APP_ROOT) + 1 :]


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of every published port, short syntax."""
    result = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"use the short port syntax with an explicit host ip: {entry!r}"
        parts = entry.split(":")
        assert len(parts) == 3, f"port {entry!r} must name the host ip, e.g. 127.0.0.1:8501:8501"
        result.append((parts[0], parts[1], parts[2].split("/")[0]))
    return result


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(container) for _, _, container in published_ports(service)}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a host path) of each volume of ``service``."""
    result = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        result[target] = source
    return result


def is_named_volume(source: str) -> bool:
    return not source.startswith(("/", ".", "~"))


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


# --- docker-compose.yml -------------------------------------------------------------------------------------------


def test_the_stack_has_its_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"etcd", "minio", "milvus", "ollama", "ollama-pull", "app"} <= set(services)
    assert services["milvus"]["command"] == ["milvus", "run", "standalone"]
    assert services["milvus"]["image"].startswith("milvusdb/milvus:v2.6.")
    assert services["ollama"]["image"].startswith("ollama/ollama:")
    assert "build" in services["app"]


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image (a built service must still name its tag)"
        reference = image.split("@")[0]
        repository, _, tag = reference.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag.lower() != "latest", f"{name}: image {image!r} uses latest"
        assert re.search(r"\d", tag), f"{name}: tag {tag!r} of {image!r} is not a version"


def test_the_one_shot_pull_uses_the_ollama_image_and_the_model_the_app_asks_for(
    services: dict[str, dict[str, Any]],
) -> None:
    for pull_name, server_name in (("ollama-pull", "ollama"), ("ollama-pull-gpu", "ollama-gpu")):
        pull = services[pull_name]
        assert pull["image"] == services[server_name]["image"]
        assert pull["restart"] == "no"
        script = " ".join(pull.get("entrypoint", [])) + " " + " ".join(pull["command"])
        assert "ollama pull" in script
        assert pull["environment"]["LLM_MODEL"] == "qwen2.5:3b"
        assert pull["environment"]["OLLAMA_HOST"] == "ollama:11434"
    assert services["app"]["environment"]["RAG_LLM__MODEL"] == services["ollama-pull"]["environment"]["LLM_MODEL"]


def test_one_variable_changes_the_pulled_and_the_used_model() -> None:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    custom = interpolate(raw, {"LLM_MODEL": "llama3.2:1b"})["services"]
    assert custom["ollama-pull"]["environment"]["LLM_MODEL"] == "llama3.2:1b"
    assert custom["app"]["environment"]["RAG_LLM__MODEL"] == "llama3.2:1b"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    milvus = " ".join(services["milvus"]["healthcheck"]["test"])
    assert "9091/healthz" in milvus
    assert services["ollama"]["healthcheck"]["test"] == ["CMD", "ollama", "list"]  # the image has no curl
    app = " ".join(services["app"]["healthcheck"]["test"])
    assert "/_stcore/health" in app and "curl" not in app and "python" in app  # slim has no curl
    for name in ("etcd", "minio", "ollama-gpu", "app-gpu"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_start_order_waits_for_health_and_for_the_model(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        depends = services[name].get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must give conditions"
        return {dep: spec["condition"] for dep, spec in depends.items()}

    assert conditions("milvus") == {"etcd": "service_healthy", "minio": "service_healthy"}
    assert conditions("ollama-pull") == {"ollama": "service_healthy"}
    app = conditions("app")
    assert app["milvus"] == "service_healthy"
    assert app["ollama-pull"] == "service_completed_successfully"
    gpu = conditions("app-gpu")
    assert gpu["milvus"] == "service_healthy" and gpu["ollama-pull-gpu"] == "service_completed_successfully"
    for name in services:
        for dep, condition in conditions(name).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy; it has no check"
            elif condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} must be a one-shot job"
            else:
                pytest.fail(f"{name} -> {dep}: condition {condition!r} does not wait for anything")


def test_host_ports_are_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    published = {name: published_ports(service) for name, service in services.items()}
    for name, ports in published.items():
        for host_ip, host_port, _ in ports:
            assert host_ip == "127.0.0.1", f"{name} publishes port {host_port} on {host_ip or 'all interfaces'}"
    assert ("127.0.0.1", "8501", "8501") in published["app"]
    assert ("127.0.0.1", "19530", "19530") in published["milvus"]
    assert not published["etcd"] and not published["minio"], "etcd and MinIO are internal to the stack"


def test_state_lives_in_declared_named_volumes(compose: dict[str, Any], services: dict[str, dict[str, Any]],
                                               docker_settings: Settings) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for target, source in mounts(service).items():
            if is_named_volume(source):
                assert source in declared, f"{name}: volume {source!r} ({target}) is not declared top-level"
    hf_home = dict(re.findall(r"(\w+)=(\S+)", " ".join(r for k, r in dockerfile_instructions() if k == "ENV")))
    expected = {
        "etcd": "/etcd", "minio": "/minio_data", "milvus": "/var/lib/milvus", "ollama": "/root/.ollama",
    }
    for name, target in expected.items():
        assert is_named_volume(mounts(services[name]).get(target, "/")), f"{name}: {target} is not a named volume"
    app = mounts(services["app"])
    assert is_named_volume(app.get(hf_home["HF_HOME"], "/")), "the Hugging Face cache (bge-m3) is not a volume"
    assert is_named_volume(app.get(docker_settings.app.data_dir, "/")), "app.data_dir is not a volume"
    assert mounts(services["ollama-gpu"]) == mounts(services["ollama"]), "GPU and CPU Ollama share the models"
    assert mounts(services["app-gpu"]) == app


def test_docker_config_points_at_the_compose_services(services: dict[str, dict[str, Any]],
                                                      docker_settings: Settings) -> None:
    env = services["app"]["environment"]
    assert container_path(env["RAG_CONFIG"]) == DOCKER_CONFIG
    milvus = urlsplit(docker_settings.milvus.uri)
    assert milvus.scheme == "http" and milvus.hostname == "milvus" and milvus.hostname in services
    assert milvus.port in container_ports(services["milvus"])
    ollama = urlsplit(docker_settings.llm.base_url)
    assert ollama.hostname == "ollama" and ollama.hostname in services
    assert ollama.port in container_ports(services["ollama"])
    assert "ollama" in services["ollama-gpu"]["networks"]["default"]["aliases"], "the GPU Ollama answers as ollama"
    assert docker_settings.llm.model == services["ollama-pull"]["environment"]["LLM_MODEL"]
    assert int(services["app"]["ports"][0].split(":")[-1]) == 8501


def test_gpu_profile_reserves_nvidia_devices(services: dict[str, dict[str, Any]]) -> None:
    for cpu, gpu in GPU_VARIANTS.items():
        assert services[gpu]["profiles"] == ["gpu"]
        assert "profiles" not in services[cpu], f"{cpu} must start with a plain `docker compose up`"
    for name in ("ollama-gpu", "app-gpu"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert services["app"]["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert services["app-gpu"]["build"]["args"]["TORCH_VARIANT"].startswith("cu")
    assert services["app-gpu"]["image"] != services["app"]["image"], "the CUDA build must not overwrite the CPU tag"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian package) not installed")
def test_docker_compose_config_validates() -> None:
    env = {key: value for key, value in os.environ.items() if key.isupper() and not key.startswith("RAG_")}
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile and .dockerignore ---------------------------------------------------------------------------------


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must end as a non-root USER"
    last_user = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "USER")
    assert all(keyword != "RUN" for keyword, _ in instructions[last_user:]), "RUN after USER would run as the user"
    healthcheck = " ".join(rest for keyword, rest in instructions if keyword == "HEALTHCHECK")
    assert "/_stcore/health" in healthcheck and "curl" not in healthcheck
    assert any(keyword == "EXPOSE" and "8501" in rest for keyword, rest in instructions)
    base = next(rest for keyword, rest in instructions if keyword == "ARG" and rest.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11[.\d]*-slim[-\w]*", base)


def test_dockerfile_installs_cpu_torch_by_default_and_caches_dependencies() -> None:
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    assert args["TORCH_VARIANT"] == "cpu"
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
    assert f"torch=={args['TORCH_VERSION']}" in lock, "the image's torch differs from requirements.lock"
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    torch_run = next(i for i, run in enumerate(runs) if "torch==" in run)
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in runs[torch_run]
    copies = [(i, rest) for i, (keyword, rest) in enumerate(instructions) if keyword == "COPY"]
    first_source_copy = next(i for i, rest in copies if rest.split()[0] == ".")
    deps_install = next(i for i, (keyword, rest) in enumerate(instructions)
                        if keyword == "RUN" and "requirements" in rest and "pip install" in rest)
    assert deps_install < first_source_copy, "dependencies must install before the source is copied"
    assert any(i < deps_install and "pyproject.toml" in rest and "requirements.lock" in rest for i, rest in copies)
    assert "-c requirements.lock" in instructions[deps_install][1], "dependencies must install at the locked versions"


def test_dockerignore_keeps_what_the_image_needs() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "data"} <= ignored
    for needed in ("pyproject.toml", "README.md", "rag", "ingest", "ui", "configs", "examples", "docker"):
        assert needed not in ignored, f".dockerignore drops {needed}, which the image needs"


# --- docker/entrypoint.sh, run for real ---------------------------------------------------------------------------


def test_entrypoint_is_an_executable_posix_script() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    text = ENTRYPOINT.read_text(encoding="utf-8")
    assert "streamlit run ui/app.py" in text and "--server.address=0.0.0.0" in text
    assert any(keyword == "ENTRYPOINT" and "/app/docker/entrypoint.sh" in rest
               for keyword, rest in dockerfile_instructions())


@pytest.fixture
def entrypoint_env(tmp_path: Path, tiny_model_dir: Path, milvus_server: str) -> Iterator[dict[str, str]]:
    """Environment of the app container, with a config file that uses the tiny model and the milvus-lite server."""
    config = tmp_path / "docker-test.yaml"
    settings = yaml.safe_load(DOCKER_CONFIG.read_text(encoding="utf-8"))
    settings["milvus"]["uri"] = milvus_server
    settings["embedding"] = {"model": str(tiny_model_dir), "device": "cpu", "batch_size": 8, "max_length": 512}
    settings["chunking"] = {"chunk_tokens": 96, "overlap_tokens": 16}
    settings["app"]["data_dir"] = str(tmp_path / "data")  # not the container's /data
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAG_", "SEED_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", RAG_CONFIG=str(config),
               SEED_KB_PATH=str(EXAMPLES), SEED_KB_NAME="compose_seed", COLUMNS="200", HF_HUB_OFFLINE="1")
    yield env
    with MilvusStore(load_settings(config).milvus) as store:
        if store.exists("compose_seed"):
            store.drop("compose_seed")


def run_entrypoint(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def chunk_count(env: dict[str, str]) -> int:
    with MilvusStore(load_settings(env["RAG_CONFIG"]).milvus) as store:
        return store.open("compose_seed").count() if store.exists("compose_seed") else 0


def test_entrypoint_seeds_an_empty_knowledge_base_once(entrypoint_env: dict[str, str]) -> None:
    off = run_entrypoint(["seed"], {**entrypoint_env, "SEED_KB": "0"})
    assert off.returncode == 0 and "not seeding" in off.stdout, off.stdout + off.stderr
    assert chunk_count(entrypoint_env) == 0

    first = run_entrypoint(["seed"], entrypoint_env)
    assert first.returncode == 0, first.stdout + first.stderr
    seeded = chunk_count(entrypoint_env)
    assert seeded > 0
    with MilvusStore(load_settings(entrypoint_env["RAG_CONFIG"]).milvus) as store:
        sources = {doc.source for doc in store.open("compose_seed").documents().values()}
    assert {"faq-zh.md", "product-faq.md", "tech-note-sync.pdf"} <= {Path(s).name for s in sources}

    second = run_entrypoint(["seed"], entrypoint_env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already holds" in second.stdout and "nothing ingested" in second.stdout, second.stdout
    assert chunk_count(entrypoint_env) == seeded


def test_entrypoint_runs_other_commands_as_given(entrypoint_env: dict[str, str], tmp_path: Path) -> None:
    """What `docker compose run --rm app rag-ingest /kb` does inside the container, /kb being a mounted folder."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "policy.md").write_text("# Leave\n\nEmployees get fifteen days of annual leave.\n", encoding="utf-8")
    ingest = run_entrypoint(["rag-ingest", str(kb), "--kb", "compose_seed"], entrypoint_env)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    listed = run_entrypoint(["rag-ingest", "list", "--kb", "compose_seed"], entrypoint_env)
    assert listed.returncode == 0 and "policy.md" in listed.stdout, listed.stdout + listed.stderr
    assert "Streamlit" not in ingest.stdout + listed.stdout, "a command must not start the app"


# --- the api service (rag serve) ----------------------------------------------------------------------------------


def test_api_service_serves_rag_serve_beside_the_app(services: dict[str, dict[str, Any]]) -> None:
    api, app = services["api"], services["app"]
    assert api["profiles"] == ["api"], "the API starts when asked for (it needs API_KEY)"
    assert api["command"][:2] == ["rag", "serve"] and api["command"][api["command"].index("--port") + 1] == "8000"
    assert published_ports(api) == [("127.0.0.1", "8000", "8000")]
    assert api["image"] == app["image"] and api["build"] == app["build"], "the API runs the app's image"
    assert mounts(api) == mounts(app)
    for name in ("RAG_CONFIG", "RAG_LLM__MODEL", "HF_ENDPOINT"):
        assert api["environment"][name] == app["environment"][name]
    assert {dep: spec["condition"] for dep, spec in api["depends_on"].items()} == {
        "milvus": "service_healthy", "ollama": "service_healthy", "ollama-pull": "service_completed_successfully"}
    check = " ".join(api["healthcheck"]["test"])
    assert "127.0.0.1:8000/healthz" in check and "python" in check and "curl" not in check


def test_api_key_comes_from_one_variable() -> None:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert interpolate(raw)["services"]["api"]["environment"]["RAG_API__KEYS"] == ""
    keyed = interpolate(raw, {"API_KEY": "s3cret", "API_PORT": "9000"})["services"]["api"]
    assert keyed["environment"]["RAG_API__KEYS"] == "s3cret"
    assert published_ports(keyed) == [("127.0.0.1", "9000", "8000")]


def test_api_container_without_a_key_refuses_to_start(entrypoint_env: dict[str, str],
                                                      services: dict[str, dict[str, Any]]) -> None:
    """What the api container runs (through the entrypoint) when API_KEY is not set: a message, exit code 2."""
    env = {**entrypoint_env, "RAG_API__KEYS": services["api"]["environment"]["RAG_API__KEYS"]}
    result = run_entrypoint(services["api"]["command"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to listen on 0.0.0.0 without an API key" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# --- .github/workflows/compose.yml (runs on a hosted runner with Docker; here its parts are checked) --------------

WORKFLOW = ROOT / ".github" / "workflows" / "compose.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def workflow_runs(workflow: dict[str, Any]) -> list[str]:
    return [step.get("run", "") for step in workflow["jobs"]["compose"]["steps"]]


def ci_override(workflow: dict[str, Any]) -> str:
    """The compose override file the workflow writes (the tiny models in place of the real ones)."""
    script = next(run for run in workflow_runs(workflow) if "docker-compose.ci.yml" in run)
    return script[script.index("x-tiny"):script.index("\nYAML", script.index("x-tiny"))]


def test_workflow_builds_starts_ingests_and_calls_the_api(workflow: dict[str, Any]) -> None:
    env = workflow["jobs"]["compose"]["env"]
    assert env["COMPOSE_FILE"] == "docker-compose.yml:docker-compose.ci.yml" and env["COMPOSE_PROFILES"] == "api"
    assert env["API_KEY"] and env["LLM_MODEL"] != "qwen2.5:3b"
    runs = "\n".join(workflow_runs(workflow))
    assert "docker compose build app" in runs and "docker compose up -d --wait" in runs
    assert "rag-ingest /kb" in runs and "docker compose down -v" in runs
    for path in ("/healthz", "/v1/retrieval", "/v1/chat/completions"):
        assert f"http://127.0.0.1:8000{path}" in runs, path
    assert 'Authorization: Bearer $API_KEY' in runs


def test_workflow_override_settings_are_valid_and_mounted(workflow: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                          services: dict[str, dict[str, Any]]) -> None:
    override = yaml.safe_load(ci_override(workflow))
    for name in ("app", "api"):
        service = override["services"][name]
        for key in list(os.environ):
            if key.startswith("RAG_"):
                monkeypatch.delenv(key)
        monkeypatch.setenv("RAG_CONFIG", str(DOCKER_CONFIG))
        for key, value in service["environment"].items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        model = Path(settings.embedding.model)
        assert any(model.is_relative_to(target) for target in mounts(service)), f"{name}: {model} is not mounted"
        assert settings.embedding.download is False
    assert set(override["services"]) <= set(services)


def test_workflow_tiny_model_script_builds_a_model(workflow: dict[str, Any], tmp_path: Path) -> None:
    script = next(run for run in workflow_runs(workflow) if "build_bge_m3_like" in run)
    code = script[script.index('-c "') + 4:script.rindex('"')]
    code = code.replace("/app/examples/kb", str(EXAMPLES)).replace("/out/", f"{tmp_path}/")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tiny-bge-m3" / "config.json").exists()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian package) not installed")
def test_docker_compose_config_validates_with_the_ci_override(workflow: dict[str, Any], tmp_path: Path) -> None:
    override = tmp_path / "docker-compose.ci.yml"
    override.write_text(ci_override(workflow), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key.isupper() and not key.startswith("RAG_")}
    env.update(COMPOSE_PROFILES="api", API_KEY="k")
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "-f", str(override), "config", "-q"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
