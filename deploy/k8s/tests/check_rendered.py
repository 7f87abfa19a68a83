#!/usr/bin/env python3
"""Checks a rendered overlay for what the platform requires beyond the Kubernetes schema
(kubernetes-validate) and generic hardening (checkov): that the pieces fit together.

    check_rendered.py RENDERED.yaml [--secrets SECRETS.yaml]

- every platform Deployment: readiness on /readyz and liveness on /healthz, requests and
  limits, rolling updates that never go below the desired count (maxUnavailable 0), a grace
  period longer than the preStop pause plus the service's drain, a PodDisruptionBudget, and
  either an HPA (then no fixed `replicas`, which an apply would reset) or a replica count;
  spread constraints when it can have several replicas;
- the HorizontalPodAutoscalers the issue asks for exist and point at Deployments;
- secrets only by reference: no secret-looking variable with an inline value, no URL with a
  password inline; every referenced Secret and key exists (in the render, or for an overlay
  whose Secrets are created outside it, in --secrets), every ConfigMap too, every volume
  a container mounts, every named port a probe uses, every container a resourceFieldRef
  names;
- discovery: every `http://<name>:<port>` a container is given names a Service of the render
  with that port; the gateway's instance groups are headless Services;
- every Service selects pods and targets a port they declare;
- NetworkPolicies: a default deny for ingress and egress; every selector selects something;
  no egress rule without a destination; the only egress outside the cluster (ipBlock) belongs
  to scraper-service; the only ingress from anywhere belongs to the gateway;
- every image has a fixed tag or digest; every namespaced object has a namespace.

Exits 1 and prints one line per problem; prints a summary line and exits 0 otherwise.
"""

import argparse
import re
import sys

import yaml

HPA_REQUIRED = {"gateway", "app-service", "book-service", "borrowings-function"}
# The gateway's instance groups: DNS names whose every address is one instance.
HEADLESS_UPSTREAMS = ("APP_SERVICE_URLS", "BOOK_SERVICE_URLS", "BOOK_SERVICE_BACKUP_URLS")
# Names of values that are secrets (SECRET_KEY, *_PASSWORD, *_TOKEN, …), and of URLs, which
# may carry credentials.
SECRET_WORD = re.compile(r"(^|_)(SECRET|PASSWORD|PASS|TOKEN|PRIVATE_KEY)$|(^|_)(SECRET|PASSWORD)_")
SECRET_NAME = re.compile(SECRET_WORD.pattern + r"|_URLS?$")
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]+@")
INTERNAL_URL = re.compile(r"^https?://([a-z0-9-]+):(\d+)(/.*)?$")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                  "StorageClass", "CustomResourceDefinition"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


class Problems:
    def __init__(self):
        self.items = []

    def add(self, obj, message):
        meta = obj.get("metadata", {}) if obj else {}
        where = f"{obj.get('kind')}/{meta.get('name')}" if obj else "-"
        self.items.append(f"{where}: {message}")


def selects(selector, labels):
    """A LabelSelector (matchLabels + matchExpressions) against a label map."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def pod_labels(obj):
    return obj["spec"]["template"]["metadata"].get("labels", {})


def containers(obj):
    spec = pod_spec(obj)
    return (spec.get("initContainers") or []) + spec["containers"]


def env_value(container, name):
    for item in container.get("env") or []:
        if item["name"] == name:
            return item.get("value")
    return None


def drain_seconds(container, config):
    """How long the service drains after SIGTERM, from its own settings."""
    gateway = env_value(container, "GATEWAY_GRACE_SECONDS")
    if gateway is not None:
        return int(gateway)
    scraper = env_value(container, "SHUTDOWN_GRACE_MS")
    if scraper is not None:
        return int(scraper) / 1000
    return int(config.get("SHUTDOWN_GRACE_MS", "10000")) / 1000


def pre_stop_seconds(container):
    command = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
    if command and command[0] == "sleep":
        return int(command[1])
    return 0


def check_deployments(objs, problems, config_maps):
    deployments = [o for o in objs if o["kind"] == "Deployment"
                   and o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "platform"]
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in objs if o["kind"] == "HorizontalPodAutoscaler"}
    pdbs = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    names = {d["metadata"]["name"] for d in deployments}
    for target in sorted(HPA_REQUIRED - set(hpas)):
        problems.add(None, f"no HorizontalPodAutoscaler for {target}")
    for target, hpa in hpas.items():
        if target not in names:
            problems.add(hpa, f"scaleTargetRef {target} is not a Deployment of the render")
    for dep in deployments:
        name = dep["metadata"]["name"]
        spec = dep["spec"]
        main = pod_spec(dep)["containers"][0]
        probes = {kind: (main.get(kind) or {}).get("httpGet", {}).get("path")
                  for kind in ("readinessProbe", "livenessProbe")}
        if probes["readinessProbe"] != "/readyz":
            problems.add(dep, "readinessProbe is not GET /readyz")
        if probes["livenessProbe"] != "/healthz":
            problems.add(dep, "livenessProbe is not GET /healthz")
        for side in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (main.get("resources") or {}).get(side, {}):
                    problems.add(dep, f"no {side}.{resource}")
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        if spec.get("strategy", {}).get("type") != "RollingUpdate" or rolling.get("maxUnavailable") != 0:
            problems.add(dep, "rolling update must have maxUnavailable: 0")
        config = {}
        for source in main.get("envFrom") or []:
            ref = (source.get("configMapRef") or {}).get("name")
            config.update(config_maps.get(ref, {}))
        needed = pre_stop_seconds(main) + drain_seconds(main, config)
        grace = pod_spec(dep).get("terminationGracePeriodSeconds", 30)
        if grace <= needed:
            problems.add(dep, f"terminationGracePeriodSeconds {grace} <= preStop + drain ({needed:g} s)")
        if not any(selects(p["spec"]["selector"], pod_labels(dep)) for p in pdbs):
            problems.add(dep, "no PodDisruptionBudget selects its pods")
        if name in hpas:
            if "replicas" in spec:
                problems.add(dep, "has `replicas` although an HPA scales it (an apply would reset it)")
            many = hpas[name]["spec"].get("maxReplicas", 1) > 1
        else:
            if "replicas" not in spec:
                problems.add(dep, "neither an HPA nor `replicas`")
            many = spec.get("replicas", 1) > 1
        if many and not (pod_spec(dep).get("topologySpreadConstraints")
                         or (pod_spec(dep).get("affinity") or {}).get("podAntiAffinity")):
            problems.add(dep, "several replicas but no topology spread or anti-affinity")


def check_references(objs, problems, external_secrets):
    secrets = {o["metadata"]["name"]: set((o.get("data") or {}) | (o.get("stringData") or {}))
               for o in objs if o["kind"] == "Secret"}
    secrets.update(external_secrets)
    config_maps = {o["metadata"]["name"] for o in objs if o["kind"] == "ConfigMap"}

    def secret_key(obj, name, key, optional):
        if name not in secrets:
            if not optional:
                problems.add(obj, f"Secret {name} does not exist")
        elif key is not None and key not in secrets[name] and not optional:
            problems.add(obj, f"Secret {name} has no key {key}")

    for cm in (o for o in objs if o["kind"] == "ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if SECRET_WORD.search(key) or URL_WITH_PASSWORD.match(value or ""):
                problems.add(cm, f"{key} looks secret: ConfigMaps are not for secrets")
    for obj in (o for o in objs if o["kind"] in WORKLOADS):
        for volume in pod_spec(obj).get("volumes") or []:
            if "secret" in volume:
                secret_key(obj, volume["secret"]["secretName"], None, volume["secret"].get("optional", False))
            if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                problems.add(obj, f"ConfigMap {volume['configMap']['name']} does not exist")
        names = {c["name"] for c in containers(obj)}
        volumes = {v["name"] for v in pod_spec(obj).get("volumes") or []} | \
            {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates") or []}
        for container in containers(obj):
            for mount in container.get("volumeMounts") or []:
                if mount["name"] not in volumes:
                    problems.add(obj, f"{container['name']} mounts {mount['name']}, which is not a volume")
            ports = {p.get("name") for p in container.get("ports") or []}
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(kind) or {}
                port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problems.add(obj, f"{container['name']} {kind} uses port {port}, which it does not declare")
            for item in container.get("env") or []:
                field = (item.get("valueFrom") or {}).get("resourceFieldRef")
                if field and field.get("containerName", container["name"]) not in names:
                    problems.add(obj, f"{item['name']}: resourceFieldRef names container "
                                      f"{field['containerName']}, which is not in the pod")
            for source in container.get("envFrom") or []:
                if "secretRef" in source:
                    secret_key(obj, source["secretRef"]["name"], None, source["secretRef"].get("optional", False))
                if "configMapRef" in source and source["configMapRef"]["name"] not in config_maps:
                    problems.add(obj, f"ConfigMap {source['configMapRef']['name']} does not exist")
            for item in container.get("env") or []:
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    secret_key(obj, ref["name"], ref["key"], ref.get("optional", False))
                value = item.get("value")
                if value is None:
                    continue
                if URL_WITH_PASSWORD.match(value):
                    problems.add(obj, f"{item['name']} has a password inline")
                elif SECRET_NAME.search(item["name"]) and not INTERNAL_URL.match(value) \
                        and not value.startswith("https://") and not value.startswith("/"):
                    problems.add(obj, f"{item['name']} looks secret but has an inline value")


def check_services(objs, problems):
    workloads = [o for o in objs if o["kind"] in WORKLOADS]
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    for svc in services.values():
        selected = [w for w in workloads if selects({"matchLabels": svc["spec"].get("selector", {})}, pod_labels(w))]
        if not selected:
            problems.add(svc, "selects no pods")
            continue
        declared = {p.get("name") for w in selected for c in containers(w) for p in c.get("ports") or []} | \
                   {p["containerPort"] for w in selected for c in containers(w) for p in c.get("ports") or []}
        for port in svc["spec"]["ports"]:
            if port.get("targetPort", port["port"]) not in declared:
                problems.add(svc, f"targetPort {port.get('targetPort')} is not a port of its pods")
    for obj in workloads:
        for container in containers(obj):
            for item in container.get("env") or []:
                value = item.get("value") or ""
                for url in value.split(","):
                    match = INTERNAL_URL.match(url.strip())
                    if not match:
                        continue
                    host, port = match.group(1), int(match.group(2))
                    svc = services.get(host)
                    if svc is None:
                        problems.add(obj, f"{item['name']}: no Service {host}")
                        continue
                    if port not in {p["port"] for p in svc["spec"]["ports"]}:
                        problems.add(obj, f"{item['name']}: Service {host} has no port {port}")
                    if item["name"] in HEADLESS_UPSTREAMS and svc["spec"].get("clusterIP") != "None":
                        problems.add(obj, f"{item['name']}: Service {host} is not headless, so the "
                                          "gateway would see one address instead of every instance")


def check_network_policies(objs, problems):
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    pods = [(o["metadata"]["name"], pod_labels(o)) for o in objs if o["kind"] in WORKLOADS]
    default_deny = [p for p in policies if p["spec"]["podSelector"] == {}
                    and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                    and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    if not default_deny:
        problems.add(None, "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")

    def selected(selector):
        return [name for name, labels in pods if selects(selector, labels)]

    for policy in policies:
        spec = policy["spec"]
        targets = selected(spec["podSelector"])
        if not targets:
            problems.add(policy, "podSelector selects no pod")
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                peers = rule.get(peers_key)
                if not peers:
                    if direction == "egress":
                        problems.add(policy, "an egress rule without `to` allows every destination")
                    elif set(targets) != {"gateway"}:
                        problems.add(policy, f"ingress from anywhere for {targets}: only the gateway is public")
                    continue
                for peer in peers:
                    if "ipBlock" in peer:
                        if direction == "egress" and set(targets) != {"scraper-service"}:
                            problems.add(policy, f"egress outside the cluster for {targets}: only scraper-service may")
                        if direction == "ingress" and set(targets) != {"gateway"}:
                            problems.add(policy, f"ingress from outside for {targets}: only the gateway is public")
                    elif "podSelector" in peer and "namespaceSelector" not in peer:
                        if not selected(peer["podSelector"]):
                            problems.add(policy, f"{direction} peer {peer['podSelector']} selects no pod")


def check_images_and_namespaces(objs, problems):
    namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] not in CLUSTER_SCOPED}
    if None in namespaces or len(namespaces) != 1:
        problems.add(None, f"namespaced objects must share one namespace, found {sorted(map(str, namespaces))}")
    for obj in (o for o in objs if o["kind"] in WORKLOADS):
        for container in containers(obj):
            image = container["image"]
            tag = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
                problems.add(obj, f"image {image} has no fixed tag")


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rendered")
    parser.add_argument("--secrets", help="Secrets created outside the overlay (names and keys)")
    args = parser.parse_args()
    objs = load(args.rendered)
    external = {}
    if args.secrets:
        for secret in load(args.secrets):
            external[secret["metadata"]["name"]] = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
    config_maps = {o["metadata"]["name"]: o.get("data") or {} for o in objs if o["kind"] == "ConfigMap"}
    problems = Problems()
    check_deployments(objs, problems, config_maps)
    check_references(objs, problems, external)
    check_services(objs, problems)
    check_network_policies(objs, problems)
    check_images_and_namespaces(objs, problems)
    for item in problems.items:
        print(f"   {item}")
    kinds = {}
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"   {len(objs)} objects ({summary}): {len(problems.items)} problems")
    return 1 if problems.items else 0


if __name__ == "__main__":
    sys.exit(main())
