"""The operator image: hadolint-clean, installs exactly the lock file and then the project wheel without
resolving anything, runs as a non-root user, and its build context holds what the build needs.

There is no Docker engine on the development and CI machines, so the image itself is not built here; the
project wheel the Dockerfile builds is (from the files the build context lets through).
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.chart.support import CHART, ROOT, Tools, load_yaml

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements" / "operator.txt"
UID = 10001


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str
    comment: str  # the comment lines right above it


def parse(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    stage, current = -1, ""
    comment: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            comment = [*comment, line.lstrip("# ")] if line else []
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        current += " " + line.removesuffix("\\") if current else line.removesuffix("\\")
        if line.endswith("\\"):
            continue
        keyword, _, args = current.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip(), " ".join(comment)))
        current, comment = "", []
    return out


INSTRUCTIONS = parse(DOCKERFILE.read_text())
FINAL = max(i.stage for i in INSTRUCTIONS)


def in_stage(stage: int, keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.stage == stage and i.keyword == keyword]


def build_args() -> dict[str, str]:
    out: dict[str, str] = {}
    for ins in INSTRUCTIONS:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            out.setdefault(name, value)
    return out


def test_hadolint_passes(tools: Tools) -> None:
    proc = tools.run("hadolint", "--no-color", str(DOCKERFILE), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_hadolint_is_live(tools: Tools, tmp_path: Path) -> None:
    """The same binary flags an unpinned base image and an unpinned pip install."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    proc = tools.run("hadolint", "--no-color", str(bad), check=False)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout
    assert "DL3013" in proc.stdout


def test_every_ignored_hadolint_rule_is_justified() -> None:
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        match = re.search(r"hadolint\s+ignore=(\S+)(.*)", line)
        if match:
            assert len(match.group(2).strip(" :-—")) > 10, f"Dockerfile:{number}: say why {match.group(1)}"


def test_base_images_are_pinned_slim_python_311() -> None:
    args = build_args()
    froms = in_stage(0, "FROM") + in_stage(FINAL, "FROM")
    assert FINAL >= 1, "multi-stage: a builder and a final stage"
    for ins in froms:
        image = ins.args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image


def test_builder_turns_the_lock_into_wheels() -> None:
    runs = " ".join(i.args for i in in_stage(0, "RUN"))
    copies = [i.args for i in in_stage(0, "COPY")]
    assert any("requirements/operator.txt" in c for c in copies)
    assert re.search(r"pip wheel [^&]*--no-deps[^&]*-r requirements/operator\.txt", runs)
    assert re.search(r"pip wheel [^&]*--no-deps[^&]* \.(\s|$)", runs), "the project wheel, without deps"


def pip_installs(stage: int) -> list[list[str]]:
    commands = []
    for ins in in_stage(stage, "RUN"):
        for part in re.split(r"&&|;", ins.args):
            words = shlex.split(part)
            if "pip" in words and "install" in words:
                commands.append(words[words.index("install") + 1 :])
    return commands


def test_final_stage_installs_the_lock_then_the_wheel_without_resolving() -> None:
    copies = [shlex.split(i.args) for i in in_stage(FINAL, "COPY")]
    (lock_copy,) = [c for c in copies if "requirements/operator.txt" in c]
    lock_in_image = lock_copy[-1]
    installs = pip_installs(FINAL)
    assert len(installs) == 2, installs
    lock_install, wheel_install = installs
    assert lock_install[lock_install.index("-r") + 1] == lock_in_image
    assert wheel_install[-1].startswith("/dist/spot_optimizer-")
    assert wheel_install[-1].endswith(".whl")
    for args in installs:
        assert "--no-deps" in args, args
        assert "--no-index" in args, args  # only the wheels built from the lock, nothing from an index
    runs = " ".join(i.args for i in in_stage(FINAL, "RUN"))
    assert "pip check" in runs  # the lock is complete: fails the build otherwise


def test_final_stage_has_no_build_tools() -> None:
    text = " ".join(i.args for i in INSTRUCTIONS if i.stage == FINAL)
    for tool in ("apt-get install", "apk add", "gcc", "build-essential", "python3-dev", "make "):
        assert tool not in text


def test_runs_as_the_non_root_user_the_chart_expects() -> None:
    users = in_stage(FINAL, "USER")
    assert users, "no USER in the final stage"
    assert users[-1] == [i for i in INSTRUCTIONS if i.keyword == "USER"][-1]
    uid, _, gid = users[-1].args.partition(":")
    assert int(uid) == UID  # numeric, so that Kubernetes' runAsNonRoot can verify it
    assert int(gid) == UID
    runs = " ".join(i.args for i in in_stage(FINAL, "RUN"))
    assert f"--uid {UID}" in runs
    values = load_yaml(CHART / "values.yaml")
    assert values["securityContext"]["runAsUser"] == UID
    assert values["podSecurityContext"]["runAsUser"] == UID


def test_entrypoint_healthcheck_and_labels() -> None:
    (entry,) = in_stage(FINAL, "ENTRYPOINT")
    assert entry.args == '["spot-operator"]'
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    assert "spot-operator" in project["scripts"]
    (health,) = in_stage(FINAL, "HEALTHCHECK")
    assert health.args == "NONE"
    assert "probe" in health.comment  # and says why
    labels = " ".join(i.args for i in in_stage(FINAL, "LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    license_ = project["license"] if isinstance(project["license"], str) else project["license"]["text"]
    assert f'org.opencontainers.image.licenses="{license_}"' in labels
    exposed = {int(p) for i in in_stage(FINAL, "EXPOSE") for p in i.args.split()}
    assert exposed == {8081, 8443, 9090}


def lock_lines() -> list[str]:
    assert LOCK.exists(), "requirements/operator.txt (the lock the Dockerfile installs) is missing"
    lines = [line.split("#", 1)[0].strip() for line in LOCK.read_text().splitlines()]
    return [line for line in lines if line]


def test_lock_is_pinned_pip_freeze_format() -> None:
    lines = lock_lines()
    assert lines
    for line in lines:
        assert not line.startswith("-"), f"options/editables do not belong in the lock: {line}"
        req = Requirement(line)
        assert req.url is None, f"{line}: a URL or path, not a pin"
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: not pinned with =="
        assert canonicalize_name(req.name) != "spot-optimizer", "the project is installed from its wheel"


def test_lock_covers_and_satisfies_the_runtime_dependencies() -> None:
    pins = {}
    for line in lock_lines():
        req = Requirement(line)
        pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["operator"]:
        req = Requirement(dep)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a runtime dependency but not in requirements/operator.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not meet {dep}"
        )


def pattern_regex(pattern: str) -> str:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regular expression."""
    parts = pattern.split("/")
    out = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out += ".*" if last else "(?:.*/)?"
            continue
        out += "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in part)
        out += "" if last else "/"
    return out


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = pattern_regex(pattern.lstrip("!").strip("/"))
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def context_sources() -> list[str]:
    sources = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "COPY" and "--from=" not in ins.args:
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            sources += [w.rstrip("/") for w in words[:-1]]
    return sources


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    patterns = dockerignore()
    sources = context_sources()
    assert "requirements/operator.txt" in sources
    for source in sources:
        assert not dockerignore_excludes(source, patterns), f".dockerignore drops {source}, which is copied"
    assert not dockerignore_excludes("operator/spot_operator/main.py", patterns)
    for dropped in (".git/HEAD", ".tools/bin/helm", "tests/conftest.py", "charts/spot-optimizer/Chart.yaml"):
        assert dockerignore_excludes(dropped, patterns), dropped
    assert dockerignore_excludes("operator/spot_operator/__pycache__/x.pyc", patterns)


def build_requires() -> list[Requirement]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return [Requirement(r) for r in tomllib.load(fh)["build-system"]["requires"]]


def build_backend_installed() -> bool:
    for req in build_requires():
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not req.specifier.contains(installed, prereleases=True):
            return False
    return True


def test_builder_pins_a_build_backend_that_pyproject_accepts() -> None:
    runs = " ".join(i.args for i in in_stage(0, "RUN"))
    pinned = {canonicalize_name(n): v for n, v in re.findall(r"([A-Za-z0-9_.-]+)==(\S+)", runs)}
    for req in build_requires():
        name = canonicalize_name(req.name)
        assert name in pinned, f"the builder stage does not pin {req.name}"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} does not meet {req}"


@pytest.mark.timeout(600)  # pip may fetch the build backend first
def test_the_project_wheel_builds_from_the_build_context(tmp_path: Path) -> None:
    """Build the wheel as the Dockerfile does, from only the files the context lets through."""
    patterns = dockerignore()
    context = tmp_path / "context"
    for source in context_sources():
        if source.startswith("requirements/"):
            continue  # the lock is checked above; the wheel does not need it
        src = ROOT / source
        assert src.exists(), f"the Dockerfile copies {source}, which does not exist"
        if src.is_dir():
            for path in src.rglob("*"):
                rel = path.relative_to(ROOT).as_posix()
                if path.is_file() and not dockerignore_excludes(rel, patterns):
                    (context / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, context / rel)
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, context / source)
    # Without build isolation when this interpreter already has the build backend pyproject.toml asks for
    # (as the Dockerfile's builder stage has); else pip fetches it.
    isolation = ["--no-build-isolation"] if build_backend_installed() else []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            *isolation,
            "-q",
            "-w",
            str(tmp_path / "dist"),
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    if proc.returncode != 0 and "No matching distribution" in proc.stderr:
        pytest.skip(f"the build backend cannot be fetched here: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("spot_optimizer-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = whl.read(entry_points).decode()
    assert "spot-operator = spot_operator.main:main" in scripts
    assert "spot_operator/settings.py" in names
    assert any(n.startswith("spot_agent/") for n in names)
    assert not any(n.startswith("tests/") for n in names)
