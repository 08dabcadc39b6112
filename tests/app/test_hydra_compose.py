"""optlab's sweeper composes each job's config once per choice of config groups and applies the
values itself; every job's config must equal the one Hydra composes from scratch."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

import hydra_plugins.optlab_sweeper.optlab_sweeper  # noqa: F401 - registers hydra/sweeper=optlab
from optlab.app.cli import config_dir, register_resolvers
from optlab.app.compose import ComposeOnce

from ..conftest import REPO

EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))

SWEEPS = {
    "lists and numbers": ["solver=gd,adam", "solver.lr=1e-3,1e-2", "x0=[0,2],[-1.2,1]", "stop.max_iter=7"],
    "objectives, null": ["objective=rosenbrock,double_well", "x0=null", "stop.gtol=1e-6,1e-8"],
    "add, force-add, delete": ["+stop.extra=1,2", "++stop.max_iter=5,6", "~stop.ftol", "solver=gd,newton"],
    "a dict for a group": ["solver={lr:0.1},{lr:0.2}", "objective=booth"],
    "interpolation": ["stop.max_iter=${stop.patience},3", "stop.patience=4"],
    "starts": ["starts=grid", "starts.n=3,4", "solver=gd,momentum"],
    "a hydra value": ["hydra.job.chdir=true", "hydra.job.name=named", "solver.lr=1e-3,2e-3"],
    "ranges": ["solver.lr=range(1,4)", "objective=rosenbrock"],
}


def job_overrides(master, arguments: list[str]) -> list[list[str]]:
    """The jobs' overrides, as Hydra's basic sweeper lists them (its params, then the command)."""
    params = [f"{k}={v}" for k, v in (master.hydra.sweeper.params or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + arguments)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


@pytest.fixture(scope="module")
def loader():
    register_resolvers()
    with initialize_config_dir(config_dir=str(Path(config_dir()).resolve()), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def compare_every_job(loader, command: list[str]) -> int:
    """Every job's config by Hydra and by ComposeOnce: equal; returns how many jobs."""
    master = loader.load_configuration("config", overrides=command, run_mode=RunMode.MULTIRUN)
    jobs = job_overrides(master, list(master.hydra.overrides.task))
    once = ComposeOnce(loader)
    for overrides in jobs[::-(-len(jobs) // 20)]:  # (at most 20 jobs spread over a big sweep)
        ours, hydras = once.load_sweep_config(master, overrides), loader.load_sweep_config(master, overrides)
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras), overrides
        assert OmegaConf.is_struct(ours) and OmegaConf.is_struct(hydras)
        ours_resolved, hydras_resolved = ({key: OmegaConf.select(c, key) if not OmegaConf.is_config(c[key])
                                           else OmegaConf.to_container(c[key], resolve=True)
                                           for key in c if key != "hydra"} for c in (ours, hydras))
        assert ours_resolved == hydras_resolved, overrides
    assert len(once._compositions) < min(len(jobs), 20) or len(jobs) == 1
    return len(jobs)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_job_of_every_experiment_composes_as_hydra_composes_it(loader, name):
    assert compare_every_job(loader, [f"+experiment={name}", "hydra.sweep.dir=/tmp/x"]) >= 1


@pytest.mark.parametrize("name", list(SWEEPS))
def test_overrides_of_every_kind_compose_as_hydra_composes_them(loader, name):
    assert compare_every_job(loader, SWEEPS[name]) >= 2


def test_a_bad_value_is_refused_as_hydra_refuses_it(loader):
    master = loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
    once = ComposeOnce(loader)
    for bad in (["solver.lrr=1"], ["+solver=gd"], ["solver=nope"], ["x0=[1,"]):
        with pytest.raises(Exception) as ours:
            once.load_sweep_config(master, bad)
        with pytest.raises(Exception) as hydras:
            loader.load_sweep_config(master, bad)
        assert type(ours.value) is type(hydras.value) and str(ours.value) == str(hydras.value)


def test_the_loader_pickles_for_worker_processes_without_its_cache(loader):
    master = loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
    once = ComposeOnce(loader)
    once.load_sweep_config(master, ["solver.lr=0.5"])
    again = pickle.loads(pickle.dumps(once))
    assert again._compositions == {} and again.load_sweep_config(master, ["solver.lr=0.25"]).solver.lr == 0.25


@pytest.mark.parametrize("command", [
    [], ["solver=newton", "objective=double_well", "x0=[2]"],
    ["solver.lr=1e-2", "stop.max_iter=7", "+options_for.gd.lr=3"],
    ["starts=grid", "starts.n=3", "hydra.job.chdir=true"], ["hydra.verbose=true", "log.grad_norm=true"],
])
def test_a_single_run_is_composed_once_as_hydra_composes_it(loader, monkeypatch, command):
    from hydra._internal.hydra import Hydra

    from optlab.app.compose import RunComposedOnce

    hydra = GlobalHydra.instance().hydra
    hydras = Hydra.compose_config(hydra, "config", [*command, "hydra.mode=RUN"], run_mode=RunMode.RUN)
    monkeypatch.setattr(Hydra, "get_mode", Hydra.get_mode)  # (restored after the test)
    monkeypatch.setattr(Hydra, "compose_config", Hydra.compose_config)
    once = RunComposedOnce()
    once.install()
    assert Hydra.get_mode(hydra, "config", list(command)) is None and once.kept is not None
    ours = Hydra.compose_config(hydra, "config", [*command, "hydra.mode=RUN"], run_mode=RunMode.RUN)
    assert once.kept is None  # handed over, not composed again
    assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(hydras)


def test_a_config_that_sweeps_takes_hydras_own_path(loader, monkeypatch):
    from hydra._internal.hydra import Hydra

    from optlab.app.compose import RunComposedOnce

    hydra = GlobalHydra.instance().hydra
    monkeypatch.setattr(Hydra, "get_mode", Hydra.get_mode)
    monkeypatch.setattr(Hydra, "compose_config", Hydra.compose_config)
    once = RunComposedOnce()
    once.install()
    assert Hydra.get_mode(hydra, "config", ["+experiment=lr_sweep"]) == RunMode.MULTIRUN
    assert Hydra.get_mode(hydra, "config", ["solver=gd,newton"]) is None and once.kept is None


def test_installing_again_wraps_hydras_own_methods_not_the_last_install(loader, monkeypatch):
    """main() called again in one process (a notebook, a test suite): each install composes once
    per call, as the first did, instead of once more per earlier install."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.hydra import Hydra

    from optlab.app.compose import RunComposedOnce

    hydra = GlobalHydra.instance().hydra
    monkeypatch.setattr(Hydra, "get_mode", Hydra.get_mode)
    monkeypatch.setattr(Hydra, "compose_config", Hydra.compose_config)
    loads = []
    load = ConfigLoaderImpl.load_configuration
    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", lambda *a, **k: loads.append(1) or load(*a, **k))
    for _ in range(5):
        RunComposedOnce().install()
        loads.clear()
        assert Hydra.get_mode(hydra, "config", ["solver=gd,newton"]) is None
        assert len(loads) == 2  # a sweep's values: ours fails, Hydra's own composes (and says no mode)
