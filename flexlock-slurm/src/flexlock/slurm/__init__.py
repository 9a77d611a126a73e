"""FlexLock Slurm plugin: the `slurm` executor (task lists as job arrays through submitit).

Use it from the command line with `--slurm_config slurm.yaml`; `import
flexlock.slurm` does not import submitit.
"""

from flexlock.core import __version__
from flexlock.slurm._config import SlurmConfig, slurm_config
from flexlock.slurm._executor import SlurmExecutor, slurm_executor
from flexlock.slurm._node import SlurmTermination, checkpoint_hook

__all__ = [
    "SlurmConfig",
    "SlurmExecutor",
    "SlurmTermination",
    "__version__",
    "checkpoint_hook",
    "slurm_config",
    "slurm_executor",
]
