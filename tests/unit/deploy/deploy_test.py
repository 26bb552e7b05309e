#!/usr/bin/env python3
"""Checks the files under deploy/ and the top-level Dockerfile.

No container engine or cluster runs in the test environment, so this checks
what can be checked without one:
  - promtool check config / check rules / test rules pass, and every alert
    has a firing and a not-firing unit test, `for:`, a severity and both
    annotations;
  - every YAML and JSON file under deploy/ parses; the Kubernetes manifests
    are consistent with each other (kustomization, ports, probes, volumes,
    ServiceMonitor selection) and their config passes rcptguardd
    --check_config;
  - every metric name (and label value) that the rules and the Grafana
    dashboard use is in the exposition of a real ServerMetrics;
  - the Dockerfile's build stage installs exactly deploy/packages-build.txt,
    and its runtime stage exactly the Debian packages that hold the shared
    libraries `ldd` resolves for the binaries it copies;
  - the systemd units pass systemd-analyze verify.

Environment (set by tests/unit/deploy/CMakeLists.txt): RG_SOURCE_DIR,
RG_METRICS_DUMP (the rg_metrics_dump binary), RG_RCPTGUARDD and
RG_RCPTGUARD_CLI (the binaries the image ships; tests that need them skip
when they are not built). Needs python3-yaml and, for the promtool checks,
Debian's prometheus package.

Usage: deploy_test.py [-v] [TestCase.test_name]   (--list prints the names)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

SOURCE_DIR = os.environ.get(
    "RG_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
RULES = os.path.join(DEPLOY, "prometheus", "rules", "rcptguard.rules.yml")
RULES_TEST = os.path.join(DEPLOY, "prometheus", "rules", "rcptguard.rules.test.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "rcptguard-dashboard.json")
KUBERNETES = os.path.join(DEPLOY, "kubernetes")
DOCKERFILE = os.path.join(SOURCE_DIR, "Dockerfile")

# Where the image's build stage puts each binary it copies.
IMAGE_BINARIES = {
    "/build/server/rcptguardd": "RG_RCPTGUARDD",
    "/build/clients/rcptguard": "RG_RCPTGUARD_CLI",
}


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          **kwargs)


def promtool():
    return shutil.which("promtool")


def load_yaml_documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def alert_rules():
    groups = load_yaml_documents(RULES)[0]["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def recording_rules():
    groups = load_yaml_documents(RULES)[0]["groups"]
    return [r for g in groups for r in g["rules"] if "record" in r]


def dashboard_expressions():
    with open(DASHBOARD, encoding="utf-8") as f:
        dashboard = json.load(f)
    exprs = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    exprs.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            exprs.append(("annotation " + annotation["name"], annotation["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            exprs.append(("variable " + variable["name"], query))
    return exprs


# ---- PromQL scanning (enough for our own expressions) ----

OUR_METRIC = re.compile(r"\b((?:rcptguard|process)_[a-zA-Z0-9_]+)\b")
RECORDED = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+)\b")
SELECTOR = re.compile(r"\b((?:rcptguard|process)_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def strip_strings(expr):
    """Drops string literals and template text so names inside them (label
    values, legends) are not taken for metric names."""
    return re.sub(r'"[^"]*"', '""', expr)


def parse_exposition(text):
    """Returns {sample name: [ {label: value} ]} from the text format."""
    series = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+$")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        if not m:
            raise AssertionError("unparsable exposition line: " + line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                 m.group(3) or ""))
        series.setdefault(m.group(1), []).append(labels)
    return series


class PromtoolTest(unittest.TestCase):

    def setUp(self):
        if not promtool():
            self.skipTest("promtool not installed (Debian package: prometheus)")

    def test_check_config(self):
        result = run([promtool(), "check", "config",
                      os.path.join(DEPLOY, "prometheus", "prometheus.yml")])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_check_rules(self):
        result = run([promtool(), "check", "rules", RULES])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS", result.stdout)

    def test_rules_unit_tests(self):
        result = run([promtool(), "test", "rules", RULES_TEST])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class AlertRulesTest(unittest.TestCase):

    def test_every_alert_is_complete(self):
        alerts = alert_rules()
        self.assertGreaterEqual(len(alerts), 10)
        names = [a["alert"] for a in alerts]
        self.assertEqual(len(names), len(set(names)), "duplicate alert names")
        for alert in alerts:
            with self.subTest(alert=alert["alert"]):
                self.assertIn("for", alert)
                self.assertIn(alert.get("labels", {}).get("severity"),
                              ("warning", "critical"))
                annotations = alert.get("annotations", {})
                self.assertTrue(annotations.get("summary"))
                self.assertTrue(annotations.get("description"))

    def test_issue_alerts_exist(self):
        # The alerts issue 5 asks for, by what they watch.
        exprs = {a["alert"]: a["expr"] for a in alert_rules()}
        joined = "\n".join(exprs.values())
        for needle in ("rcptguard_directory_snapshot_age_seconds",
                       'result="refused"', "rcptguard_directory_addresses",
                       "absent(rcptguard_directory_addresses",
                       "rcptguard_harvest_domains_under_attack",
                       "rcptguard_harvest_penalty_boxes_active",
                       "rcptguard:recipients_unknown_share:rate1h_offset1d",
                       "rcptguard:grpc_server_errors:ratio_rate5m",
                       "rcptguard:grpc_request_duration_seconds:p99_rate5m"):
            self.assertIn(needle, joined + "\n" + "\n".join(
                r["expr"] for r in recording_rules()))

    def test_every_alert_has_firing_and_quiet_tests(self):
        tests = load_yaml_documents(RULES_TEST)[0]["tests"]
        firing, quiet = set(), set()
        for test in tests:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
        for alert in alert_rules():
            with self.subTest(alert=alert["alert"]):
                self.assertIn(alert["alert"], firing, "no firing test")
                self.assertIn(alert["alert"], quiet, "no not-firing test")


class ParseTest(unittest.TestCase):

    def test_yaml_and_json_parse(self):
        seen = 0
        for root, _, files in os.walk(DEPLOY):
            for name in files:
                path = os.path.join(root, name)
                with self.subTest(path=os.path.relpath(path, SOURCE_DIR)):
                    if name.endswith((".yml", ".yaml")):
                        load_yaml_documents(path)
                        seen += 1
                    elif name.endswith(".json"):
                        with open(path, encoding="utf-8") as f:
                            json.load(f)
                        seen += 1
        self.assertGreaterEqual(seen, 14)


class KubernetesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.objects = {}
        for name in sorted(os.listdir(KUBERNETES)):
            if name.endswith(".yaml") and name != "kustomization.yaml":
                for doc in load_yaml_documents(os.path.join(KUBERNETES, name)):
                    cls.objects[(doc["kind"], doc["metadata"]["name"])] = doc

    def get(self, kind, name):
        self.assertIn((kind, name), self.objects)
        return self.objects[(kind, name)]

    def test_kustomization_lists_every_manifest(self):
        kustomization = load_yaml_documents(
            os.path.join(KUBERNETES, "kustomization.yaml"))[0]
        manifests = sorted(n for n in os.listdir(KUBERNETES)
                           if n.endswith(".yaml") and n != "kustomization.yaml")
        self.assertEqual(sorted(kustomization["resources"]), manifests)

    def test_every_kind_is_there(self):
        kinds = {kind for kind, _ in self.objects}
        for kind in ("Deployment", "Service", "ConfigMap", "Secret",
                     "PodDisruptionBudget", "HorizontalPodAutoscaler",
                     "ServiceMonitor", "CronJob", "PersistentVolumeClaim"):
            self.assertIn(kind, kinds)
        for (kind, name), doc in self.objects.items():
            self.assertIn("apiVersion", doc, f"{kind}/{name}")

    def containers(self, pod_spec):
        return {c["name"]: c for c in pod_spec["containers"]}

    def test_deployment(self):
        deployment = self.get("Deployment", "rcptguard")
        pod = deployment["spec"]["template"]["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        for key, value in deployment["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(key), value)
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertGreater(pod["securityContext"]["runAsUser"], 0)
        server = self.containers(pod)["rcptguardd"]
        self.assertTrue(server["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(server["securityContext"]["allowPrivilegeEscalation"])
        ports = {p["name"]: p["containerPort"] for p in server["ports"]}
        self.assertEqual(ports, {"grpc": 50051, "metrics": 9464, "health": 50052})
        # Probes cannot do mutual TLS: they use the plaintext health-only
        # port, which the config must serve.
        config = self.get("ConfigMap", "rcptguard-config")["data"]["rcptguard.textproto"]
        self.assertRegex(config, r'(?m)^\s*health_listen_address:\s*"0\.0\.0\.0:50052"')
        self.assertRegex(config, r'(?m)^\s*tls \{')
        # Prometheus scrapes from outside the pod; the default is loopback.
        self.assertRegex(config, r'(?m)^\s*listen_address:\s*"0\.0\.0\.0:9464"')
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(server[probe]["grpc"]["port"], ports["health"], probe)
        self.assertIn("cpu", server["resources"]["requests"])  # for the HPA
        mounts = {m["name"]: m for m in server["volumeMounts"]}
        self.assertTrue(mounts["snapshot"]["readOnly"])
        volumes = {v["name"]: v for v in pod["volumes"]}
        self.assertEqual(volumes["snapshot"]["persistentVolumeClaim"]["claimName"],
                         "rcptguard-snapshot")
        self.assertEqual(volumes["config"]["configMap"]["name"], "rcptguard-config")
        self.assertEqual(volumes["key"]["secret"]["secretName"], "rcptguard-key")
        self.assertEqual(volumes["tls"]["secret"]["secretName"], "rcptguard-tls")
        for path in re.findall(r'(?<![a-z_])(?:cert_file|key_file|client_ca_file):\s*"([^"]+)"', config):
            self.assertTrue(path.startswith(mounts["tls"]["mountPath"] + "/"), path)

    def test_snapshot_paths_agree(self):
        config = self.get("ConfigMap", "rcptguard-config")["data"]["rcptguard.textproto"]
        snapshot = re.search(r'snapshot_file:\s*"([^"]+)"', config).group(1)
        key = re.search(r'fingerprint_key_file:\s*"([^"]+)"', config).group(1)
        pvc = self.get("PersistentVolumeClaim", "rcptguard-snapshot")
        self.assertIn("ReadWriteMany", pvc["spec"]["accessModes"])
        for pod, container in (
                (self.get("Deployment", "rcptguard")["spec"]["template"]["spec"], "rcptguardd"),
                (self.get("CronJob", "rcptguard-snapshot")["spec"]["jobTemplate"]
                 ["spec"]["template"]["spec"], "snapshot")):
            mounts = {m["name"]: m["mountPath"]
                      for m in self.containers(pod)[container]["volumeMounts"]}
            self.assertTrue(snapshot.startswith(mounts["snapshot"] + "/"), container)
            self.assertTrue(key.startswith(mounts["key"] + "/"), container)
            self.assertEqual(mounts["config"], "/etc/rcptguard")

    def test_cronjob_builds_a_snapshot(self):
        cronjob = self.get("CronJob", "rcptguard-snapshot")
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        snapshot = self.containers(pod)["snapshot"]
        self.assertEqual(snapshot["command"][:4],
                         ["/usr/bin/rcptguard", "snapshot", "build",
                          "--config=/etc/rcptguard/rcptguard.textproto"])
        self.assertTrue(any(a.startswith("--from_ldap=") for a in snapshot["command"]))
        self.assertEqual(cronjob["spec"]["concurrencyPolicy"], "Forbid")
        mounts = {m["name"]: m for m in snapshot["volumeMounts"]}
        self.assertFalse(mounts["snapshot"].get("readOnly", False))

    def test_services_and_monitor(self):
        service = self.get("Service", "rcptguard")
        headless = self.get("Service", "rcptguard-headless")
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        monitor = self.get("ServiceMonitor", "rcptguard")
        selector = monitor["spec"]["selector"]["matchLabels"]

        def selects(svc):
            return all(svc["metadata"]["labels"].get(k) == v for k, v in selector.items())

        # Scraped once, through the Service whose name becomes job="rcptguard".
        self.assertTrue(selects(service))
        self.assertFalse(selects(headless))
        port_names = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            self.assertIn(endpoint["port"], port_names)
        pod_labels = self.get("Deployment", "rcptguard")["spec"]["template"]["metadata"]["labels"]
        for svc in (service, headless):
            for key, value in svc["spec"]["selector"].items():
                self.assertEqual(pod_labels.get(key), value)
        for obj in (self.get("PodDisruptionBudget", "rcptguard"),):
            for key, value in obj["spec"]["selector"]["matchLabels"].items():
                self.assertEqual(pod_labels.get(key), value)
        hpa = self.get("HorizontalPodAutoscaler", "rcptguard")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], "rcptguard")
        self.assertEqual(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu")

    def test_configs_pass_check_config(self):
        rcptguardd = os.environ.get("RG_RCPTGUARDD", "")
        if not os.access(rcptguardd, os.X_OK):
            self.skipTest("rcptguardd not built")
        config = self.get("ConfigMap", "rcptguard-config")["data"]["rcptguard.textproto"]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rcptguard.textproto")
            with open(path, "w", encoding="utf-8") as f:
                f.write(config)
            for config_path in (path, os.path.join(DEPLOY, "container",
                                                   "rcptguard.textproto")):
                with self.subTest(config=config_path):
                    result = run([rcptguardd, "--check_config",
                                  "--config=" + config_path])
                    self.assertEqual(result.returncode, 0,
                                     result.stdout + result.stderr)


class RedisComponentTest(unittest.TestCase):
    """deploy/kubernetes/components/redis (docs/harvest-shared.md)."""

    DIR = os.path.join(KUBERNETES, "components", "redis")

    @classmethod
    def setUpClass(cls):
        cls.objects = {}
        for name in sorted(os.listdir(cls.DIR)):
            if name.endswith(".yaml") and name != "kustomization.yaml":
                for doc in load_yaml_documents(os.path.join(cls.DIR, name)):
                    cls.objects[(doc["kind"], doc["metadata"]["name"])] = doc

    def test_component_lists_every_manifest(self):
        k = load_yaml_documents(os.path.join(self.DIR, "kustomization.yaml"))[0]
        self.assertEqual(k["kind"], "Component")
        listed = sorted(k["resources"] + [p["path"] for p in k["patches"]])
        manifests = sorted(n for n in os.listdir(self.DIR)
                           if n.endswith(".yaml") and n != "kustomization.yaml")
        self.assertEqual(listed, manifests)

    def test_one_redis_without_persistence(self):
        sts = self.objects[("StatefulSet", "rcptguard-redis")]
        self.assertEqual(sts["spec"]["replicas"], 1)
        container = sts["spec"]["template"]["spec"]["containers"][0]
        self.assertTrue(container["image"].startswith("redis:7"))
        args = container["args"]
        self.assertEqual(args[args.index("--save") + 1], "")
        self.assertEqual(args[args.index("--appendonly") + 1], "no")
        self.assertIn("--aclfile", args)
        self.assertEqual(args[args.index("--maxmemory-policy") + 1], "noeviction")

    def test_only_rcptguardd_reaches_redis(self):
        policy = self.objects[("NetworkPolicy", "rcptguard-redis")]["spec"]
        sts = self.objects[("StatefulSet", "rcptguard-redis")]
        self.assertEqual(policy["podSelector"]["matchLabels"],
                         sts["spec"]["selector"]["matchLabels"])
        self.assertEqual(sorted(policy["policyTypes"]), ["Egress", "Ingress"])
        self.assertEqual(policy["egress"], [])
        self.assertEqual(len(policy["ingress"]), 1)
        peers = policy["ingress"][0]["from"]
        self.assertEqual(len(peers), 1)
        deployment = load_yaml_documents(os.path.join(KUBERNETES, "deployment.yaml"))[0]
        self.assertEqual(peers[0]["podSelector"]["matchLabels"],
                         deployment["spec"]["selector"]["matchLabels"])

    def test_acl_limits_the_user(self):
        secret = self.objects[("Secret", "rcptguard-redis")]["stringData"]
        acl = secret["users.acl"]
        self.assertIn("user default off", acl)
        self.assertRegex(acl, r"user rcptguard on >\S+ ~rcptguard:\* ")
        self.assertIn("-@all", acl)
        patch = load_yaml_documents(os.path.join(self.DIR, "deployment-patch.yaml"))[0]
        container = patch["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["name"], "rcptguardd")
        self.assertEqual(container["volumeMounts"][0]["mountPath"],
                         "/etc/rcptguard/redis")


class MetricNamesTest(unittest.TestCase):
    """The rules and the dashboard use only what ServerMetrics exports."""

    @classmethod
    def setUpClass(cls):
        dump = os.environ.get("RG_METRICS_DUMP", "")
        if not os.access(dump, os.X_OK):
            raise unittest.SkipTest("rg_metrics_dump not built")
        result = run([dump])
        if result.returncode != 0:
            raise AssertionError(result.stderr)
        cls.series = parse_exposition(result.stdout)
        cls.recorded = {r["record"] for r in recording_rules()}

    def check_expression(self, where, expr):
        stripped = strip_strings(expr)
        for name in set(OUR_METRIC.findall(stripped)):
            self.assertTrue(name in self.series,
                            f"{where}: {name} is not exported by ServerMetrics")
        for name in set(RECORDED.findall(stripped)):
            self.assertIn(name, self.recorded,
                          f"{where}: {name} is not a recording rule")
        # Label values matched by = or =~ must exist for the metric.
        for name, matchers in SELECTOR.findall(expr):
            if name not in self.series:
                continue
            for label, op, value in MATCHER.findall(matchers):
                if label in ("job", "instance", "le") or op in ("!=", "!~"):
                    continue
                if "$" in value:
                    continue  # a dashboard variable
                values = {s.get(label) for s in self.series[name]}
                wanted = value.split("|") if op == "=~" else [value]
                for v in wanted:
                    self.assertIn(v, values,
                                  f'{where}: {name}{{{label}="{v}"}} never exported')

    def test_rules_use_exported_metrics(self):
        for rule in alert_rules() + recording_rules():
            where = rule.get("alert") or rule.get("record")
            with self.subTest(rule=where):
                self.check_expression(where, rule["expr"])

    def test_rule_tests_use_exported_metrics(self):
        tests = load_yaml_documents(RULES_TEST)[0]["tests"]
        for test in tests:
            for series in test.get("input_series", []):
                name = series["series"].split("{")[0]
                if name == "up" or not OUR_METRIC.match(name):
                    continue
                with self.subTest(test=test["name"], series=name):
                    self.assertTrue(name in self.series,
                                    f"{name} is not exported by ServerMetrics")

    def test_dashboard_uses_exported_metrics(self):
        exprs = dashboard_expressions()
        self.assertGreater(len(exprs), 30)
        for where, expr in exprs:
            with self.subTest(panel=where):
                self.check_expression(where, expr)

    def test_dashboard_covers_every_metric(self):
        used = set()
        for _, expr in dashboard_expressions():
            used |= set(OUR_METRIC.findall(strip_strings(expr)))
        families = set()
        for name in self.series:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[:-len(suffix)] + "_bucket" in self.series:
                    name = name[:-len(suffix)]
            families.add(name)
        used_families = set()
        for name in used:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix):
                    name = name[:-len(suffix)]
            used_families.add(name)
        self.assertEqual(sorted(families - used_families), [],
                         "metrics with no dashboard panel")


# ---- Dockerfile ----

def dockerfile_stages():
    """Returns {stage name: [instructions]}, continuation lines joined but
    comment lines kept (marked) so lists can be split by them."""
    stages, current = {}, None
    with open(DOCKERFILE, encoding="utf-8") as f:
        lines = f.read().splitlines()
    instruction = []
    for line in lines + [""]:
        stripped = line.strip()
        if instruction:
            if stripped.startswith("#"):
                instruction.append(stripped)
                continue
            instruction.append(stripped.rstrip("\\").strip())
            if not stripped.endswith("\\"):
                stages[current].append(instruction)
                instruction = []
            continue
        if not stripped or stripped.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", stripped, re.IGNORECASE)
        if m:
            current = m.group(1).lower()
            stages[current] = []
            continue
        instruction = [stripped.rstrip("\\").strip()]
        if not stripped.endswith("\\"):
            stages[current].append(instruction)
            instruction = []
    return stages


def apt_packages(instruction):
    """Packages of the `apt-get install` in one RUN instruction, grouped by
    the `# group: NAME` comment lines inside it ("" before any)."""
    groups, group, installing = {}, "", False
    for part in instruction:
        m = re.match(r"#\s*group:\s*(\S+)", part)
        if m:
            group = m.group(1)
            continue
        if part.startswith("#"):
            continue
        for word in part.split():
            if word == "install":
                installing = True
                continue
            if not installing:
                continue
            if word in ("&&", ";"):
                installing = False
                continue
            if word.startswith("-"):
                continue
            groups.setdefault(group, []).append(word)
    return groups


def install_instruction(stage):
    runs = [i for i in dockerfile_stages()[stage]
            if i[0].startswith("RUN") and "apt-get install" in " ".join(i)]
    assert len(runs) == 1, f"want one apt-get install in stage {stage}"
    return runs[0]


class DockerfileTest(unittest.TestCase):

    def test_build_stage_installs_packages_build_txt(self):
        with open(os.path.join(DEPLOY, "packages-build.txt"), encoding="utf-8") as f:
            wanted = [l.split("#")[0].strip() for l in f]
        wanted = sorted(p for p in wanted if p)
        got = sorted(p for ps in apt_packages(install_instruction("build")).values()
                     for p in ps)
        self.assertEqual(got, wanted)

    def test_image_basics(self):
        with open(DOCKERFILE, encoding="utf-8") as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^FROM debian:12 AS build$")
        self.assertRegex(text, r"(?m)^FROM debian:12 AS runtime$")
        self.assertRegex(text, r"(?m)^USER 10001:10001$")
        self.assertRegex(text, r"(?m)^EXPOSE 50051 50052 9464$")
        # The HEALTHCHECK asks the plaintext health-only port the baked-in
        # config serves (the gRPC port wants a client certificate).
        self.assertIn('"--server=127.0.0.1:50052"', text)
        baked = open(os.path.join(DEPLOY, "container", "rcptguard.textproto")).read()
        self.assertIn('health_listen_address: "0.0.0.0:50052"', baked)
        # EXPOSE 9464 only works if metrics listen beyond loopback.
        self.assertRegex(baked, r'(?m)^\s*listen_address: "0\.0\.0\.0:9464"')
        self.assertIn('ENTRYPOINT ["/usr/bin/rcptguardd", '
                      '"--config=/etc/rcptguard/rcptguard.textproto"]', text)
        self.assertRegex(text, r'HEALTHCHECK .*\n?.*"/usr/bin/rcptguard", "health"')
        copied = re.findall(r"(?m)^COPY --from=build (.+) /usr/bin/$", text)
        self.assertEqual(sorted(copied[0].split()), sorted(IMAGE_BINARIES))

    def test_runtime_libraries_match_ldd(self):
        groups = apt_packages(install_instruction("runtime"))
        listed = sorted(groups.get("libraries", []))
        self.assertTrue(listed, "no '# group: libraries' in the runtime stage")
        if not shutil.which("dpkg"):
            self.skipTest("dpkg not available")
        libraries = set()
        for image_path, env in IMAGE_BINARIES.items():
            binary = os.environ.get(env, "")
            if not os.access(binary, os.X_OK):
                self.skipTest(f"{os.path.basename(image_path)} not built")
            result = run(["ldd", binary])
            self.assertEqual(result.returncode, 0, result.stderr)
            for line in result.stdout.splitlines():
                m = re.search(r"=>\s+(/\S+)", line)
                # A sanitizer build (scripts/test.sh --asan) links the
                # sanitizer runtimes, which no image ships.
                if m and not re.search(r"/lib(a|ub|t|l)san\.so",
                                       m.group(1)):
                    libraries.add(m.group(1))
        # One dpkg -S for all (it is slow per call); a path dpkg does not
        # know as given (/lib vs /usr/lib, symlinks) is retried resolved.
        owners = self.dpkg_owners(sorted(libraries))
        unknown = sorted(p for p in libraries if p not in owners)
        resolved = {p: os.path.realpath(p) for p in unknown}
        owners_resolved = self.dpkg_owners(sorted(set(resolved.values())))
        needed = {owners[p] for p in owners}
        for path in unknown:
            owner = owners_resolved.get(resolved[path])
            self.assertIsNotNone(owner, f"no Debian package holds {path}")
            needed.add(owner)
        self.assertEqual(listed, sorted(needed),
                         "runtime stage libraries differ from ldd: "
                         f"missing {sorted(needed - set(listed))}, "
                         f"extra {sorted(set(listed) - needed)}")


    @staticmethod
    def dpkg_owners(paths):
        """{path: package} for the paths dpkg knows."""
        if not paths:
            return {}
        out = run(["dpkg", "-S"] + paths)
        owners = {}
        for line in out.stdout.splitlines():
            package, _, path = line.partition(": ")
            if path in paths:
                owners[path] = package.split(":")[0].split(",")[0].strip()
        return owners


class SystemdTest(unittest.TestCase):

    def test_units_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze not installed")
        unit_dir = os.path.join(DEPLOY, "systemd")
        units = [os.path.join(unit_dir, n) for n in sorted(os.listdir(unit_dir))
                 if n.endswith((".service", ".timer"))]
        self.assertEqual(len(units), 3)
        result = run([analyze, "verify"] + units)
        problems = [l for l in (result.stdout + result.stderr).splitlines()
                    if l.strip()
                    # The binaries and the user exist only once installed.
                    and "is not executable" not in l
                    and "not found" not in l.lower()]
        self.assertEqual(problems, [])

    def test_server_hardening(self):
        with open(os.path.join(DEPLOY, "systemd", "rcptguardd.service"),
                  encoding="utf-8") as f:
            text = f.read()
        for line in ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                     "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                     "SystemCallFilter=@system-service",
                     "ReadOnlyPaths=/var/lib/rcptguard/snapshot",
                     "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(line, text)
        self.assertRegex(text, r"(?m)^RestrictAddressFamilies=")
        self.assertRegex(text, r"(?m)^(User=rcptguard|DynamicUser=yes)$")
        with open(os.path.join(DEPLOY, "systemd", "rcptguard-snapshot.timer"),
                  encoding="utf-8") as f:
            timer = f.read()
        self.assertIn("OnCalendar=*:0/5", timer)
        self.assertRegex(timer, r"(?m)^RandomizedDelaySec=")


def main():
    if "--list" in sys.argv:
        loader = unittest.TestLoader()
        for case in loader.loadTestsFromModule(sys.modules[__name__]):
            for test in case:
                print(test.id().split(".", 1)[1])
        return 0
    names = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbosity = 2 if "-v" in sys.argv else 1
    suite = (unittest.TestLoader().loadTestsFromNames(names, sys.modules[__name__])
             if names else
             unittest.TestLoader().loadTestsFromModule(sys.modules[__name__]))
    result = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    if not result.wasSuccessful():
        return 1
    # ctest: SKIP_RETURN_CODE when the one test asked for was skipped.
    if names and result.testsRun == len(result.skipped):
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
