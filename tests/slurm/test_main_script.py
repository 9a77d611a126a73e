"""A script run as `python process.py` whose task runner lives in its `__main__`.

The job re-imports the script on the node (as `__mp_main__`), so it runs the
script as it is when the job starts: the code its run sheet records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm]

SCRIPT = '''
import json
import subprocess
import sys
from pathlib import Path

from flexlock.cli import Task, TaskResult
from flexlock.slurm import slurm_executor

MARK = "as submitted"


class Doubler:
    """A class of __main__, pickled by reference inside the task runner."""

    def __call__(self, value):
        return 2 * value


def run_task(task):
    value = Doubler()(dict(task.overrides)["param"])
    return TaskResult(task=task, status="succeeded",
                      details={"mark": MARK, "module": __name__, "value": str(value)})


if __name__ == "__main__":
    tasks = [Task(index=i, label=f"param={i}", overrides=(("param", i),), source=f"t:{i}")
             for i in range(2)]
    executor = slurm_executor({"time": 5, "additional_parameters": {"hold": True}})
    submissions = executor.submit(run_task, tasks)
    # The jobs are held: change the script, then let them start.
    source = Path(__file__).read_text().replace('MARK = "as submitted"', 'MARK = "at job start"')
    Path(__file__).write_text(source)
    array_id = submissions[0].job_id.split("_")[0]
    subprocess.run(["scontrol", "release", array_id], check=True, timeout=30)
    results = sorted(executor.wait(submissions), key=lambda r: r.task.index)
    print(json.dumps([[r.status, r.error, dict(r.details)] for r in results]))
'''


@pytest.mark.timeout(120)
def test_runner_defined_in_main_script_runs_the_script_as_it_is_at_job_start(
    slurm_cluster: Path,
) -> None:
    script = slurm_cluster / "process.py"
    script.write_text(SCRIPT)
    completed = subprocess.run(
        [sys.executable, "process.py"], capture_output=True, text=True, timeout=110, check=False
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.splitlines()[-1])

    assert [result[:2] for result in results] == [["succeeded", None]] * 2
    assert [result[2]["mark"] for result in results] == ["at job start"] * 2
    assert [result[2]["module"] for result in results] == ["__mp_main__"] * 2
    assert [result[2]["value"] for result in results] == ["0", "2"]
