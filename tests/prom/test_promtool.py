"""Debian's promtool on what the exporter serves (both formats) and on the README's scrape
configuration and alert rules, which are run on synthetic series with `promtool test rules`."""
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.environ.get("README") or os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                  "README.md")
OM = "application/openmetrics-text;version=1.0.0"

pytestmark = pytest.mark.skipif(not shutil.which("promtool"),
                                reason="promtool is not installed (Debian package prometheus)")


def get(addr, accept=None):
    req = urllib.request.Request("http://%s/metrics" % addr)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.headers["Content-Type"], r.read()


def promtool(*args, stdin=None, cwd=None):
    return subprocess.run(["promtool"] + list(args), input=stdin, capture_output=True,
                          cwd=cwd, timeout=60)


@pytest.mark.parametrize("group", [None, "pid", "comm", "cgroup", "user"])
def test_text_format_passes_promtool_lint(synth, group):
    s = synth(*(["--group-by", group] if group else []))
    ctype, body = get(s.addr)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    r = promtool("check", "metrics", stdin=body)
    # promtool lints names, units, HELP and TYPE; it is silent when all is well
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        (r.stdout + r.stderr).decode(errors="replace")
    assert b"# UNIT" not in body and b"# EOF" not in body


@pytest.mark.parametrize("group", [None, "comm"])
def test_openmetrics_passes_promtool_parser(synth, tmp_path, group):
    s = synth(*(["--group-by", group] if group else []))
    ctype, body = get(s.addr, OM)
    assert ctype == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert body.endswith(b"# EOF\n") and body.count(b"# EOF") == 1
    # promtool's strict OpenMetrics parser is the one behind backfilling, which wants a
    # timestamp on every sample: add one (a sample line ends with its value)
    ts = int(time.time()) - 60
    lines = [ln if ln.startswith(b"#") else ln + b" %d" % ts for ln in body.split(b"\n") if ln]
    src = tmp_path / "in.om"
    src.write_bytes(b"\n".join(lines) + b"\n")
    r = promtool("tsdb", "create-blocks-from", "openmetrics", str(src), str(tmp_path / "blocks"))
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
    # and the parser does reject what is not OpenMetrics (no # EOF)
    src.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    r = promtool("tsdb", "create-blocks-from", "openmetrics", str(src), str(tmp_path / "b2"))
    assert r.returncode != 0


def readme_yaml_blocks():
    """The ```yaml blocks of the README's Prometheus section: {"config": ..., "rules": ...}."""
    with open(README) as f:
        text = f.read()
    start = text.index("## Prometheus")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```yaml\n(.*?)```", text[start:end], re.S)
    out = {}
    for b in blocks:
        out["config" if "scrape_configs:" in b else "rules"] = b
    assert set(out) == {"config", "rules"}, "the README's Prometheus section lost a block"
    return out


@pytest.fixture
def readme_files(tmp_path):
    blocks = readme_yaml_blocks()
    (tmp_path / "prometheus.yml").write_text(blocks["config"])
    (tmp_path / "mprof-rules.yml").write_text(blocks["rules"])
    return tmp_path


def test_readme_config_and_rules_check(readme_files):
    r = promtool("check", "config", "prometheus.yml", cwd=readme_files)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert b"4 rules found" in r.stdout, r.stdout.decode()
    r = promtool("check", "rules", "mprof-rules.yml", cwd=readme_files)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


GIB = 1024 ** 3
MIB = 1024 ** 2

RULE_TESTS = """
rule_files: [mprof-rules.yml]
evaluation_interval: 1m
tests:
  # a 3 GiB spike seen only by window_max, in one scrape; a steady 1 GiB process
  - interval: 1m
    input_series:
      - series: 'mprof_resident_window_max_bytes{instance="h:9105",job="mprof",pid="10",comm="spiky"}'
        values: '%(g1)d %(g1)d %(g3)d %(g1)d %(g1)dx20'
      - series: 'mprof_resident_bytes{instance="h:9105",job="mprof",pid="10",comm="spiky"}'
        values: '%(g1)dx25'
      - series: 'mprof_resident_window_max_bytes{instance="h:9105",job="mprof",pid="11",comm="calm"}'
        values: '%(g1)dx25'
    alert_rule_test:
      - eval_time: 3m
        alertname: MprofMemoryAboveLimit
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:9105", job: mprof, pid: "10", comm: spiky}
            exp_annotations:
              summary: "h:9105 pid 10 (spiky) reached 3GiB"
      # still within the 5-minute window, then resolved
      - eval_time: 6m
        alertname: MprofMemoryAboveLimit
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:9105", job: mprof, pid: "10", comm: spiky}
            exp_annotations:
              summary: "h:9105 pid 10 (spiky) reached 3GiB"
      - eval_time: 8m
        alertname: MprofMemoryAboveLimit
        exp_alerts: []
      - eval_time: 20m
        alertname: MprofMemoryGrowing
        exp_alerts: []
  # growth of 3 MiB a minute for three hours, from 1 GiB; a sawtooth between 1.0 and 1.9 GiB
  # whose fitted slope passes the threshold for minutes at a time, never for 30 (for: 30m)
  - interval: 1m
    input_series:
      - series: 'mprof_resident_bytes{instance="h:9105",job="mprof",pid="20",comm="leaky"}'
        values: '%(g1)d+%(m3)dx180'
      - series: 'mprof_resident_bytes{instance="h:9105",job="mprof",pid="21",comm="saw"}'
        values: '%(saw)s'
    alert_rule_test:
      # pending from the second sample, firing 30 minutes later; in the first hour a
      # sawtooth's partial fit can look like growth too, so the saw is judged from 100m on
      - eval_time: 20m
        alertname: MprofMemoryGrowing
        exp_alerts: []
%(growing)s
      # 1 GiB + 3 MiB/min passes 2 GiB at 341 min: predicted from 102 min on, firing 15 later
      - eval_time: 90m
        alertname: MprofMemoryWillExceedLimit
        exp_alerts: []
%(exceed)s
  # OOM kills: the run's counter goes from 2 to 3
  - interval: 1m
    input_series:
      - series: 'mprof_oom_kills_total{instance="h:9105",job="mprof"}'
        values: '2x5 3x20'
    alert_rule_test:
      - eval_time: 4m
        alertname: MprofOOMKill
        exp_alerts: []
      - eval_time: 8m
        alertname: MprofOOMKill
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:9105", job: mprof}
            exp_annotations:
              summary: "h:9105: the kernel killed a tracked process for memory"
      - eval_time: 20m
        alertname: MprofOOMKill
        exp_alerts: []
"""


def test_readme_rules_alert_when_they_should(readme_files):
    # a sawtooth between 1.0 and 1.9 GiB with a period of 10 minutes, for three hours
    saw = " ".join(str(GIB + (i % 10) * 100 * MIB) for i in range(181))
    leaky = ('          - exp_labels: {severity: warning, instance: "h:9105", job: mprof, '
             'pid: "20", comm: leaky}\n'
             '            exp_annotations:\n'
             '              summary: "%s"\n')
    growing = "".join(
        "      - eval_time: %dm\n        alertname: MprofMemoryGrowing\n        exp_alerts:\n"
        % t + leaky % "h:9105 pid 20 (leaky) grows by 51.2kiB/s" for t in range(100, 181, 5))
    exceed = "".join(
        "      - eval_time: %dm\n        alertname: MprofMemoryWillExceedLimit\n"
        "        exp_alerts:\n" % t
        + leaky % "h:9105 pid 20 (leaky) is on course to pass 2 GiB within 4 hours"
        for t in range(120, 181, 5))
    tests = RULE_TESTS % {"g1": GIB, "g3": 3 * GIB, "m3": 3 * MIB, "saw": saw,
                          "growing": growing.rstrip("\n"), "exceed": exceed.rstrip("\n")}
    (readme_files / "tests.yml").write_text(tests)
    r = promtool("test", "rules", "tests.yml", cwd=readme_files)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert b"SUCCESS" in r.stdout
