"""One-off migration (2026-11-29): studies' ``rule_init`` becomes the shipped run's own
step 0 (``init:shipped``, one fixed theta) instead of ``random-init`` (the default
``small`` configuration drawn with a new key per seed, which is neither the shipped
rule's configuration nor its starting point).

For each study workdir given: drops its ``rule_init`` rows and records
``init_rule = "init:shipped"`` in ``study.json``; rerunning the study's command then
computes only the dropped rows. Rows of every other method are kept as they are.

    python experiments/studies/reinit.py experiments/studies/*
"""
import json
import sys
from pathlib import Path

for workdir in map(Path, sys.argv[1:]):
    info_path, rows_path = workdir / "study.json", workdir / "rows.jsonl"
    info = json.loads(info_path.read_text())
    if info.get("rule") is not None or info.get("init_rule") != "random-init":
        print(f"{workdir}: left alone (rule {info.get('rule')}, init_rule {info.get('init_rule')})")
        continue
    lines = rows_path.read_text().splitlines() if rows_path.exists() else []
    keep = [l for l in lines if l.strip() and json.loads(l).get("method") != "rule_init"]
    rows_path.write_text("".join(l + "\n" for l in keep))
    info["init_rule"] = "init:shipped"
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    print(f"{workdir}: dropped {len(lines) - len(keep)} rule_init rows; init_rule = init:shipped")
