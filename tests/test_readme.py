"""The README's two commands are the contract, and CI runs the test one verbatim."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _shell_blocks(text: str) -> list[str]:
    return [block.split("\n", 1)[1].strip() for block in text.split("```")[1::2] if block.startswith("sh\n")]


def test_readme_has_a_run_and_a_test_command_and_ci_uses_the_test_one() -> None:
    blocks = _shell_blocks((ROOT / "README.md").read_text())
    run_command, test_command = blocks[0], blocks[1]
    assert run_command.startswith("scripts/setup && ") and "hearth serve" in run_command
    assert test_command.startswith("scripts/setup && ") and "pytest" in test_command
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [test_command]
