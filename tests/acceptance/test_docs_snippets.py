"""Every ```bash and ```python block of README.md and docs/*.md, run as a reader would run it.

Each block is extracted and executed from a temporary directory holding a copy of
``examples/``, with ``python`` meaning this interpreter (its folder first on PATH) and optlab imported from this
repository. What a block needs beyond that is said in an HTML comment just above its fence
(visible in the Markdown source, invisible on the rendered page), so that the reduction is
part of the page and reviewed with it:

    <!-- snippet: slow; cwd examples; replace "stop.max_iter=50000" "stop.max_iter=200" -->

- ``slow``: marked slow (a long sweep, a package install); run by ``pytest -m slow``.
- ``cwd DIR``: run from DIR inside the temporary directory (as the page says: "from examples/").
- ``continues``: run after the block before it on the same page, in the same temporary
  directory; consecutive Python blocks of such a chain share one interpreter.
- ``replace "OLD" "NEW"``: run at reduced size; OLD must occur in the block (so the
  reduction cannot silently stop applying when the block changes).
- ``env NAME=VALUE``: an environment variable for the block.
- ``setup "COMMAND"``: a shell command run first, in the same directory (a sweep for a block
  that reads "a sweep"), shown in the page's source like every directive.
- ``needs MODULE``: skipped when MODULE (an optional extra) is not installed.
- ``repo``: the temporary directory is a copy of the whole repository (its tracked files).
- ``excerpt PATH``: the block shows a file of the repository (``examples/my_plugins/...``): each
  of its code lines is a line of that file, comments aside, so the page and the file cannot drift.
- ``ci``: the block is run by ``.ci/run`` itself (the README's test command, which would
  otherwise run this test inside itself); the test checks that ``.ci/run`` reads this block.

Blocks that show output, or that cannot run here (a Slurm cluster), are ```text. At the end
the test prints how many blocks it executed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = ("bash", "python")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")  # a fence, perhaps indented inside a list
DIRECTIVE = re.compile(r"^<!--\s*snippet:(.*?)-->\s*$")
TIMEOUT_S = 900


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    slow: bool = False
    cwd: str = "."
    continues: bool = False
    replacements: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    repo: bool = False
    ci: bool = False
    excerpt: str | None = None
    setup: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def reduced(self) -> str:
        code = self.code
        for old, new in self.replacements:
            assert old in code, f"{self.name}: the snippet directive replaces {old!r}, which the block no longer has"
            code = code.replace(old, new)
        return code


def apply_directive(block: Block, text: str) -> None:
    for part in filter(None, (p.strip() for p in text.split(";"))):
        word, _, rest = part.partition(" ")
        args = shlex.split(rest)
        if word in ("slow", "continues", "repo", "ci") and not args:
            setattr(block, word, True)
        elif word == "cwd" and len(args) == 1:
            block.cwd = args[0]
        elif word == "excerpt" and len(args) == 1:
            block.excerpt = args[0]
        elif word == "replace" and len(args) == 2:
            block.replacements.append((args[0], args[1]))
        elif word == "env" and len(args) == 1 and "=" in args[0]:
            name, _, value = args[0].partition("=")
            block.env[name] = value
        elif word == "setup" and len(args) == 1:
            block.setup.append(args[0])
        elif word == "needs" and args:
            block.needs.extend(args)
        else:
            raise ValueError(f"{block.name}: unknown snippet directive {part!r}")


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a page in order, runnable ones with the directives above them."""
    lines = page.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        indent, lang = opening.groups()
        if lang in RUNNABLE:
            code = "\n".join(line[len(indent):] for line in lines[i + 1:end]) + "\n"
            block = Block(page, i + 1, lang, code)
            k = i - 1
            while k >= 0 and lines[k].strip().startswith("<!--"):  # the comments right above the fence
                directive = DIRECTIVE.match(lines[k].strip())
                if directive:
                    apply_directive(block, directive.group(1))
                k -= 1
            found.append(block)
        i = end + 1
    return found


def chains() -> list[list[Block]]:
    """Blocks grouped so that a ``continues`` block runs with the ones before it."""
    groups: list[list[Block]] = []
    for page in PAGES:
        for block in blocks_of(page):
            if block.continues:
                assert groups and groups[-1][0].page == page, f"{block.name} continues no block"
                groups[-1].append(block)
            else:
                groups.append([block])
    return groups


CHAINS = chains()
EXECUTED: list[str] = []


def chain_param(chain: list[Block]):
    marks = [pytest.mark.slow] if any(b.slow for b in chain) else []
    return pytest.param(chain, id=chain[0].name, marks=marks)


@pytest.fixture(scope="module", autouse=True)
def count_blocks(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    total = sum(len(c) for c in CHAINS)
    by_ci = sum(b.ci for c in CHAINS for b in c)
    line = (f"docs snippets: {len(EXECUTED)} of {total} runnable blocks executed here "
            f"({by_ci} run by .ci/run itself)")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past pytest's capture, onto the terminal
            reporter.ensure_newline()
            reporter.write_line(line)
    else:  # pragma: no cover - without a terminal or capture
        print(line)


def workdir(tmp_path: Path, chain: list[Block]) -> Path:
    """A temporary directory with what the blocks need: examples/, or the whole repository."""
    root = tmp_path / "w"
    if any(b.repo for b in chain):
        tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        for name in filter(None, tracked.decode().split("\0")):
            source = REPO / name
            if source.is_file() or source.is_symlink():
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target, follow_symlinks=False)
    else:
        shutil.copytree(REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("outputs", "__pycache__"))
    return root


def environment(block: Block) -> dict[str, str]:
    """``python`` is this interpreter (its folder first on PATH, as in an activated virtual
    environment); optlab comes from this repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "PYTHONPATH")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO),
               MPLBACKEND="Agg")
    env.update(block.env)
    return env


def execute(code: str, lang: str, cwd: Path, env: dict[str, str], name: str) -> None:
    command = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (f"{name} exited {done.returncode}\n--- block ---\n{code}\n"
                                  f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}")


@pytest.mark.parametrize("chain", [chain_param(c) for c in CHAINS])
def test_block_runs(chain: list[Block], tmp_path: Path) -> None:
    for block in chain:
        for module in block.needs:
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"{block.name} needs {module} (an optional extra)")
    root = workdir(tmp_path, chain)
    pending: list[Block] = []  # consecutive Python blocks, run as one script

    def flush() -> None:
        if pending:
            code = "\n".join(b.reduced() for b in pending)
            execute(code, "python", root / pending[0].cwd, environment(pending[0]), pending[0].name)
            EXECUTED.extend(b.name for b in pending)
            pending.clear()

    for block in chain:
        for command in block.setup:
            execute(command, "bash", root / block.cwd, environment(block), f"{block.name} (setup)")
        if block.ci:
            assert block.lang == "bash" and ci_test_command() == block.code.strip(), \
                f"{block.name} is marked ci, but .ci/run does not run it"
            continue
        if block.lang == "python" and (not pending or pending[0].cwd == block.cwd):
            pending.append(block)
            continue
        flush()
        if block.lang == "python":
            pending.append(block)
        else:
            execute(block.reduced(), "bash", root / block.cwd, environment(block), block.name)
            EXECUTED.append(block.name)
    flush()


def ci_test_command() -> str:
    """The line ``.ci/run`` takes from the README, found as it finds it."""
    lines = (REPO / "README.md").read_text().splitlines()
    at = lines.index("<!-- test-command -->")
    return next(x for x in lines[at + 1:at + 3] if not x.startswith(("<!--", "```")))


def test_every_runnable_block_is_collected():
    """No fence is missed: every ```bash/```python line of the pages is a collected block."""
    fences = sum(1 for page in PAGES for line in page.read_text().splitlines()
                 if re.match(r"^\s*```(bash|python)\s*$", line))
    assert fences == sum(len(c) for c in CHAINS) > 0


def test_no_untyped_fence():
    """A block is runnable (bash, python) or says what it is (text, yaml, sql, ...): never bare."""
    bare = []
    for page in PAGES:
        inside = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                if not inside and line.strip() == "```":
                    bare.append(f"{page.relative_to(REPO)}:{number}")
                inside = not inside
    assert not bare, f"fences without a language (use ```text for output): {bare}"


def code_lines(text: str) -> list[str]:
    """The lines of Python source that carry code: comments, blank lines and indentation aside."""
    lines = (re.sub(r"(^|\s+)#.*$", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


EXCERPTS = [b for c in CHAINS for b in c if b.excerpt]


@pytest.mark.parametrize("block", EXCERPTS, ids=[b.name for b in EXCERPTS])
def test_excerpt_matches_its_file(block: Block) -> None:
    source = set(code_lines((REPO / block.excerpt).read_text()))
    stray = [line for line in code_lines(block.code) if line not in source]
    assert not stray, f"{block.name} shows lines that {block.excerpt} does not have: {stray}"


# -- the prose around the blocks: names, modules and links that must follow the code -------------------
def test_layout_names_every_module():
    """docs/layout.md names every module of optlab/ (the plugins by their NAME.py row)."""
    from optlab.objectives import OBJECTIVES
    from optlab.solvers import SOLVERS

    layout = (REPO / "docs" / "layout.md").read_text()
    plugin_homes = {cls.__module__ for cls in [*OBJECTIVES.values(), *SOLVERS.values()]}
    missing = []
    for path in sorted((REPO / "optlab").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        if path.name in ("__init__.py", "__main__.py") or module in plugin_homes:
            continue
        if f"`{path.relative_to(REPO)}`" not in layout and f"`{path.name}`" not in layout:
            missing.append(str(path.relative_to(REPO)))
    assert not missing, f"docs/layout.md does not name {missing}"


def data_keys() -> set[str]:
    """Dotted ``optlab.`` strings the code writes as data (parquet metadata, MLflow tags), not modules."""
    keys = set()
    for path in (REPO / "optlab").rglob("*.py"):
        keys.update(re.findall(r'b?"(optlab\.[\w.]+)"', path.read_text()))
    from optlab.moved import MOVED

    return keys - set(MOVED)


def resolve(name: str) -> object:
    """The object a dotted name in the docs stands for, by import then attribute access."""
    import importlib
    import warnings

    parts = name.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for cut in range(len(parts), 0, -1):
            try:
                found = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        from optlab.moved import MovedModule

        assert not isinstance(found, MovedModule), f"{name}: a module name kept only for one release"
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
    return found


def test_every_optlab_name_in_the_docs_exists():
    """Each `optlab.x.y` of the pages is importable now, and not by a deprecated name."""
    skip = data_keys()
    names = {m for page in PAGES for m in re.findall(r"`(optlab(?:\.\w+)+)", page.read_text())} - skip
    assert names
    broken = []
    for name in sorted(names):
        try:
            resolve(name)
        except (AssertionError, AttributeError, DeprecationWarning) as error:
            broken.append(f"{name} ({error})")
    assert not broken, f"names in the docs that the code lacks: {broken}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_pages_resolve():
    """Every relative link of README.md and docs/*.md names a file that exists, and a heading there."""
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not inside code blocks
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s) and the like
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                headings = {slug(h) for h in re.findall(r"^#+ (.*)$", file.read_text(), flags=re.M)}
                if anchor not in headings:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_readme_is_a_short_page():
    """The README stays a page a newcomer reads through (at most 400 lines); the rest is in docs/."""
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 400, f"README.md has {len(lines)} lines; allowed: 400 (move the rest to a docs/ page)"
    index = (REPO / "docs" / "index.md").read_text()
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md") if p.name != "index.md")
    assert [p for p in pages if f"]({p})" not in index] == [], "docs/index.md lists every page"
