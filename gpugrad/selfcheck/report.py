"""report.json (everything, for machines) and report.md (for people), and the console lines."""
from __future__ import annotations

import json
from pathlib import Path

from gpugrad.selfcheck.core import FAILED, PASSED, SKIPPED, Outcome

MARK = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}


def console_line(outcome: Outcome) -> str:
    return f"{MARK[outcome.status]}  {outcome.name:<34} {outcome.seconds:7.1f} s  {outcome.summary}"


def failure_line(outcome: Outcome) -> str:
    """One line per failed check: its name and what went wrong."""
    return f"FAILED {outcome.name}: {' '.join(outcome.summary.split())[:400]}"


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    return {s: sum(1 for o in outcomes if o.status == s) for s in (PASSED, FAILED, SKIPPED)}


def write(out_dir: Path, meta: dict, environment: dict, outcomes: list[Outcome]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "environment": environment, "counts": counts(outcomes),
           "checks": [o.as_dict() for o in outcomes]}
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md_path = out_dir / "report.md"
    md_path.write_text(_markdown(meta, environment, outcomes))
    return md_path, json_path


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _markdown(meta: dict, environment: dict, outcomes: list[Outcome]) -> str:
    c = counts(outcomes)
    lines = [f"# gpugrad selfcheck ({meta['mode']})", "",
             f"{meta['date']}; {meta['seconds']:.1f} s; target **{meta['target']}**; "
             f"{c[PASSED]} passed, {c[FAILED]} failed, {c[SKIPPED]} skipped; exit code {meta['exit_code']}.",
             "", "## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in environment.items()]
    lines += ["", "## Checks", "", "| check | status | seconds | summary |", "|---|---|---|---|"]
    lines += [f"| {o.name} | {o.status} | {o.seconds:.1f} | {_cell(o.summary)} |" for o in outcomes]
    failed = [o for o in outcomes if o.status == FAILED]
    if failed:
        lines += ["", "## Failures", ""]
        for o in failed:
            lines += [f"### {o.name}", "", _cell(o.summary), ""]
            if o.details:
                lines += ["```", *o.details[:60], "```", ""]
    measured = [o for o in outcomes if o.data and o.status == PASSED]
    if measured:
        lines += ["", "## Measurements", ""]
        for o in measured:
            lines += [f"- **{o.name}**: `{json.dumps(o.data, default=str)[:1500]}`"]
    return "\n".join(lines) + "\n"
