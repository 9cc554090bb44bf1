"""The deployment material in deploy/ (HAProxy, Kubernetes, Prometheus, systemd)
is valid, consistent with itself, and uses only options `vocalis serve` has.

HAProxy's own parser checks haproxy.cfg, and a real HAProxy routes to a real
serving app by its /readyz; the Kubernetes manifests are validated against
the Kubernetes JSON schemas that kubernetes-validate ships (offline).
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from vocalis.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HAPROXY_CFG = DEPLOY / "haproxy" / "haproxy.cfg"
SYSTEMD_UNIT = DEPLOY / "systemd" / "vocalis@.service"
KUBERNETES = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
SERVING_DOC = ROOT / "docs" / "serving.md"
# The oldest Kubernetes the manifests support, and the newest schemas shipped.
KUBERNETES_VERSIONS = ("1.29", "latest")

# CI installs Debian's haproxy and sets VOCALIS_REQUIRE_HAPROXY: there a missing
# haproxy fails the run instead of skipping. Read at import: the autouse
# fixture of tests/core/conftest.py clears VOCALIS_* variables per test.
REQUIRE_HAPROXY = bool(os.environ.get("VOCALIS_REQUIRE_HAPROXY"))
HAPROXY = shutil.which("haproxy", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def haproxy_binary() -> str:
    if HAPROXY is None:
        if REQUIRE_HAPROXY:
            pytest.fail("VOCALIS_REQUIRE_HAPROXY is set but haproxy is not installed")
        pytest.skip("needs Debian's haproxy package")
    return HAPROXY


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def serve_container() -> dict[str, Any]:
    containers = one("Deployment", "vocalis")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "vocalis")


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


# ---------------------------------------------------------------- HAProxy


def test_haproxy_accepts_the_config_without_warnings() -> None:
    # -dW: any warning is an error, so a misplaced rule cannot slip through.
    done = subprocess.run(
        [haproxy_binary(), "-dW", "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def haproxy_directives(section: str) -> list[str]:
    """The directives of one ``frontend``/``backend`` section, comments dropped."""
    lines, inside = [], False
    for raw in HAPROXY_CFG.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if raw and not raw[0].isspace():
            inside = line == section
        elif inside and line:
            lines.append(" ".join(line.split()))
    assert lines, f"no section {section!r}"
    return lines


def test_haproxy_keeps_calls_of_a_draining_server() -> None:
    backend = haproxy_directives("backend vocalis")
    assert "option httpchk GET /readyz" in backend and "http-check expect status 200" in backend
    assert "balance leastconn" in backend and not any(d.startswith("hash-type") for d in backend)
    # A host marked down (draining) must keep its running calls.
    assert not any("shutdown-sessions" in d for d in backend)
    server_defaults = next(d for d in backend if d.startswith("default-server"))
    for setting in ("check", "inter 2s", "fall 2", "rise 2", "slowstart", "maxconn"):
        assert setting in server_defaults


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_config(tmp_path: Path, front: int, backend: int, stats: int) -> Path:
    """haproxy.cfg on free loopback ports, runnable in the foreground as any user."""
    text = HAPROXY_CFG.read_text()
    for old, new in (
        ("bind :8080\n", f"bind 127.0.0.1:{front}\n"),
        ("server vocalis-1 127.0.0.1:8081\n", f"server vocalis-1 127.0.0.1:{backend}\n"),
        ("bind 127.0.0.1:8404\n", f"bind 127.0.0.1:{stats}\n"),
        # Logs to HAProxy's stderr; and fewer connections than in production,
        # whose file descriptors a container's limit may not allow.
        ("log /dev/log local0\n", "log stderr local0\n"),
        ("    maxconn 20000\n", "    maxconn 1000\n"),
    ):
        assert text.count(old) == 1, f"haproxy.cfg changed: {old.strip()!r} is not there once"
        text = text.replace(old, new)
    dropped = ("chroot ", "user ", "group ", "daemon", "stats socket ")
    lines = [line for line in text.splitlines() if not line.strip().startswith(dropped)]
    path = tmp_path / "haproxy.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


async def server_state(stats: int) -> dict[str, str]:
    from aiohttp import ClientSession

    async with ClientSession() as client, client.get(f"http://127.0.0.1:{stats}/stats;csv") as response:
        rows = csv.DictReader(io.StringIO((await response.text()).lstrip("# ")))
        return next(row for row in rows if row["pxname"] == "vocalis" and row["svname"] == "vocalis-1")


async def wait_for_state(stats: int, status: str, code: str) -> dict[str, str]:
    state: dict[str, str] = {}
    for _ in range(300):  # 30 s: the checks run every 2 s, 2 in a row decide
        state = await server_state(stats)
        if state["status"] == status and state["check_code"] == code:
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"vocalis-1 never became {status} with check code {code}: {state}")


@pytest.fixture
async def vocalis_app() -> AsyncIterator[tuple[Any, int]]:
    from aiohttp import web

    from vocalis import Agent, CascadingPipeline
    from vocalis.serve.http import build_app
    from vocalis.serve.server import ServeOptions, SessionServer
    from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

    server = SessionServer(
        lambda: Agent("Be brief."),
        lambda: CascadingPipeline(stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None),
        ServeOptions(token="deploy-test-token", drain_timeout=1.0),
    )
    runner = web.AppRunner(build_app(server, []))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield server, port
    finally:
        await server.aclose()
        await runner.cleanup()


async def test_haproxy_routes_by_readiness_and_guards_the_front(tmp_path: Path, vocalis_app: tuple[Any, int]) -> None:
    from aiohttp import ClientSession

    binary = haproxy_binary()
    server, backend = vocalis_app
    front, stats = free_port(), free_port()
    config = local_config(tmp_path, front, backend, stats)
    log = tmp_path / "haproxy.log"
    with log.open("wb") as sink:
        proxy = await asyncio.create_subprocess_exec(
            binary, "-db", "-f", str(config), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        for _ in range(300):  # until the stats port listens
            try:
                await server_state(stats)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await wait_for_state(stats, "UP", "200")  # /readyz answered 200
        async with ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{front}/livez") as response:
                assert response.status == 200  # public, through the proxy
            async with client.get(f"http://127.0.0.1:{front}/metrics") as response:
                assert response.status == 404  # the proxy's, not the server's 401
            # The per-source request rate: 50 per 10 s, then 429.
            statuses = []
            for _ in range(200):
                async with client.head(f"http://127.0.0.1:{front}/livez") as response:
                    statuses.append(response.status)
                if statuses[-1] == 429:
                    break
            # Two requests above count too; every one before the 50th passed.
            assert statuses[-1] == 429 and 2 + len(statuses) > 50
            assert set(statuses[:-1]) == {200}
        await server.drain()  # what SIGTERM does: /readyz answers 503
        await wait_for_state(stats, "DOWN", "503")
    finally:
        if proxy.returncode is None:
            proxy.terminate()
        await proxy.wait()
    assert "vocalis/vocalis-1 is DOWN, reason: Layer7 wrong status, code: 503" in log.read_text()


# ------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_matches_the_kubernetes_schemas(version: str) -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version() if version == "latest" else version
    docs = manifests()
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Secret",
        "NetworkPolicy",
    }
    for doc in docs:
        # strict: an unknown (misspelt) field is an error, not ignored.
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_misspelt_field_fails_validation() -> None:
    import kubernetes_validate

    deployment = copy.deepcopy(one("Deployment", "vocalis"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.29", strict=True)


def test_probes_drain_and_grace_period_fit_together() -> None:
    pod = one("Deployment", "vocalis")["spec"]["template"]["spec"]
    container = serve_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    argv = container["command"] + container["args"]
    assert argv[:2] == ["vocalis", "serve"]
    assert int(option(argv, "--port")) == ports["http"] and option(argv, "--host") == "0.0.0.0"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez"), ("startupProbe", "/livez")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] in ("http", ports["http"])
    # SIGKILL must not come before preStop's sleep plus the whole drain.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and float(pre_stop[1]) >= 3
    drain = float(option(argv, "--drain-timeout"))
    assert pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + drain
    token = next(e for e in container["env"] if e["name"] == "VOCALIS_SERVE_TOKEN")["valueFrom"]["secretKeyRef"]
    secret = one("Secret", token["name"])
    assert token["key"] in secret["stringData"]


def test_services_budgets_and_autoscaler_select_the_right_pods() -> None:
    for name in ("vocalis", "redis"):
        labels = one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert one("Deployment", name)["spec"]["selector"]["matchLabels"].items() <= labels.items()
        service = one("Service", name)
        assert service["spec"]["selector"].items() <= labels.items()
        containers = one("Deployment", name)["spec"]["template"]["spec"]["containers"]
        port_names = {p["name"] for c in containers for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    labels = one("Deployment", "vocalis")["spec"]["template"]["metadata"]["labels"]
    assert one("PodDisruptionBudget", "vocalis")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    redis_from = one("NetworkPolicy", "redis")["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert redis_from.items() <= labels.items()
    # --store points at the Redis Service.
    store = option(serve_container()["args"], "--store")
    redis_port = one("Service", "redis")["spec"]["ports"][0]["port"]
    assert store.startswith(f"redis://redis:{redis_port}/")
    hpa = one("HorizontalPodAutoscaler", "vocalis")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vocalis"}
    assert [m["pods"]["metric"]["name"] for m in hpa["metrics"]] == ["vocalis_sessions_active"]
    adapter = yaml.safe_load((PROMETHEUS / "adapter-rules.yaml").read_text())
    assert adapter["rules"][0]["name"]["as"] == "vocalis_sessions_active"


def test_every_container_is_bounded_and_unprivileged() -> None:
    for deployment in (d for d in manifests() if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            where = f"{deployment['metadata']['name']}/{container['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][bound].keys(), where
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where


# ---------------------------------------------------------- Prometheus


def documented_metrics() -> set[str]:
    return set(re.findall(r"`(vocalis_[a-z_]+)", SERVING_DOC.read_text()))


def test_prometheus_scrapes_with_the_token_from_a_file() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"vocalis", "vocalis-kubernetes", "haproxy"} <= jobs.keys()
    for name in ("vocalis", "vocalis-kubernetes"):
        auth = jobs[name]["authorization"]
        assert auth.get("type", "Bearer") == "Bearer" and "credentials" not in auth
        assert auth["credentials_file"].startswith("/")
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()


def test_alerts_use_documented_metrics() -> None:
    documented = documented_metrics()
    assert "vocalis_sessions_active" in documented
    rules = yaml.safe_load((PROMETHEUS / "vocalis-alerts.yml").read_text())["groups"][0]["rules"]
    used = set()
    for rule in rules:
        # Series of a histogram or counter carry suffixes the docs do not repeat.
        used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"vocalis_[a-z_]+", rule["expr"])}
    assert used and used <= documented, used - documented


# -------------------------------------------- command lines vs. --help


def command_lines() -> dict[str, list[str]]:
    """Every ``vocalis serve`` command line in deploy/ and docs/serving.md, as arguments."""
    found: dict[str, list[str]] = {}
    container = serve_container()
    found["kubernetes"] = container["command"] + container["args"]
    for path in (SYSTEMD_UNIT, HAPROXY_CFG, SERVING_DOC, *DEPLOY.glob("*/README.md")):
        text = path.read_text().replace("\\\n", " ")
        for number, line in enumerate(text.splitlines(), start=1):
            if "vocalis serve" in line:
                found[f"{path.relative_to(ROOT)}:{number}"] = line.split("vocalis serve", 1)[1].split()
            elif line.startswith("| `--"):  # an options table
                found[f"{path.relative_to(ROOT)}:{number}"] = [line.split("`")[1]]
    return found


def test_every_serve_option_used_exists() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    known = set(re.findall(r"--[a-z][a-z-]*", result.output))
    lines = command_lines()
    assert len(lines) > 5
    unknown = {
        f"{where}: {flag}"
        for where, argv in lines.items()
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(argv))
        if flag not in known
    }
    assert not unknown, sorted(unknown)
