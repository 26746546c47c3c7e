"""The documentation's numbers that code can derive, checked against the code so they cannot drift.

- the job counts of the paper preset (docs/configuration.md, "Jobs of the paper preset") equal a fresh
  ``snakemake -n all --quiet rules`` of config.yaml;
- the figure and table lists of the README's quick start equal what the workflow's own helpers (the inputs of
  rule ``all``) produce for presets/mini.yaml;
- README.md stays short, and every docs/ link (README and between docs pages, anchors included) resolves;
- the config-error example and the throughput table's version stated in the docs match the code.

No workflow runs: one dry run of the paper preset (a few seconds) and imports of the light helper modules.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
JOB_TABLE_PAGE = DOCS / "configuration.md"
JOB_TABLE_HEADING = "## Jobs of the paper preset"
README_MAX_LINES = 200


# ----------------------------------------------------------------------------- helpers
def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines))
                if re.match(rf"^#{{1,{level}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


def documented_job_counts() -> dict[str, int]:
    """``rule -> jobs`` from the Markdown table under the job-table heading (the bold total row included)."""
    rows = {}
    for line in section(JOB_TABLE_PAGE.read_text(), JOB_TABLE_HEADING).splitlines():
        match = re.match(r"^\|\s*(?:`([A-Za-z0-9_]+)`|\*\*(total)\*\*)\s*\|\s*(\d+)\s*\|\s*$", line)
        if match:
            rows[match.group(1) or match.group(2)] = int(match.group(3))
    return rows


def dry_run_job_counts(stdout: str) -> dict[str, int]:
    """The first ``job  count`` table of Snakemake's dry-run summary."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"^job\s+count\s*$", line))
    counts = {}
    for line in lines[header + 2:]:                      # skip the header and its dashes
        match = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
        if match.group(1) == "total":
            break
    return counts


def readme_list(label: str) -> list[str]:
    """The names of the README's bullet ``- **<label>** ...``: backticked tokens that are bare names."""
    text = README.read_text()
    match = re.search(rf"^- \*\*{label}\*\*(.*?)(?=^\S|^- |\Z)", text, flags=re.M | re.S)
    assert match, f"README.md has no '- **{label}**' list"
    return re.findall(r"`([^`]+)`", match.group(1))


def mini_outputs() -> list[str]:
    """The targets of rule ``all`` for presets/mini.yaml, from the helpers rules/*.smk build them with."""
    from snakemake.utils import update_config

    from workflow_scripts.armorm.workflow import ArmoRMRules
    from workflow_scripts.core.config import validate_config
    from workflow_scripts.core.workflow import Workflow
    from workflow_scripts.emotion.workflow import EmotionRules
    from workflow_scripts.hh.workflow import HHRules
    from workflow_scripts.lm_eval.workflow import LMEvalRules
    from workflow_scripts.radius_coverage.workflow import RadiusCoverageRules

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, yaml.safe_load((REPO / "presets/mini.yaml").read_text()))
    validate_config(config)
    w = Workflow(config)
    armorm, hh = ArmoRMRules(w), HHRules(w)
    return (EmotionRules(w).outputs() + armorm.outputs() + hh.outputs() + RadiusCoverageRules(w).outputs()
            + LMEvalRules(w, armorm, hh).outputs())


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)      # no headings inside code blocks
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", page.read_text())


# ----------------------------------------------------------------------------- (a) job counts
def test_the_documented_job_counts_of_the_paper_preset_equal_a_dry_run(tmp_path):
    documented = documented_job_counts()
    assert documented.get("total"), f"no job table under '{JOB_TABLE_HEADING}' in {JOB_TABLE_PAGE}"
    # a scratch working directory: the plan of the whole grid, whatever results exist in the checkout
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "all", "--quiet", "rules",
                          "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    planned = dry_run_job_counts(run.stdout + "\n" + run.stderr)
    assert planned.get("total"), (run.stdout + run.stderr)[-3000:]
    assert documented == planned, (
        f"{JOB_TABLE_PAGE.relative_to(REPO)} differs from `snakemake -n all --quiet rules`:\n"
        + "\n".join(f"  {rule}: documented {documented.get(rule)}, planned {planned.get(rule)}"
                    for rule in sorted(set(documented) | set(planned)) if documented.get(rule) != planned.get(rule)))


# ----------------------------------------------------------------------------- (b) mini figures and tables
@pytest.mark.parametrize("label, folder, extensions", [("Figures", "figures", {"pdf", "png"}),
                                                       ("Tables", "tables", {"csv", "md", "tex"})])
def test_the_readme_lists_exactly_the_mini_presets_figures_and_tables(label, folder, extensions):
    tokens = readme_list(label)
    assert f"results/mini/{folder}/" in tokens, f"the README's {label} list does not name results/mini/{folder}/"
    names = [t for t in tokens if re.fullmatch(r"[a-z0-9_]+", t)]
    stated_extensions = {t.lstrip(".") for t in tokens if re.fullmatch(r"\.[a-z]+", t)}
    assert len(names) == len(set(names)), f"{label}: a name is listed twice: {names}"

    produced = [Path(p) for p in mini_outputs() if Path(p).parent == Path("results/mini") / folder]
    assert produced, f"the helpers produce no {folder} for the mini preset"
    assert set(names) == {p.stem for p in produced}, (
        f"README {label}: listed but not produced {sorted(set(names) - {p.stem for p in produced})}; "
        f"produced but not listed {sorted({p.stem for p in produced} - set(names))}")
    assert stated_extensions == {p.suffix.lstrip(".") for p in produced} == extensions


# ----------------------------------------------------------------------------- (c) README and links
def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}: move text to docs/)"


def test_every_docs_link_resolves():
    pages = [README, *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in links(page):
            if re.match(r"^[a-z]+:", target):                 # http(s), mailto: not checked here
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path) if path else page
            if page == README and not path.startswith("docs/"):
                continue
            if not resolved.exists():
                broken.append(f"{page.name}: {target} (no file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.name}: {target} (no heading #{anchor})")
    assert any(t.startswith("docs/") for t in links(README)), "README.md links no docs/ page"
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_names_existing_paths():
    prefixes = ("workflow_scripts/", "rules/", "presets/", "profiles/", "scripts/", "tests/", "docs/")
    missing = [t for t in re.findall(r"`([^`\s]+)`", README.read_text())
               if t.startswith(prefixes) and not re.search(r"[{}<>*]", t) and not (REPO / t).exists()]
    assert not missing, f"README.md names paths that do not exist: {missing}"


# ----------------------------------------------------------------------------- facts stated in the docs
def test_the_config_error_example_is_what_the_workflow_prints():
    from workflow_scripts.core.config import ConfigError, validate_config

    stated = re.search(r"^Config error: .+$", (DOCS / "configuration.md").read_text(), flags=re.M).group(0)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["emotion"]["radii"]["chi2"][0] = -0.5
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert stated == f"Config error: {error.value}"


def test_the_stated_throughput_table_version_is_the_files():
    stated = re.findall(r"`version: (\d+)`", (DOCS / "planning.md").read_text())
    table = yaml.safe_load((REPO / "workflow_scripts/tools/throughput.yaml").read_text())
    assert stated and {int(v) for v in stated} == {table["version"]}
