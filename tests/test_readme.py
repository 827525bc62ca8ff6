from pathlib import Path

from live.control.oscspace import markdown_table

ROOT = Path(__file__).parents[1]


def test_readme_osc_table_matches_the_address_space():
    assert markdown_table() in (ROOT / "README.md").read_text(), \
        "README.md's OSC table is out of date: paste live.control.oscspace.markdown_table() into it"


def test_readme_first_lines_give_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme[:12] if line.startswith("bash scripts/setup.sh")]
    assert len(commands) == 2 and "run_live.py" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].split("#")[0].strip() in ci
