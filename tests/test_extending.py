"""docs/extending.md works as written: each section's code is loaded under the module its caption names (added to
the module when the file exists), its schema entries added to the schema, its YAML composed as the config option its
caption names, each of its commands composed and checked, and each of its tests run with the suite's fixtures."""

from __future__ import annotations

import importlib
import itertools
import re
import shlex
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from declutr.config import schema, settings
from tests.helpers.paths import ROOT

DOC = ROOT / "docs" / "extending.md"
SCHEMA_FILE = "src/declutr/config/schema.py"  # its blocks are entries of SCHEMA, not module code


@dataclass(frozen=True)
class Block:
    """A fenced block of the doc: ``caption`` is the file it goes into (``None``: a command block)."""

    caption: str | None
    language: str
    code: str


def section_blocks(title: str) -> list[Block]:
    """The fenced blocks of the section ``## <title>``, each with the caption on the line right before it, if any."""
    text = DOC.read_text(encoding="utf-8")
    section = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"docs/extending.md has no section '## {title}'"
    found = re.findall(r"^(?:`([^`\n]+)`\n)?```(\w+)\n(.*?)^```$", section.group(1), re.M | re.S)
    return [Block(caption or None, language, code) for caption, language, code in found]


def install(blocks: list[Block], conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put each block where its caption says, for this test only: additions to existing modules first (the new
    modules import them), then the schema entries, then the new modules; YAML into ``conf``."""
    for block in blocks:
        if block.caption and block.caption.startswith("conf/"):
            target = conf / block.caption.removeprefix("conf/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
    code = [b for b in blocks if b.language == "python" and b.caption and b.caption.startswith("src/")]
    for block in sorted(code, key=lambda b: (b.caption == SCHEMA_FILE, not (ROOT / b.caption).is_file())):
        if block.caption == SCHEMA_FILE:
            namespace = {**vars(schema), **vars(settings)}  # schema.py imports the settings it names
            entries = eval(compile(f"(\n{block.code}\n)", block.caption, "eval"), namespace)
            monkeypatch.setattr(schema, "SCHEMA", schema.SCHEMA + entries)
        else:
            _load(block, monkeypatch)


def _load(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    """``src/declutr/x/y.py`` as module ``declutr.x.y``: new, or the existing module with the block's names added."""
    name = block.caption.removeprefix("src/").removesuffix(".py").replace("/", ".")
    if (ROOT / block.caption).is_file():
        module = importlib.import_module(name)
        namespace = dict(vars(module))
        exec(compile(block.code, block.caption, "exec"), namespace)
        for key, value in namespace.items():
            if key not in vars(module):
                monkeypatch.setattr(module, key, value, raising=False)
        return
    package, _, leaf = name.rpartition(".")
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / block.caption)
    monkeypatch.setitem(sys.modules, name, module)  # before running it: dataclasses look their module up
    monkeypatch.setattr(importlib.import_module(package), leaf, module, raising=False)
    exec(compile(block.code, block.caption, "exec"), vars(module))


def with_conf(make_config: Callable, conf: Path) -> Callable:
    """``make_config`` that also searches ``conf`` for config options, as if its files were in ``conf/``."""
    return lambda *overrides: make_config(f"hydra.searchpath=[file://{conf}]", *overrides)


def check_commands(blocks: list[Block], make_config: Callable) -> int:
    """Each ``python run.py ...`` line, its placeholders filled, composes (every combination of a sweep's values) and
    passes the settings check; returns the number of configs checked."""
    checked = 0
    for block in blocks:
        for line in block.code.splitlines() if block.language == "bash" else []:
            words = shlex.split(re.sub(r"<(\w+)>", r"\1", line), comments=True)  # a placeholder <run> filled: run
            assert words[:2] == ["python", "run.py"], line
            overrides = OverridesParser.create().parse_overrides([w for w in words[2:] if w != "-m"])
            choices = [[f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()]
                       if o.is_sweep_override() else [o.input_line] for o in overrides]
            for combination in itertools.product(*choices):
                schema.validate(make_config(*combination))
                checked += 1
    return checked


def run_tests(blocks: list[Block], request: pytest.FixtureRequest, fixtures: dict) -> list[str]:
    """Run the ``test_*`` functions of the doc's test blocks, each parametrize case, with the suite's fixtures
    (``fixtures`` first); returns the names run."""
    ran = []
    for block in blocks:
        if not (block.caption or "").startswith("tests/"):
            continue
        namespace = {"__name__": Path(block.caption).stem}
        exec(compile(block.code, block.caption, "exec"), namespace)
        for name, test in namespace.items():
            if not (name.startswith("test_") and callable(test)):
                continue
            for case in _cases(test):
                arguments = {p: case[p] if p in case else fixtures[p] if p in fixtures else request.getfixturevalue(p)
                             for p in test.__code__.co_varnames[:test.__code__.co_argcount]}
                test(**arguments)
                ran.append(name)
    return ran


def _cases(test: Callable) -> list[dict]:
    """One mapping of argument values per case of the test's ``pytest.mark.parametrize`` marks (one empty case
    without)."""
    cases = [{}]
    for mark in getattr(test, "pytestmark", []):
        assert mark.name == "parametrize", f"{test.__name__}: only parametrize marks are run here"
        names, values = mark.args
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = [value if len(names) > 1 else (value,) for value in values]
        cases = [{**case, **dict(zip(names, row))} for case in cases for row in rows]
    return cases


@pytest.fixture
def doc_section(tmp_path, monkeypatch, make_config, request):
    """``doc_section(title)``: the section's code installed, its commands checked and its tests run; returns
    ``(commands checked, tests run)``."""

    def run_section(title: str) -> tuple[int, list[str]]:
        blocks = section_blocks(title)
        conf = tmp_path / "conf"
        install(blocks, conf, monkeypatch)
        make = with_conf(make_config, conf)
        return check_commands(blocks, make), run_tests(blocks, request, {"make_config": make})

    return run_section


def test_the_sampler_section(doc_section):
    commands, tests = doc_section("Add a sampler")
    assert commands == 2
    assert tests == ["test_each_positive_is_the_span_right_after_its_anchor",
                     "test_a_bad_setting_is_refused_naming_it", "test_a_short_run_trains_on_next_span_pairs"]


def test_the_loss_section(doc_section):
    commands, tests = doc_section("Add a loss")
    assert commands == 1 + 2 * 3  # the sweep: 2 losses x 3 seeds
    assert tests == ["test_symmetric_infonce_matches_the_loop"] * 3 + ["test_a_short_run_trains_with_it"]


def test_the_logger_section(doc_section):
    commands, tests = doc_section("Add a logger")
    assert commands == 2
    assert tests == ["test_a_run_logs_every_step_as_a_json_line_with_the_csv_logs_values"]


def test_the_evaluation_task_section(doc_section):
    commands, tests = doc_section("Add an evaluation task")
    assert commands == 1
    assert tests == ["test_task_eval_reports_spearman_of_cosines_against_gold",
                     "test_a_malformed_line_or_a_missing_file_is_refused_with_the_fix"]


def test_every_block_of_the_doc_is_in_a_tested_section():
    titles = re.findall(r"^## (.+)$", DOC.read_text(encoding="utf-8"), re.M)
    assert titles == ["Add a sampler", "Add a loss", "Add a logger", "Add an evaluation task"]
    fences = DOC.read_text(encoding="utf-8").count("\n```") // 2
    assert fences == sum(len(section_blocks(title)) for title in titles)
