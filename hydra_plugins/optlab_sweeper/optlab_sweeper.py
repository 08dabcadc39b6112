"""``hydra/sweeper=optlab``: Hydra's basic sweeper, with job configs composed once per choice of
config groups (:class:`optlab.app.compose.ComposeOnce`) and a bar of the sweep's progress
(:class:`optlab.app.progress.SweepProgress`), for any launcher.

The sweep, its jobs, their overrides and directories are the basic sweeper's; only the cost of
composing them differs. Hydra finds plugins in the ``hydra_plugins`` package; ``python -m optlab``
also registers this one itself, for installs where Hydra's scan does not see it (editable ones).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from optlab.app.compose import ComposeOnce
from optlab.app.progress import SweepProgress


@dataclass
class OptlabSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.optlab_sweeper.optlab_sweeper.OptlabSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="optlab", node=OptlabSweeperConf, provider="optlab")


class OptlabSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        context = HydraContext(config_loader=ComposeOnce(hydra_context.config_loader),  # type: ignore[arg-type]
                               callbacks=hydra_context.callbacks)
        # (not super(): Hydra's scan may import a second copy of this module, whose class this is not)
        BasicSweeper.setup(self, hydra_context=context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        with SweepProgress(Path(str(self.config.hydra.sweep.dir))) as self.progress:
            return BasicSweeper.sweep(self, arguments)

    def split_arguments(self, overrides: Any, max_batch_size: Any) -> Any:  # (how many jobs: for the bar)
        batches = BasicSweeper.split_arguments(overrides, max_batch_size)
        progress = getattr(self, "progress", None)
        if progress is not None:
            progress.total = sum(len(batch) for batch in batches)
        return batches
