"""Assertions on the objects the chart renders: wiring, canaries, hardening, tracing, policy."""

from __future__ import annotations

import pytest

from tests.helm.chart import (
    CHART,
    RELEASE,
    Obj,
    containers,
    env_of,
    label_selector_matches,
    matrix,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    render_case,
    selects,
    upstreams,
)

MODEL_SERVICES = {"speech": 3001, "vision": 3002, "text": 3003}
CASES = sorted(matrix())


def workloads(objs: list[Obj]) -> list[Obj]:
    return of_kind(objs, "Deployment") + of_kind(objs, "Pod")


def container_named(deployment: Obj, name: str) -> Obj:
    return next(c for c in containers(deployment) if c["name"] == name)


# --- the gateway's upstreams file ------------------------------------------------------------


def test_default_upstreams_have_exactly_the_agreed_shape() -> None:
    assert upstreams(render()) == {
        "speech": {"stable": {"url": f"http://{RELEASE}-speech:3001"}},
        "vision": {"stable": {"url": f"http://{RELEASE}-vision:3002"}},
        "text": {"stable": {"url": f"http://{RELEASE}-text:3003"}},
    }


def test_vision_canary_weight_reaches_the_gateway_upstreams() -> None:
    objs = render_case("vision-canary")
    config = upstreams(objs)
    assert config["vision"]["canary"] == {
        "url": f"http://{RELEASE}-vision-canary:3002",
        "weight": 10,
        "shadow": False,
    }
    assert "canary" not in config["speech"] and "canary" not in config["text"]
    # The URL points at a real Service that selects the canary pods only.
    service = named(objs, "Service", f"{RELEASE}-vision-canary")
    assert service["spec"]["ports"][0]["port"] == 3002
    canary = named(objs, "Deployment", f"{RELEASE}-vision-canary")
    stable = named(objs, "Deployment", f"{RELEASE}-vision")
    assert selects(service["spec"]["selector"], pod_labels(canary))
    assert not selects(service["spec"]["selector"], pod_labels(stable))


@pytest.mark.parametrize("weight", [0, 37, 100])
def test_any_canary_weight_from_the_command_line_reaches_the_upstreams(weight: int) -> None:
    objs = render(sets=["text.canary.enabled=true", f"text.canary.weight={weight}"])
    assert upstreams(objs)["text"]["canary"]["weight"] == weight


def test_upstreams_file_is_accepted_by_the_gateways_own_parser() -> None:
    from gateway.upstreams.config import parse_upstreams

    for case in ("defaults", "vision-canary", "speech-shadow", "full"):
        parsed = parse_upstreams(upstreams(render_case(case)), source=case)
        assert parsed.speech.stable.url == f"http://{RELEASE}-speech:3001"
    shadow = parse_upstreams(upstreams(render_case("speech-shadow")))
    assert shadow.speech.canary is not None
    assert (shadow.speech.canary.shadow, shadow.speech.canary.weight) == (True, 100)


def test_speech_shadow_canary_runs_its_own_model() -> None:
    objs = render_case("speech-shadow")
    assert upstreams(objs)["speech"]["canary"] == {
        "url": f"http://{RELEASE}-speech-canary:3001",
        "weight": 100,
        "shadow": True,
    }
    stable = env_of(container_named(named(objs, "Deployment", f"{RELEASE}-speech"), "speech"))
    canary_deployment = named(objs, "Deployment", f"{RELEASE}-speech-canary")
    canary = env_of(container_named(canary_deployment, "speech"))
    assert (stable["MODGATE_VARIANT"], canary["MODGATE_VARIANT"]) == ("stable", "canary")
    assert (stable["MODGATE_SPEECH_MODEL"], canary["MODGATE_SPEECH_MODEL"]) == ("tiny.en", "base")
    assert "MODGATE_SPEECH_MODEL_PATH" not in stable
    assert canary["MODGATE_SPEECH_MODEL_PATH"] == "/models/speech/whisper-base"
    volumes = {v["name"]: v for v in pod_spec(canary_deployment)["volumes"]}
    assert volumes["weights"]["persistentVolumeClaim"] == {
        "claimName": "modgate-speech-weights",
        "readOnly": True,
    }


def test_model_image_weights_are_copied_by_an_init_container() -> None:
    objs = render_case("vision-canary")
    canary = named(objs, "Deployment", f"{RELEASE}-vision-canary")
    (init,) = pod_spec(canary)["initContainers"]
    assert init["image"] == "registry.example.com/modgate/vision-weights:2026.11"
    assert init["command"][-1] == "cp -R /models/. /weights/"
    main = container_named(canary, "vision")
    assert env_of(main)["MODGATE_VISION_CHECKPOINT"] == "/models/vision/ViT-B-32-modgate.safetensors"
    assert env_of(main)["MODGATE_VISION_ALLOW_UNCALIBRATED"] == "true"
    assert main["image"] == "modgate-vision:0.2.0-rc1"
    assert {"name": "weights", "mountPath": "/models/vision", "readOnly": True} in main["volumeMounts"]
    stable = named(objs, "Deployment", f"{RELEASE}-vision")
    assert "initContainers" not in pod_spec(stable)
    assert "MODGATE_VISION_CHECKPOINT" not in env_of(container_named(stable, "vision"))


# --- gateway canary --------------------------------------------------------------------------


def test_gateway_canary_shares_the_service_by_replica_ratio_and_routes_by_weight() -> None:
    objs = render_case("gateway-canary")
    stable = named(objs, "Deployment", f"{RELEASE}-gateway")
    canary = named(objs, "Deployment", f"{RELEASE}-gateway-canary")
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (3, 1)
    service = named(objs, "Service", f"{RELEASE}-gateway")
    assert selects(service["spec"]["selector"], pod_labels(stable))
    assert selects(service["spec"]["selector"], pod_labels(canary))
    assert container_named(canary, "gateway")["image"] == "modgate-gateway:0.2.0-rc1"
    assert env_of(container_named(canary, "gateway"))["MODGATE_GATEWAY_MAX_INFLIGHT"] == "4"
    assert "MODGATE_GATEWAY_MAX_INFLIGHT" not in env_of(container_named(stable, "gateway"))
    for track, deployment in (("stable", stable), ("canary", canary)):
        track_service = named(objs, "Service", f"{RELEASE}-gateway-{track}")
        assert selects(track_service["spec"]["selector"], pod_labels(deployment))
        other = canary if deployment is stable else stable
        assert not selects(track_service["spec"]["selector"], pod_labels(other))

    route = named(objs, "GRPCRoute", f"{RELEASE}-gateway")
    assert route["spec"]["parentRefs"] == [{"name": "edge", "namespace": "gateways", "sectionName": "grpc"}]
    backends = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert backends == {f"{RELEASE}-gateway-stable": 75, f"{RELEASE}-gateway-canary": 25}
    virtual_service = named(objs, "VirtualService", f"{RELEASE}-gateway")
    assert virtual_service["spec"]["hosts"] == [f"{RELEASE}-gateway"]
    weights = {d["destination"]["host"]: d["weight"] for d in virtual_service["spec"]["http"][0]["route"]}
    assert weights == {f"{RELEASE}-gateway-stable": 75, f"{RELEASE}-gateway-canary": 25}


def test_gateway_shadow_canary_gets_mirrored_traffic_only() -> None:
    objs = render_case("gateway-shadow")
    service = named(objs, "Service", f"{RELEASE}-gateway")
    canary = named(objs, "Deployment", f"{RELEASE}-gateway-canary")
    stable = named(objs, "Deployment", f"{RELEASE}-gateway")
    assert selects(service["spec"]["selector"], pod_labels(stable))
    assert not selects(service["spec"]["selector"], pod_labels(canary))

    route = named(objs, "GRPCRoute", f"{RELEASE}-gateway")
    # Mesh (GAMMA) mode: attached to the gateway Service itself.
    assert route["spec"]["parentRefs"][0]["kind"] == "Service"
    rule = route["spec"]["rules"][0]
    assert [b["name"] for b in rule["backendRefs"]] == [f"{RELEASE}-gateway-stable"]
    mirror = rule["filters"][0]["requestMirror"]
    assert (mirror["backendRef"]["name"], mirror["percent"]) == (f"{RELEASE}-gateway-canary", 50)
    http = named(objs, "VirtualService", f"{RELEASE}-gateway")["spec"]["http"][0]
    assert http["mirror"]["host"] == f"{RELEASE}-gateway-canary"
    assert http["mirrorPercentage"] == {"value": 50}
    assert [d["destination"]["host"] for d in http["route"]] == [f"{RELEASE}-gateway-stable"]


# --- labels and selectors --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_labels_and_selectors_are_consistent(case: str) -> None:
    objs = render_case(case)
    deployments = of_kind(objs, "Deployment")
    names = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names)), "duplicate object names"

    for d in deployments:
        assert selects(d["spec"]["selector"]["matchLabels"], pod_labels(d)), d["metadata"]["name"]
        others = [o for o in deployments if o is not d]
        assert not any(selects(d["spec"]["selector"]["matchLabels"], pod_labels(o)) for o in others), (
            f"{d['metadata']['name']}'s selector also matches another Deployment's pods"
        )
    for service in of_kind(objs, "Service"):
        selected = [d for d in deployments if selects(service["spec"]["selector"], pod_labels(d))]
        assert selected, f"Service {service['metadata']['name']} selects no pods"
        for d in selected:
            container_ports = {p["name"] for c in containers(d, init=False) for p in c.get("ports", [])}
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in container_ports, (service["metadata"]["name"], port)
    for d in deployments:
        assert any(selects(s["spec"]["selector"], pod_labels(d)) for s in of_kind(objs, "Service")), (
            f"no Service for {d['metadata']['name']}"
        )
    for pdb in of_kind(objs, "PodDisruptionBudget"):
        hits = [d for d in deployments if label_selector_matches(pdb["spec"]["selector"], pod_labels(d))]
        assert len(hits) == 1, f"PDB {pdb['metadata']['name']} matches {len(hits)} Deployments"
    for hpa in of_kind(objs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        deployment = named(objs, "Deployment", target["name"])
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    for policy in of_kind(objs, "NetworkPolicy"):
        assert any(label_selector_matches(policy["spec"]["podSelector"], pod_labels(d)) for d in deployments)
    for d in deployments:
        for constraint in pod_spec(d).get("topologySpreadConstraints", []):
            assert label_selector_matches(constraint["labelSelector"], pod_labels(d))


def test_every_deployment_has_a_pdb_and_autoscaling_when_enabled() -> None:
    objs = render_case("full")
    deployments = {d["metadata"]["name"] for d in of_kind(objs, "Deployment")}
    assert deployments == {
        f"{RELEASE}-{c}{suffix}" for c in ("gateway", *MODEL_SERVICES) for suffix in ("", "-canary")
    }
    pdbs = {p["metadata"]["name"]: p["spec"] for p in of_kind(objs, "PodDisruptionBudget")}
    assert set(pdbs) == deployments
    assert pdbs[f"{RELEASE}-gateway"] == {
        "minAvailable": 1,
        "selector": pdbs[f"{RELEASE}-gateway"]["selector"],
    }
    assert pdbs[f"{RELEASE}-speech"]["maxUnavailable"] == 1
    hpas = {h["metadata"]["name"]: h["spec"] for h in of_kind(objs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {f"{RELEASE}-gateway", f"{RELEASE}-speech"}
    metrics = {m["resource"]["name"]: m["resource"]["target"] for m in hpas[f"{RELEASE}-gateway"]["metrics"]}
    assert metrics == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    assert hpas[f"{RELEASE}-gateway"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


# --- hardening ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_every_workload_has_probes_resources_and_a_locked_down_security_context(case: str) -> None:
    for workload in workloads(render_case(case)):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{where}: {bound}"
        if workload["kind"] != "Deployment":
            continue
        for container in containers(workload, init=False):
            where = f"{name}/{container['name']}"
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{where}: no {probe}"
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert "/tmp" in mounts and not mounts["/tmp"].get("readOnly"), where
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where


def test_probes_match_each_process() -> None:
    objs = render()
    gateway = container_named(named(objs, "Deployment", f"{RELEASE}-gateway"), "gateway")
    assert gateway["livenessProbe"]["grpc"] == {"port": 50051, "service": ""}
    assert gateway["readinessProbe"]["grpc"] == {"port": 50051, "service": "modgate.v1.Moderation"}
    assert gateway["command"] == ["python", "-m", "gateway"]
    for component, port in MODEL_SERVICES.items():
        container = container_named(named(objs, "Deployment", f"{RELEASE}-{component}"), component)
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        startup = container["startupProbe"]
        assert startup["httpGet"] == {"path": "/readyz", "port": "http"}
        # Model loading gets minutes, not seconds.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, component
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        args = container["args"]
        assert args[:3] == ["bentoml", "serve", f"services.{component}.service:{component.title()}"]
        assert args[args.index("--port") + 1] == str(port)
        assert args[args.index("--host") + 1] == "0.0.0.0"


def test_tls_switches_gateway_probes_to_tcp_and_mounts_the_secrets() -> None:
    objs = render_case("full")
    deployment = named(objs, "Deployment", f"{RELEASE}-gateway")
    gateway = container_named(deployment, "gateway")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert gateway[probe]["tcpSocket"] == {"port": "grpc"}, probe
    env = env_of(gateway)
    assert env["MODGATE_GATEWAY_TLS_CERT_FILE"] == "/etc/modgate/tls/tls.crt"
    assert env["MODGATE_GATEWAY_TLS_KEY_FILE"] == "/etc/modgate/tls/tls.key"
    assert env["MODGATE_GATEWAY_TLS_CLIENT_CA_FILE"] == "/etc/modgate/client-ca/ca.crt"
    assert env["MODGATE_GATEWAY_AUTH_TOKENS_FILE"] == "/etc/modgate/auth/tokens.yaml"
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "modgate-gateway-tls"
    assert volumes["client-ca"]["secret"]["secretName"] == "modgate-client-ca"
    assert volumes["auth"]["secret"]["secretName"] == "modgate-gateway-auth"
    mounts = {m["name"]: m for m in gateway["volumeMounts"]}
    for name in ("tls", "client-ca", "auth", "media"):
        assert mounts[name]["readOnly"] is True, name
    assert mounts["media"]["mountPath"] == env["MODGATE_GATEWAY_MEDIA_ROOT"] == "/media"


def test_gpu_values_request_gpus_for_speech_and_vision_only() -> None:
    objs = render_case("gpu")
    for component in ("speech", "vision"):
        deployment = named(objs, "Deployment", f"{RELEASE}-{component}")
        container = container_named(deployment, component)
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert env_of(container)["MODGATE_DEVICE"] == "cuda"
        tolerations = pod_spec(deployment)["tolerations"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    speech = named(objs, "Deployment", f"{RELEASE}-speech")
    assert pod_spec(speech)["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    text = named(objs, "Deployment", f"{RELEASE}-text")
    assert "nvidia.com/gpu" not in container_named(text, "text")["resources"]["limits"]
    assert env_of(container_named(text, "text"))["MODGATE_DEVICE"] == "cpu"
    for component in MODEL_SERVICES:
        deployment = named(render(), "Deployment", f"{RELEASE}-{component}")
        assert env_of(container_named(deployment, component))["MODGATE_DEVICE"] == "cpu"


# --- tracing -----------------------------------------------------------------------------------


def test_tracing_values_reach_every_pod() -> None:
    from modgate.telemetry import TelemetryConfig

    objs = render_case("tracing", sets=["vision.canary.enabled=true", "gateway.canary.enabled=true"])
    pods = of_kind(objs, "Deployment")
    assert len(pods) == 6
    for deployment in pods:
        labels = pod_labels(deployment)
        component, variant = labels["app.kubernetes.io/component"], labels["modgate.io/variant"]
        for container in containers(deployment, init=False):
            env = env_of(container)
            assert env["MODGATE_TRACING_ENABLED"] == "true"
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc:4317"
            assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
            assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
            assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
            assert env["OTEL_SERVICE_NAME"] == f"modgate-{component}"
            attributes = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
            assert attributes["service.version"] == container["image"].rsplit(":", 1)[1]
            assert attributes["modgate.variant"] == variant == env["MODGATE_VARIANT"]
            assert attributes["deployment.environment"] == "staging"
            # $(POD_NAME) expands only when POD_NAME is defined earlier in the list.
            names = [e["name"] for e in container["env"]]
            assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
            # What the shared telemetry module makes of this environment.
            config = TelemetryConfig.from_env({k: v for k, v in env.items() if v is not None})
            assert (config.enabled, config.protocol, config.sample_ratio) == (True, "grpc", 0.25)
            assert config.endpoint == "http://otel-collector.observability.svc:4317"
            assert config.variant == variant


def test_tracing_off_by_default_is_off_in_every_pod() -> None:
    from modgate.telemetry import TelemetryConfig

    for deployment in of_kind(render(), "Deployment"):
        for container in containers(deployment, init=False):
            env = {k: v for k, v in env_of(container).items() if v is not None}
            assert TelemetryConfig.from_env(env).enabled is False


# --- network policy ----------------------------------------------------------------------------


def test_network_policy_lets_only_the_gateway_reach_model_services() -> None:
    objs = render_case("networkpolicy", sets=["gateway.canary.enabled=true"])
    deployments = of_kind(objs, "Deployment")
    policy = named(objs, "NetworkPolicy", f"{RELEASE}-model-services")
    protected = [
        d for d in deployments if label_selector_matches(policy["spec"]["podSelector"], pod_labels(d))
    ]
    assert {pod_labels(d)["app.kubernetes.io/component"] for d in protected} == set(MODEL_SERVICES)
    (rule,) = policy["spec"]["ingress"]
    assert sorted(p["port"] for p in rule["ports"]) == sorted(MODEL_SERVICES.values())
    pod_peers = [peer["podSelector"] for peer in rule["from"] if "podSelector" in peer]
    allowed = [d for d in deployments if any(label_selector_matches(s, pod_labels(d)) for s in pod_peers)]
    assert {d["metadata"]["name"] for d in allowed} == {f"{RELEASE}-gateway", f"{RELEASE}-gateway-canary"}
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in rule[
        "from"
    ]

    gateway_policy = named(objs, "NetworkPolicy", f"{RELEASE}-gateway")
    grpc_rule, metrics_rule = gateway_policy["spec"]["ingress"]
    assert grpc_rule["ports"] == [{"protocol": "TCP", "port": 50051}]
    assert metrics_rule["ports"] == [{"protocol": "TCP", "port": 9464}]
    assert grpc_rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "product-backend"
    }
    # The `helm test` pod may still run its health check.
    test_pod = of_kind(objs, "Pod")[0]
    assert any(
        label_selector_matches(peer["podSelector"], test_pod["metadata"]["labels"])
        for peer in grpc_rule["from"]
        if "podSelector" in peer
    )
    assert metrics_rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }


def test_no_network_policy_unless_enabled() -> None:
    assert of_kind(render(), "NetworkPolicy") == []


# --- policy, config files and the helm test ----------------------------------------------------


def test_policy_configmap_serves_the_packaged_policy_to_every_pod() -> None:
    import yaml

    from modgate.policy import parse_policy

    objs = render_case("full")
    data = named(objs, "ConfigMap", f"{RELEASE}-policies")["data"]
    assert set(data) == {"default.yaml", "multilingual.yaml", "strict.yaml"}
    # The packaged copy (kept equal to modgate/policies/default.yaml by test_build_files.py).
    assert data["default.yaml"] == (CHART / "files/policies/default.yaml").read_text()
    assert parse_policy(yaml.safe_load(data["default.yaml"])).name == "default"
    for deployment in of_kind(objs, "Deployment"):
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        assert volumes["policies"]["configMap"]["name"] == f"{RELEASE}-policies"
        for container in containers(deployment, init=False):
            env = env_of(container)
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert mounts["policies"] == env["MODGATE_POLICY_DIR"] == "/etc/modgate/policies"


def test_policy_change_rolls_every_deployment() -> None:
    before = {d["metadata"]["name"]: d for d in of_kind(render(), "Deployment")}
    after = of_kind(render(sets=["policy.files.extra\\.yaml=name: extra"]), "Deployment")
    for deployment in after:
        old = before[deployment["metadata"]["name"]]["spec"]["template"]["metadata"]["annotations"]
        new = deployment["spec"]["template"]["metadata"]["annotations"]
        assert old["checksum/policies"] != new["checksum/policies"], deployment["metadata"]["name"]


def test_canary_weight_change_rolls_only_the_gateway() -> None:
    def annotations(weight: int) -> dict[str, dict[str, str]]:
        objs = render(sets=["vision.canary.enabled=true", f"vision.canary.weight={weight}"])
        return {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]
            for d in of_kind(objs, "Deployment")
        }

    low, high = annotations(10), annotations(50)
    assert low[f"{RELEASE}-gateway"] != high[f"{RELEASE}-gateway"]
    assert low[f"{RELEASE}-vision-canary"] == high[f"{RELEASE}-vision-canary"]


def test_helm_test_pod_checks_grpc_health_through_the_gateway_service() -> None:
    (pod,) = of_kind(render(), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/grpc-ecosystem/grpc-health-probe:v")
    assert f"-addr={RELEASE}-gateway:50051" in container["args"]
    assert "-service=modgate.v1.Moderation" in container["args"]
    assert "-tls" not in container["args"]

    (mtls_pod,) = of_kind(render_case("full"), "Pod")
    args = mtls_pod["spec"]["containers"][0]["args"]
    assert {"-tls", "-tls-client-cert=/etc/modgate/client/tls.crt"} <= set(args)
    assert mtls_pod["spec"]["volumes"][0]["secret"]["secretName"] == "modgate-test-client"


def test_images_come_from_values_and_registry() -> None:
    objs = render_case("full")
    images = {c["image"] for d in of_kind(objs, "Deployment") for c in containers(d, init=False)}
    assert images == {f"registry.example.com/modgate/modgate-{c}:0.1.0" for c in ("gateway", *MODEL_SERVICES)}
    for deployment in of_kind(objs, "Deployment"):
        assert pod_spec(deployment)["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod_spec(deployment)["serviceAccountName"] == "modgate-runtime"


def _bank_parts(deployment: Obj) -> tuple[Obj | None, Obj | None, str | None]:
    """The banks volume, its mount and MODGATE_BANK_DIR of a Deployment's main container."""
    (main,) = list(containers(deployment, init=False))
    volume = next((v for v in pod_spec(deployment)["volumes"] if v["name"] == "banks"), None)
    mount = next((m for m in main.get("volumeMounts", []) if m["name"] == "banks"), None)
    return volume, mount, env_of(main).get("MODGATE_BANK_DIR")


def test_no_bank_directory_unless_enabled() -> None:
    for deployment in of_kind(render_case("defaults"), "Deployment"):
        assert _bank_parts(deployment) == (None, None, None), deployment["metadata"]["name"]


def test_bank_directory_is_mounted_read_only_into_gateway_and_vision_only() -> None:
    objs = render_case("full")
    matching = {
        f"{RELEASE}-gateway",
        f"{RELEASE}-gateway-canary",
        f"{RELEASE}-vision",
        f"{RELEASE}-vision-canary",
    }
    seen = set()
    for deployment in of_kind(objs, "Deployment"):
        name = deployment["metadata"]["name"]
        volume, mount, bank_dir = _bank_parts(deployment)
        if name not in matching:
            assert (volume, mount, bank_dir) == (None, None, None), name
            continue
        seen.add(name)
        assert volume == {
            "name": "banks",
            "persistentVolumeClaim": {"claimName": "modgate-banks", "readOnly": True},
        }, name
        assert mount == {
            "name": "banks",
            "mountPath": "/var/lib/modgate/banks",
            "readOnly": True,
            "subPath": "banks",
        }, name
        assert bank_dir == mount["mountPath"], name
        (main,) = list(containers(deployment, init=False))
        assert env_of(main)["MODGATE_BANK_RELOAD_INTERVAL_S"] == "5", name
    assert seen == matching & {d["metadata"]["name"] for d in of_kind(objs, "Deployment")}
    assert {f"{RELEASE}-gateway", f"{RELEASE}-vision"} <= seen


def test_bank_directory_from_any_volume_source() -> None:
    objs = render(
        sets=(
            "banks.enabled=true",
            "banks.volume.configMap.name=banks",
            "banks.volume.configMap.items[0].key=known-current",
            "banks.volume.configMap.items[0].path=known/CURRENT",
        )
    )
    for name in (f"{RELEASE}-gateway", f"{RELEASE}-vision"):
        volume, mount, bank_dir = _bank_parts(named(objs, "Deployment", name))
        assert volume == {
            "name": "banks",
            "configMap": {"name": "banks", "items": [{"key": "known-current", "path": "known/CURRENT"}]},
        }
        assert mount is not None and "subPath" not in mount and bank_dir == "/var/lib/modgate/banks"
