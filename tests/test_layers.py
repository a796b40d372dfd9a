"""The house's layers, checked from the code's own imports: runtime at the bottom, then the pure cost
policies, then the controller and the CLI; the infrastructure apart; benchmarks never lean on tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# A package may import only the packages listed for it (beside the standard library and third parties).
ALLOWED = {
    "runtime": {"runtime"},
    "policies": {"policies", "runtime"},
    "spotkit": {"spotkit", "runtime", "policies"},
    "infra": {"infra"},
    "bench": {"bench", "runtime", "policies", "spotkit"},
}
OURS = {"runtime", "policies", "spotkit", "infra", "bench", "tests"}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    wrong = [f"{path.relative_to(REPO)} imports {name}" for path in sources(package)
             for name in sorted(imports_of(path))
             if name.split(".")[0] in OURS and name.split(".")[0] not in ALLOWED[package]]
    assert not wrong, wrong


def test_policies_call_no_cloud_sdk() -> None:
    wrong = [f"{path.relative_to(REPO)} imports {name}" for path in sources("policies")
             for name in imports_of(path) if name.split(".")[0] in ("azure", "boto3", "botocore", "pulumi")]
    assert not wrong, wrong


def test_no_import_cycle_between_modules() -> None:
    modules = {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
               for package in ALLOWED for path in sources(package)}
    graph = {name: {imp for imp in imports_of(path) if imp in modules and imp != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*trail[trail.index(nxt):], nxt]) if nxt in trail else nxt)
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_each_store_prefix_is_spelled_in_one_module() -> None:
    from runtime import records

    prefixes = [records.JOBS, records.SEGMENTS, records.RESULTS, records.POISONED, records.USAGE,
                records.HEARTBEATS, records.EVICTIONS, records.BOOTS, records.DRAIN_REQUESTS, records.AUDIT,
                records.CONTROL, records.MODELS, records.QUEUED, records.DRAINED_FOR, records.HOST_KEYS,
                records.GATEWAY]
    spelled = {prefix: [str(path.relative_to(REPO)) for package in ("runtime", "spotkit", "policies")
                        for path in sources(package) if f'"{prefix}' in path.read_text()
                        or f"f\"{prefix}" in path.read_text()]
               for prefix in prefixes}
    assert all(paths == ["runtime/records/keys.py"] for paths in spelled.values()), spelled


def test_no_mixin_declares_another_class_state() -> None:
    wrong = [str(path.relative_to(REPO)) for path in sources("runtime")
             if "Mixin" in path.read_text() or "if TYPE_CHECKING:  # provided by" in path.read_text()]
    assert not wrong, wrong


def test_every_azure_service_infra_uses_is_type_checked() -> None:
    """mypy follows only the pulumi_azure_native services pyproject names (the package's own __init__
    would pull in 6,000 modules); a service infra/ starts to use without being named there would be
    checked as Any, silently."""
    import tomllib

    overrides = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    followed = {m for o in overrides if o.get("follow_imports") == "normal" for m in o["module"]}
    used: set[str] = set()
    for path in sources("infra"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pulumi_azure_native":
                used.update(f"pulumi_azure_native.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pulumi_azure_native."):
                used.add(".".join((node.module or "").split(".")[:2]))
            elif isinstance(node, ast.Import):
                used.update(".".join(a.name.split(".")[:2]) for a in node.names
                            if a.name.startswith("pulumi_azure_native."))
    assert used, "infra/ uses no Azure service: this check reads the wrong imports"
    unchecked = sorted(m for m in used if m not in followed or f"{m}.*" not in followed)
    assert not unchecked, f"add to pyproject's followed pulumi_azure_native services: {unchecked}"
