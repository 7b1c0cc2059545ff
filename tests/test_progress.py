"""retint.progress: a step bar on a terminal, plain lines in a log (issue 41, item 12)."""

import subprocess
import sys

STEPS = ("from retint.progress import StepBar\n"
         "with StepBar() as bar:\n"
         "    for done, step in enumerate(['fp32 graph', 'fp16 graph', 'stages']):\n"
         "        bar(done, 3, step)\n"
         "        bar.write(f'wrote {step}')\n"
         "    bar(3, 3, 'done')\n")


def test_steps_are_plain_lines_when_stderr_is_not_a_terminal():
    # Before: tqdm's carriage returns and escape codes in captured output (a CI log, `2> log`).
    process = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, check=True)
    assert "\r" not in process.stderr and "\x1b" not in process.stderr
    assert process.stderr.splitlines() == ["[1/3] fp32 graph", "wrote fp32 graph", "[2/3] fp16 graph",
                                           "wrote fp16 graph", "[3/3] stages", "wrote stages"]
