"""retint.cpu: the one reading of the CPU's flags, and RETINT_CPU_HIDE_FLAGS (issue 41, item 8)."""

import os
import subprocess
import sys

HIDDEN = {**os.environ, "RETINT_CPU_HIDE_FLAGS": "avx512_bf16, amx_bf16"}


def run(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_hidden_flags_are_absent_for_every_choice_made_from_them():
    shown = run("from retint.cpu import cpu_flags, has_native_bf16, speed_flags\n"
                "print(has_native_bf16(), 'avx512_bf16' in cpu_flags(), 'avx512_bf16' in speed_flags())", HIDDEN)
    assert shown.split() == ["False", "False", "False"]


def test_auto_takes_the_path_of_a_cpu_without_native_bf16_when_its_flags_are_hidden():
    # The bundled model's generator passed its OpenVINO bf16 gate: only the CPU's flags decide.
    code = ("import numpy as np\nfrom retint.runtime import load_engine\nengine = load_engine()\n"
            "print(engine.spec.label())\nprint(engine.spec.reason)\n"
            "print(engine.colorize(np.full((40, 48), 90, np.uint8)).shape)")
    label, reason, shape = run(code, HIDDEN).splitlines()
    assert label.startswith("onnxruntime fp32") and shape == "(1, 40, 48, 3)"
    assert "hidden by RETINT_CPU_HIDE_FLAGS" in reason


def test_the_pytest_option_runs_the_tests_as_on_a_cpu_without_native_bf16(repo_root):
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider",
                                "--hide-cpu-flags", "native-bf16", "tests/test_cpu.py"],
                               cwd=repo_root, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stdout
    assert "native bf16: none; hidden by RETINT_CPU_HIDE_FLAGS: amx_bf16, avx512_bf16" in collected.stdout
