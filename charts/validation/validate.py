"""Checks of rendered chart manifests beyond the core Kubernetes schemas.

Run by scripts/check-charts.sh after `helm template` and kubernetes-validate:

- ServiceMonitor and PrometheusRule objects against the prometheus-operator
  CRD schemas in crds/ (strict: unknown fields are errors, as kubeconform's
  -strict does), and every alert expression parsed as PromQL;
- the chart's own rules: standard labels on every object, security contexts,
  resources and probes on every long-running container, every `${NAME}` in
  an inlet YAML provided by the environment of the containers that read it,
  Service, PodDisruptionBudget and ServiceMonitor selectors that match what
  they are meant to select;
- with --inlet-bin, every component's rendered inlet YAML checked by
  `inlet validate`. A file whose only errors are top-level sections that
  the binary does not know yet (PENDING_SECTIONS: services still being
  written) is reported as pending, not failed; it is checked for real as
  soon as the binary knows the section.

Usage: validate.py --crds DIR [--inlet-bin PATH] RENDERED.yaml...
Prints every problem as `file: kind/name: problem` and exits 1 if any.
"""

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import promql_parser
import yaml

WORKLOADS = {"Deployment", "StatefulSet", "Job"}
REQUIRED_LABELS = ["helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of"]
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
# Top-level sections of services still being written; `inlet validate` of a
# build that lacks them refuses them as unknown fields.
PENDING_SECTIONS = {"metastore", "compaction"}
UNKNOWN_TOP_LEVEL = re.compile(r"^error: [^:]+:\d+:\d+: (\w+): unknown field `(\w+)`")


def strict(schema):
    """Returns the schema with additionalProperties: false wherever an object
    lists its properties and allows nothing else explicitly."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def load_crd_schemas(directory):
    schemas = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(directory, name)) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    # metadata is checked by the API server's ObjectMeta, not the CRD.
                    schema["properties"]["metadata"] = {"type": "object"}
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


class Checker:
    def __init__(self, crds, inlet_bin):
        self.crds = crds
        self.inlet_bin = inlet_bin
        self.problems = []
        self.validated_configs = 0
        self.seen_configs = set()
        self.pending = {}  # component -> sections the binary does not know

    def problem(self, where, msg):
        self.problems.append(f"{where}: {msg}")

    def check_file(self, path):
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        base = os.path.basename(path)
        objects = {}
        for d in docs:
            objects.setdefault(d["kind"], []).append(d)
        for d in docs:
            where = f"{base}: {d['kind']}/{d['metadata']['name']}"
            self.check_labels(where, d)
            key = (d.get("apiVersion"), d["kind"])
            if key in self.crds:
                for e in sorted(jsonschema.Draft7Validator(self.crds[key]).iter_errors(d), key=str):
                    path_s = ".".join(str(p) for p in e.absolute_path)
                    self.problem(where, f"{path_s}: {e.message}")
            elif d.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                self.problem(where, "no CRD schema in crds/ for this kind")
            if d["kind"] == "PrometheusRule":
                self.check_rules(where, d)
            if d["kind"] in WORKLOADS:
                self.check_workload(where, d, objects)
        self.check_selectors(base, objects)

    def check_labels(self, where, d):
        labels = d["metadata"].get("labels") or {}
        missing = [label for label in REQUIRED_LABELS if label not in labels]
        if missing:
            self.problem(where, f"missing labels {missing}")

    def check_rules(self, where, d):
        names = set()
        for group in d["spec"]["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                try:
                    promql_parser.parse(rule["expr"])
                except Exception as e:  # the parser raises ValueError with its message
                    self.problem(where, f"rule {name}: PromQL does not parse: {e}: {rule['expr']!r}")
                if "alert" in rule:
                    if name in names:
                        self.problem(where, f"alert {name} defined twice")
                    names.add(name)
                    if "severity" not in (rule.get("labels") or {}):
                        self.problem(where, f"alert {name}: no severity label")
                    if "summary" not in (rule.get("annotations") or {}):
                        self.problem(where, f"alert {name}: no summary annotation")

    def check_workload(self, where, d, objects):
        pod = d["spec"]["template"]["spec"]
        long_running = d["kind"] != "Job"
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            self.problem(where, "pod securityContext.runAsNonRoot is not true")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            self.problem(where, "pod seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            self.problem(where, "automountServiceAccountToken is not false (inlet needs no API access)")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        rendered_cms = {o["metadata"]["name"]: o for o in objects.get("ConfigMap", [])}
        annotations = d["spec"]["template"]["metadata"].get("annotations") or {}
        containers = [(c, False) for c in pod.get("initContainers") or []] + [(c, True) for c in pod["containers"]]
        all_ports = set()
        for c, main in containers:
            cw = f"{where}: container {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("readOnlyRootFilesystem") is not True:
                self.problem(cw, "readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                self.problem(cw, "allowPrivilegeEscalation is not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                self.problem(cw, "capabilities do not drop ALL")
            res = c.get("resources") or {}
            for r in ("cpu", "memory"):
                if r not in (res.get("requests") or {}):
                    self.problem(cw, f"no {r} request")
            if "memory" not in (res.get("limits") or {}):
                self.problem(cw, "no memory limit")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
            all_ports.update(ports.values())
            if long_running and main:
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in c:
                        self.problem(cw, f"no {probe}")
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        self.problem(cw, f"{probe} uses port {port!r}, not a port of the container")
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
            if "/tmp" not in mounts:
                self.problem(cw, "no writable /tmp mounted (the root file system is read-only)")
            cm_volume = volumes.get(mounts.get("/etc/inlet", ""), {})
            cm_name = (cm_volume.get("configMap") or {}).get("name")
            if not cm_name:
                self.problem(cw, "no inlet configuration mounted at /etc/inlet")
                continue
            if cm_name not in rendered_cms:
                self.problem(cw, f"mounts ConfigMap {cm_name}, which the chart does not render")
                continue
            if c.get("args", [])[-2:] != ["--config", "/etc/inlet/inlet.yaml"] and "/etc/inlet/inlet.yaml" not in c.get("args", []):
                self.problem(cw, "args do not pass --config /etc/inlet/inlet.yaml")
            self.check_inlet_config(cw, rendered_cms[cm_name], c)
        port = annotations.get("prometheus.io/port")
        if port is not None and int(port) not in all_ports:
            self.problem(where, f"prometheus.io/port {port} is not a container port")

    def check_inlet_config(self, where, cm, container):
        text = cm["data"]["inlet.yaml"]
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as e:
            self.problem(where, f"ConfigMap {cm['metadata']['name']}: inlet.yaml does not parse: {e}")
            return
        env = {e["name"] for e in container.get("env") or []}
        has_env_from = bool(container.get("envFrom"))
        for name, default in ENV_REF.findall(text):
            if name not in env and not default and not has_env_from:
                self.problem(where, f"inlet.yaml uses ${{{name}}}, which the container's env does not set")
        component = cm["metadata"]["labels"].get("app.kubernetes.io/component")
        if self.inlet_bin and text not in self.seen_configs:
            self.seen_configs.add(text)
            self.inlet_validate(where, component, text)

    def inlet_validate(self, where, component, text):
        env = dict(os.environ)
        for name, _ in ENV_REF.findall(text):
            # Secrets the chart injects at run time; a placeholder of the
            # right shape, since `inlet validate` checks URLs' schemes.
            value = "mysql://inlet:placeholder@db:3306/inlet" if name.endswith("DATABASE_URL") else f"placeholder-{name.lower()}"
            env.setdefault(name, value)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(text)
            f.flush()
            r = subprocess.run([self.inlet_bin, "validate", "--config", f.name], env=env,
                               capture_output=True, text=True)
        if r.returncode != 0:
            errors = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("error:")]
            unknown = [UNKNOWN_TOP_LEVEL.match(line) for line in errors]
            if errors and all(m and m.group(1) == m.group(2) and m.group(1) in PENDING_SECTIONS for m in unknown):
                self.pending.setdefault(component, set()).update(m.group(1) for m in unknown)
                return
        self.validated_configs += 1
        if r.returncode != 0:
            self.problem(where, "`inlet validate` refuses the rendered inlet.yaml:\n"
                         + (r.stdout + r.stderr).replace(f.name, "inlet.yaml").strip()
                         + "\n--- inlet.yaml ---\n" + text)

    def check_selectors(self, base, objects):
        def matches(selector, labels):
            return all(labels.get(k) == v for k, v in (selector or {}).items())

        pods = [(w, w["spec"]["template"]["metadata"]["labels"]) for kind in ("Deployment", "StatefulSet")
                for w in objects.get(kind, [])]
        for svc in objects.get("Service", []):
            where = f"{base}: Service/{svc['metadata']['name']}"
            targets = [w for w, labels in pods if matches(svc["spec"].get("selector"), labels)]
            if len(targets) != 1:
                self.problem(where, f"selects {len(targets)} workloads, expected 1")
                continue
            ports = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
            for p in svc["spec"]["ports"]:
                if isinstance(p.get("targetPort"), str) and p["targetPort"] not in ports:
                    self.problem(where, f"targetPort {p['targetPort']} is no container port of the workload")
        for pdb in objects.get("PodDisruptionBudget", []):
            where = f"{base}: PodDisruptionBudget/{pdb['metadata']['name']}"
            if not [w for w, labels in pods if matches(pdb["spec"]["selector"]["matchLabels"], labels)]:
                self.problem(where, "selects no workload")
        for sts in objects.get("StatefulSet", []):
            names = {s["metadata"]["name"] for s in objects.get("Service", [])}
            if sts["spec"].get("serviceName") not in names:
                self.problem(f"{base}: StatefulSet/{sts['metadata']['name']}", "serviceName is not a rendered Service")
        for sm in objects.get("ServiceMonitor", []):
            where = f"{base}: ServiceMonitor/{sm['metadata']['name']}"
            svcs = [s for s in objects.get("Service", []) if matches(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
            if len(svcs) != 1:
                self.problem(where, f"selects {len(svcs)} Services, expected 1")
                continue
            ports = {p["name"] for p in svcs[0]["spec"]["ports"]}
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in ports:
                    self.problem(where, f"endpoint port {ep.get('port')} is not a port of Service {svcs[0]['metadata']['name']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crds", required=True)
    ap.add_argument("--inlet-bin")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    checker = Checker(load_crd_schemas(args.crds), args.inlet_bin)
    for path in args.files:
        checker.check_file(path)
    for p in checker.problems:
        print(p)
    if checker.problems:
        print(f"{len(checker.problems)} problem(s)")
        return 1
    note = ""
    if args.inlet_bin:
        note = f", {checker.validated_configs} inlet.yaml accepted by `inlet validate`"
        if checker.pending:
            pending = "; ".join(f"{c}: {', '.join(sorted(s))}" for c, s in sorted(checker.pending.items()))
            note += f"; pending, sections this inlet does not know yet: {pending}"
    print(f"{len(args.files)} rendered files ok{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
