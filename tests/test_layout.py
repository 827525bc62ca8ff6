"""The package layout of docs/architecture.md: who may import whom (every import, lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("live", "model", "export", "patches", "tests", "benchmarks", "tools")
SHARED = {"live.checks", "live.logs", "live.children", "live.midiports"}
ALLOWED = {
    "live.checks": set(),
    "live.logs": set(),
    "live.children": set(),
    "live.midiports": set(),
    "live.music": {"live.checks"},
    "live.texture": {"live.music", "live.checks", "live.children"},
    "live.inference": {"live.music", "live.checks"},
    "live.playback": {"live.music", "live.checks", "live.children", "live.midiports"},
    "live.control": {"live.music", "live.texture", "live.checks", "live.children", "live.midiports"},
    "live.app": {"live.music", "live.texture", "live.inference", "live.playback", "live.control", "live.checks",
                 "live.logs", "live.children", "live.midiports", "export"},
    "live.offline": {"live.music", "live.texture", "live.inference", "live.checks", "live.logs", "export"},
    "model": {"live.music"},
    "export": {"live.inference", "live.texture", "live.music", "live.checks", "model"},
    "patches": {"live.control", "live.texture"},
}


def unit(dotted: str) -> str:
    """The layout unit of a module: ``live.<stage>`` (or ``live.checks``), else its top package."""
    parts = dotted.split(".")
    return ".".join(parts[:2]) if parts[0] == "live" and len(parts) > 1 else parts[0]


def imports(path: Path) -> set[str]:
    """First-party units that ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "live" else [f"live.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {unit(n) for n in names if n.split(".")[0] in FIRST_PARTY}
    return found


def module_units() -> dict[Path, str]:
    """Every module of the checked packages -> its layout unit."""
    out = {}
    for top in ("live", "model", "export", "patches"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            dotted = ".".join(rel.with_suffix("").parts)
            out[rel] = "live" if dotted == "live.__init__" else unit(dotted)
    return out


def test_every_import_follows_the_table():
    bad = []
    for rel, src in module_units().items():
        for dst in imports(ROOT / rel) - {src, "live"}:
            if dst not in ALLOWED.get(src, set()):
                bad.append(f"{rel} ({src}) imports {dst}")
    assert bad == []


def test_the_stages_are_folders_and_the_table_has_no_cycle():
    stages = {p.name for p in (ROOT / "live").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert stages == {"music", "control", "texture", "inference", "playback", "app", "offline"}
    assert not [p.name for p in (ROOT / "live").glob("*.py") if f"live.{p.stem}" not in SHARED | {"live.__init__"}]

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in ALLOWED.get(start, ()))

    assert [u for u in ALLOWED if reaches(u, u, set())] == []


def test_the_runtime_imports_no_torch_and_only_the_exporter_function_from_export():
    for rel in module_units():
        if rel.parts[0] != "live":
            continue
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "torch" for a in node.names), rel
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "torch", rel
                if node.module.split(".")[0] == "export":
                    assert node.module == "export" and [a.name for a in node.names] == ["exporter"], rel
