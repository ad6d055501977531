"""The manifests in k8s/ and the Dockerfile agree with the Kubernetes API and with chatio itself.

Schemas come from the kubernetes-validate package, which bundles the Kubernetes JSON schemas, so these
tests never use the network. ``make k8s-validate`` runs this file alone; ``make test`` runs it with the rest.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import pytest
import yaml

from chatio.config import Secret, Settings, load_settings, variable_names
from chatio.health import CHECK_TIMEOUT_SECONDS, LIVENESS_PATH, READINESS_PATH

Manifest = dict[str, Any]

REPO: Final = Path(__file__).resolve().parent.parent
K8S: Final = REPO / "k8s"
DOCKERFILE: Final = REPO / "Dockerfile"
DOCS: Final = REPO / "docs" / "kubernetes.md"
NAMESPACE: Final = "chatio"
SECRET_EXAMPLE: Final = K8S / "secret.example.yaml"
METRICS_PATH: Final = "/metrics"
# The oldest Kubernetes release the manifests promise to work on, and the newest the validator knows.
KUBERNETES_VERSIONS: Final = ("1.29", kubernetes_validate.latest_version())
# Kinds that exist once per cluster rather than inside a namespace.
CLUSTER_SCOPED: Final = frozenset({"Namespace"})
# What the Ingress's proxy timeouts must exceed, as a multiple of Engine.IO's ping window.
TIMEOUT_MARGIN: Final = 2
ANY_CHATIO_NAME: Final = re.compile(r"\bCHATIO_[A-Z0-9_]*[A-Z0-9]")


# --- loading -----------------------------------------------------------------------------------------


def _documents(path: Path) -> list[Manifest]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


MANIFEST_FILES: Final = sorted(
    path for path in K8S.glob("*.yaml") if not path.name.startswith(".") and path.name != "kustomization.yaml"
)


@functools.cache
def _kustomization() -> Manifest:
    (document,) = _documents(K8S / "kustomization.yaml")
    return document


@functools.cache
def _applied() -> tuple[Manifest, ...]:
    """Every object `kubectl apply -k k8s/` creates."""
    return tuple(obj for name in _kustomization()["resources"] for obj in _documents(K8S / name))


def _find(kind: str, name: str) -> Manifest:
    found = [obj for obj in _applied() if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in k8s/, found {len(found)}"
    return found[0]


def _config_map() -> dict[str, str]:
    data: dict[str, str] = _find("ConfigMap", "chatio-config")["data"]
    return data


def _secret_example() -> Manifest:
    (secret,) = _documents(SECRET_EXAMPLE)
    return secret


def _workloads() -> Iterator[Manifest]:
    """Every object that makes pods; a CronJob as the Job it makes."""
    for obj in _applied():
        if obj["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield obj
        elif obj["kind"] == "CronJob":
            yield {"kind": "Job", "metadata": obj["metadata"], "spec": obj["spec"]["jobTemplate"]["spec"]}


def _server_pod() -> Manifest:
    pod: Manifest = _find("Deployment", "chatio")["spec"]["template"]["spec"]
    return pod


def _server_container() -> Manifest:
    container: Manifest
    (container,) = _server_pod()["containers"]
    return container


def _env(container: Manifest) -> dict[str, Manifest]:
    return {item["name"]: item for item in container.get("env", [])}


def _from_secret(item: Manifest) -> bool:
    return "secretKeyRef" in item.get("valueFrom", {})


def _final_stage() -> list[tuple[str, str]]:
    """The Dockerfile's instructions after its last FROM, as (INSTRUCTION, arguments)."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions: list[tuple[str, str]] = []
    for line in joined.splitlines():
        word, _, args = line.strip().partition(" ")
        if word:
            instructions.append((word.upper(), args.strip()))
    start = max(index for index, (word, _args) in enumerate(instructions) if word == "FROM")
    return instructions[start + 1 :]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in _final_stage():
        for token in shlex.split(args) if word == "ENV" else []:
            key, _, value = token.partition("=")
            env[key] = value
    return env


def _production_environ() -> dict[str, str]:
    """The CHATIO_* variables the server container sees, as the kubelet would assemble them."""
    environ = {key: value for key, value in _image_env().items() if key.startswith("CHATIO_")}
    environ |= _config_map()
    secret = _secret_example()["stringData"]
    for name, item in _env(_server_container()).items():
        source = item.get("valueFrom", {})
        if _from_secret(item):
            environ[name] = secret[source["secretKeyRef"]["key"]]
        elif "fieldRef" in source:
            environ[name] = "chatio-7d9f8b6c5-x2x7q"  # what metadata.name looks like
        else:
            environ[name] = item["value"]
    return environ


def _production_settings() -> Settings:
    # The image's static directory does not exist on this machine; the repository's does.
    return load_settings(_production_environ() | {"CHATIO_STATIC_DIR": str(REPO / "static")})


def _secret_settings() -> set[str]:
    names = variable_names()
    hints = typing.get_type_hints(Settings)
    return {names[field] for field in names if Secret in typing.get_args(hints[field])}


# --- the manifests are valid Kubernetes objects and tidy YAML ---------------------------------------


def test_kustomization_applies_every_manifest_except_the_secret_example() -> None:
    kustomization = _kustomization()
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == NAMESPACE
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFEST_FILES if p != SECRET_EXAMPLE)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda path: path.name)
def test_manifest_matches_the_kubernetes_schema(path: Path, version: str) -> None:
    problems = []
    for obj in _documents(path):
        name = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            problems.append(f"{name}, at {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:  # only a warning in the package's CLI
            problems.append(f"{name}: {error.message}")
    # Failing outside the except clauses keeps jsonschema's dump of the whole schema out of the report.
    assert not problems, f"{path.name} is invalid for Kubernetes {version}:\n" + "\n".join(problems)


def test_schema_validation_is_strict() -> None:
    deployment = copy.deepcopy(_find("Deployment", "chatio"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_yamllint_passes() -> None:
    config = str(K8S / ".yamllint.yaml")
    command = [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable", "-c", config, str(K8S)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_namespaced_objects_live_in_the_chatio_namespace() -> None:
    for obj in [*_applied(), _secret_example()]:
        expected = None if obj["kind"] in CLUSTER_SCOPED else NAMESPACE
        assert obj["metadata"].get("namespace") == expected, f"{obj['kind']} {obj['metadata']['name']}"


# --- the settings the manifests give chatio are chatio's ---------------------------------------------


def test_every_chatio_variable_set_is_a_real_setting() -> None:
    known = set(variable_names().values())
    places = {
        "ConfigMap chatio-config": set(_config_map()),
        "secret.example.yaml": set(_secret_example()["stringData"]),
        "Dockerfile ENV": {key for key in _image_env() if key.startswith("CHATIO_")},
    }
    for workload in _workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            env = _env(container)
            named = {name for name in env if name.startswith("CHATIO_")}
            keys = {item["valueFrom"]["secretKeyRef"]["key"] for item in env.values() if _from_secret(item)}
            places[f"{workload['kind']} {workload['metadata']['name']}"] = named | keys
    for place, names in places.items():
        assert names <= known, f"{place} sets unknown settings {sorted(names - known)}"


@pytest.mark.parametrize("path", [*MANIFEST_FILES, K8S / "README.md", DOCKERFILE, DOCS], ids=lambda p: p.name)
def test_every_chatio_name_mentioned_is_a_real_setting(path: Path) -> None:
    mentioned = set(ANY_CHATIO_NAME.findall(path.read_text()))
    unknown = mentioned - set(variable_names().values())
    assert not unknown, f"{path.relative_to(REPO)} mentions unknown settings {sorted(unknown)}"


def test_every_setting_is_decided_for_production() -> None:
    decided = set(_production_environ())
    missing = set(variable_names().values()) - decided
    assert not missing, f"add {sorted(missing)} to k8s/configmap.yaml (or the Secret, if secret)"


def test_production_configuration_loads() -> None:
    settings = _production_settings()
    assert settings.host == "0.0.0.0"
    assert settings.mongodb_uri is not None
    assert settings.redis_url is not None


def test_production_turns_the_security_settings_on() -> None:
    settings = _production_settings()
    assert settings.allow_guests is False, "production admits accounts only"
    assert settings.jwt_secret is not None, "every pod must sign with the same key"
    assert settings.connect_rate_per_minute > 0 and settings.auth_rate_per_minute > 0
    assert settings.trusted_proxy_hops == 1, "behind the ingress controller"
    assert settings.cors_origins == (), "same-origin unless origins are listed"


def test_secrets_come_only_from_the_secret() -> None:
    secret = _secret_example()
    env = _env(_server_container())
    assert _secret_settings() == {
        "CHATIO_MONGODB_URI",
        "CHATIO_REDIS_URL",
        "CHATIO_JWT_SECRET",
        "CHATIO_MESSAGE_KEY",
    }
    for name in _secret_settings():
        assert name not in _config_map(), f"{name} is secret: it belongs in the Secret, not the ConfigMap"
        assert name in secret["stringData"]
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": name}


def test_server_container_gets_its_environment() -> None:
    pod = _server_pod()
    container = _server_container()
    assert _config_map()["CHATIO_HOST"] == "0.0.0.0"
    assert {"configMapRef": {"name": "chatio-config"}} in container["envFrom"]
    assert _env(container)["CHATIO_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Service links would add CHATIO_PORT=tcp://... and other CHATIO_* names, which chatio rejects.
    assert pod["enableServiceLinks"] is False


# --- the Deployment matches how the server listens, drains and shuts down ----------------------------


def test_probes_and_ports_match_the_server() -> None:
    settings = _production_settings()
    container = _server_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": settings.port}
    for probe, path in (("readinessProbe", READINESS_PATH), ("livenessProbe", LIVENESS_PATH)):
        action = container[probe]["httpGet"]
        assert action["path"] == path, probe
        assert ports.get(action["port"], action["port"]) == settings.port, probe
    # /readyz may spend CHECK_TIMEOUT_SECONDS on its backend checks before it answers 503.
    assert container["readinessProbe"]["timeoutSeconds"] > CHECK_TIMEOUT_SECONDS
    annotations = _find("Deployment", "chatio")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(settings.port)
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert ("EXPOSE", str(settings.port)) in _final_stage()


def test_termination_grace_covers_prestop_drain_and_shutdown() -> None:
    settings = _production_settings()
    pre_stop = _server_container()["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        sleep = float(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", command
        sleep = float(command[1])
    needed = sleep + settings.drain_delay_seconds + settings.shutdown_timeout_seconds
    assert _server_pod()["terminationGracePeriodSeconds"] > needed


def test_ingress_outlasts_the_engineio_ping_window() -> None:
    settings = _production_settings()
    window = settings.ping_interval_seconds + settings.ping_timeout_seconds
    annotations = _find("Ingress", "chatio")["metadata"]["annotations"]
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        timeout = float(annotations[f"nginx.ingress.kubernetes.io/{name}"])
        assert timeout >= TIMEOUT_MARGIN * window, f"{name} {timeout:g} s is not well above {window:g} s"
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert _nginx_size(body) >= settings.max_payload_bytes


def _nginx_size(text: str) -> int:
    """Bytes in an nginx size such as ``1m``."""
    match = re.fullmatch(r"(\d+)([kmg]?)", text.lower())
    assert match, f"not an nginx size: {text!r}"
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match[2]]


def test_ingress_service_and_deployment_are_wired_together() -> None:
    deployment = _find("Deployment", "chatio")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _find("Service", "chatio")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in {port["name"] for port in _server_container()["ports"]}
    (rule,) = _find("Ingress", "chatio")["spec"]["rules"]
    for path in rule["http"]["paths"]:
        assert path["backend"]["service"] == {"name": "chatio", "port": {"name": service_port["name"]}}


def test_autoscaler_and_disruption_budget_target_the_deployment() -> None:
    deployment = _find("Deployment", "chatio")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert "cpu" in _server_container()["resources"]["requests"], "CPU utilization needs a CPU request"
    hpa = _find("HorizontalPodAutoscaler", "chatio")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "chatio"}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = _find("PodDisruptionBudget", "chatio")["spec"]
    assert budget["selector"]["matchLabels"].items() <= pod_labels.items()


def test_workload_selectors_match_their_pods() -> None:
    for workload in _workloads():
        if workload["kind"] == "Job":
            continue
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), workload["metadata"]["name"]


# --- every pod is locked down ------------------------------------------------------------------------


@pytest.mark.parametrize("workload", list(_workloads()), ids=lambda w: f"{w['kind']}-{w['metadata']['name']}")
def test_pod_runs_locked_down(workload: Manifest) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    emptydirs = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
    for container in pod["containers"]:
        context = pod["securityContext"] | container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] > 0
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert "limits" in container["resources"] and "requests" in container["resources"]
        tmp = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
        assert tmp and tmp[0]["name"] in emptydirs, f"{container['name']}: /tmp must be an emptyDir"


def test_image_user_and_static_dir_match() -> None:
    users = [args for word, args in _final_stage() if word == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert _server_pod()["securityContext"]["runAsUser"] == int(uid)
    copies = {tuple(args.split()) for word, args in _final_stage() if word == "COPY"}
    static_dir = _image_env()["CHATIO_STATIC_DIR"]
    assert ("static/", static_dir.rstrip("/") + "/") in copies


# --- the data stores: names agree between the StatefulSet, the init Job and the Secret ---------------


def test_mongo_replica_set_members_agree() -> None:
    statefulset = _find("StatefulSet", "mongo")
    service = _find("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    (port,) = service["spec"]["ports"]
    (mongod,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert {"--replSet", "rs0", "--bind_ip_all"} <= set(mongod["args"])
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["volumeClaimTemplates"]
    pods = [f"{statefulset['metadata']['name']}-{index}" for index in range(statefulset["spec"]["replicas"])]
    members = [
        f"{pod}.{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local:{port['port']}" for pod in pods
    ]
    (initiate,) = _find("Job", "mongo-init")["spec"]["template"]["spec"]["containers"]
    assert _env(initiate)["MEMBERS"]["value"] == ",".join(members)
    uri = urlsplit(_secret_example()["stringData"]["CHATIO_MONGODB_URI"])
    assert uri.netloc.split(",") == members
    assert parse_qs(uri.query)["replicaSet"] == ["rs0"]


def test_redis_url_lists_every_node_of_the_redis_cluster() -> None:
    statefulset = _find("StatefulSet", "redis")
    service = _find("Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    port = next(port["port"] for port in service["spec"]["ports"] if port["name"] == "redis")
    assert statefulset["spec"]["replicas"] == 6  # three masters with a replica each
    nodes = [
        f"{statefulset['metadata']['name']}-{index}.{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local:{port}"
        for index in range(statefulset["spec"]["replicas"])
    ]
    url = _secret_example()["stringData"]["CHATIO_REDIS_URL"]
    assert url == "redis+cluster://" + ",".join(nodes)
    for job in (
        _find("Job", "redis-cluster-init"),
        _find("CronJob", "redis-cluster-repair")["spec"]["jobTemplate"],
    ):
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert _env(container)["NODES"]["value"] == ",".join(nodes)
        assert _env(container)["REPLICAS"]["value"] == "1"
    config = _find("ConfigMap", "redis-config")["data"]["redis.conf"]
    assert "cluster-enabled yes" in config and 'save ""' in config and "appendonly no" in config
    assert _production_settings().redis_fanout == "sharded"


def test_redis_nodes_spread_and_leave_one_at_a_time() -> None:
    pod = _find("StatefulSet", "redis")["spec"]["template"]
    (term,) = pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    budget = _find("PodDisruptionBudget", "redis")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def _selects(selector: Manifest, labels: Manifest) -> bool:
    """Whether a label selector (matchLabels and In/NotIn/Exists expressions) selects ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _ingress_policies(labels: Manifest) -> list[Manifest]:
    return [
        policy["spec"]
        for policy in _applied()
        if policy["kind"] == "NetworkPolicy"
        and "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        and _selects(policy["spec"]["podSelector"], labels)
    ]


def test_every_pod_that_serves_a_port_is_fenced_by_a_network_policy() -> None:
    for workload in _workloads():
        template = workload["spec"]["template"]
        if any(container.get("ports") for container in template["spec"]["containers"]):
            name = workload["metadata"]["name"]
            assert _ingress_policies(template["metadata"]["labels"]), (
                f"no NetworkPolicy selects {name}'s pods"
            )


def test_only_the_ingress_controller_and_prometheus_reach_chatio() -> None:
    """With CHATIO_TRUSTED_PROXY_HOPS=1 the last X-Forwarded-For entry is trusted: only the proxy that
    writes it (the ingress controller), and Prometheus for /metrics, may reach the pods' port."""
    assert _config_map()["CHATIO_TRUSTED_PROXY_HOPS"] == "1"
    labels = _find("Deployment", "chatio")["spec"]["template"]["metadata"]["labels"]
    (policy,) = _ingress_policies(labels)
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert "http" in {port["name"] for port in _server_container()["ports"]}
    peers = rule["from"]
    assert all(set(peer) == {"namespaceSelector", "podSelector"} for peer in peers), (
        "no ipBlock, no open peer"
    )
    assert _find("Ingress", "chatio")["spec"]["ingressClassName"] == "nginx"
    controller = {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
    prometheus = {"app.kubernetes.io/name": "prometheus"}
    namespaces = {"ingress-nginx": controller, "monitoring": prometheus}
    admitted = {
        namespace
        for peer in peers
        for namespace, pod_labels in namespaces.items()
        if _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
        and _selects(peer["podSelector"], pod_labels)
    }
    assert admitted == {"ingress-nginx", "monitoring"}
    # Nothing else: a chatio pod, a pod of another namespace, the ingress namespace's other pods.
    others = [("chatio", labels), ("default", {"app": "attacker"}), ("ingress-nginx", {"app": "other"})]
    for namespace, pod_labels in others:
        assert not any(
            _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
            and _selects(peer["podSelector"], pod_labels)
            for peer in peers
        ), f"{namespace} {pod_labels} reaches chatio"
