"""The README's commands work as written, from the repository root of a fresh clone.

Which commands: every `app ...` command in the README's ```bash blocks (pipelines, `&&`
chains and `\\` continuations included; `python -m tunehub.core.cli ...` under torchrun
counts as `app ...`), and every `app` line of its indented blocks (the Serving section).

What happens to each, by a small rule on the subcommand:
- RUN (`list-tasks`, `show-task`, `plugins`, `models` listing, `validate-data`,
  `clean --dry-run`): run for real through the CLI in the repository root, with
  TUNEHUB_HOME in a temporary folder; exit code 0.
- ON_A_VERSION (`predict`, `evaluate`, `monitor`, when they name no `--model` version and
  read no stdin): run for real, in a temporary folder that sees `examples/`, against a
  version of the task fine-tuned once here from the tiny random BERT; exit code 0, and
  every file the command names as output is written.
- Everything else (training, serving, versions, feedback, new plugins) is checked without
  running: click parses the line as `app` would (an unknown or hidden, deprecated flag,
  a missing value or a bad choice fails), each task named exists (or was made by an
  earlier `app new-plugin`), each `TASK@version` names a task, `--base-model` is a
  registered alias, each input file (`--data`, `--eval-data`, `--input`, `--registry`)
  exists, `--set` keys are real settings of the task (`app show-task TASK --set ...`),
  and a run-task's `--data` passes `app validate-data`.
Every command named also answers `--help`. The rest of the file checks what those commands
stand on: the example files, the Install and Test blocks against CI, the plugin flow's test
extras, and the task file the README shows.
"""
from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.core import ParameterSource
from click.testing import CliRunner, Result

from tunehub.core.cli import main

from conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"

RUN = {"list-tasks", "show-task", "plugins", "models", "validate-data", "clean"}
ON_A_VERSION = {"predict", "evaluate", "monitor"}
INPUT_FLAGS = ("--data", "--eval-data", "--input", "--registry")
OUTPUT_FLAGS = ("--output", "--alerts", "--report")
OPERATORS = {"&&", "||", "|", ";", "&"}
REDIRECTS = {">", ">>", "2>", "<"}


@dataclass(frozen=True)
class Command:
    line: str         # the shell line as the README gives it (continuations joined)
    args: list[str]   # what follows `app`

    def __str__(self) -> str:
        return "app " + " ".join(self.args)


def _logical_lines(lines: list[str]) -> list[str]:
    """Lines with `\\` continuations joined; heredoc bodies dropped."""
    out, current, heredoc = [], "", None
    for line in lines:
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        start = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", current)
        heredoc = start[1] if start else None
        if current.strip():
            out.append(current.strip())
        current = ""
    return out


def shell_lines(markdown: str) -> list[str]:
    """The logical lines of the ```bash blocks, then the `app` lines of indented blocks."""
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, re.S | re.M):
        lines += _logical_lines(block.splitlines())
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M).splitlines()
    indented, previous = [], ""
    for line in prose:
        if line.startswith("    ") and (indented or not previous.strip()):
            indented.append(line)
        elif indented:
            lines += [l for l in _logical_lines(indented) if re.search(r"(^|\s)app\s", l)]
            indented = []
        previous = line
    if indented:
        lines += [l for l in _logical_lines(indented) if re.search(r"(^|\s)app\s", l)]
    return lines


def commands_of(line: str) -> list[Command]:
    """The `app` commands of one shell line (each segment of a pipeline or chain)."""
    tokens, segments = shlex.split(line, comments=True), [[]]
    for token in tokens:
        if token in OPERATORS:
            segments.append([])
        else:
            segments[-1].append(token)
    found = []
    for segment in segments:
        kept = [t for i, t in enumerate(segment)  # without redirections and their targets
                if t not in REDIRECTS and (i == 0 or segment[i - 1] not in REDIRECTS)]
        if "app" in kept:
            found.append(Command(line, kept[kept.index("app") + 1:]))
        elif "tunehub.core.cli" in kept and kept[kept.index("tunehub.core.cli") - 1] == "-m":
            found.append(Command(line, kept[kept.index("tunehub.core.cli") + 1:]))
    return found


def readme_commands() -> list[Command]:
    lines = shell_lines(README.read_text(encoding="utf-8"))
    return [command for line in lines for command in commands_of(line)]


# --- parsing a command as `app` would, without running it ---------------------------------

def _after_options(group: click.Group, args: list[str], path: str) -> list[str]:
    """What follows a group's own options (`app --quiet run-task ...`)."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-h", "--help"):
        flag = args[i].split("=", 1)[0]
        option = next((p for p in group.params if flag in p.opts + p.secondary_opts), None)
        assert option is not None, f"`{path}` has no option {flag}"
        i += 1 if option.is_flag or "=" in args[i] else 2
    return args[i:]


def parse(args: list[str]) -> click.Context:
    """The context `app ARGS` runs with: click itself parses and checks every option and
    argument (unknown flags, missing values, bad choices raise); nothing is invoked."""
    group, name, parent = main, "app", None
    while True:
        path = f"{parent.command_path} {name}" if parent else name
        rest = _after_options(group, args, path)
        probe = click.Context(group, info_name=name, parent=parent)
        command = group.get_command(probe, rest[0]) if rest else None
        if command is None:  # the group runs itself (`app models`)
            assert not rest, f"`{path}` has no command {rest[0]!r}"
            return group.make_context(name, list(args), parent=parent)
        parent = group.make_context(name, args[:len(args) - len(rest)], parent=parent,
                                    resilient_parsing=True)
        name, args = rest[0], rest[1:]
        if not isinstance(command, click.Group):
            return command.make_context(name, list(args), parent=parent)
        group = command


def subcommand(ctx: click.Context) -> str:
    return ctx.command_path.split(" ", 1)[1] if " " in ctx.command_path else ""


def given(ctx: click.Context, flag: str) -> list[str]:
    """The values given on the line for the option spelt `flag` (none if not given)."""
    for param in ctx.command.params:
        if flag in param.opts + param.secondary_opts:
            if ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
                return []
            value = ctx.params[param.name]
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return []


def task_names(ctx: click.Context) -> list[str]:
    """Tasks the line names: its task arguments and the task of every TASK@version."""
    names = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(param, click.Argument) and param.name in ("name", "names", "task"):
            names += list(values)
        elif param.name.startswith("ref") or param.opts == ["--model"]:
            names += [v.split("@", 1)[0] for v in values if isinstance(v, str) and "@" in v]
    return names


def invoke(args: list[str]) -> Result:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, f"app {' '.join(args)} -> {result.exit_code}:\n{result.output}"
    return result


# --- which rule applies ------------------------------------------------------------------

def rule(command: Command) -> str:
    """Which of the three rules above applies. A line click cannot parse is static: it
    fails there, with click's message."""
    try:
        ctx = parse(command.args)
    except (click.ClickException, AssertionError):
        return "static"
    name = subcommand(ctx)
    if name in RUN and (name != "clean" or ctx.params.get("dry_run")):
        return "run"
    if name in ON_A_VERSION and not given(ctx, "--model") and "-" not in given(ctx, "--input"):
        return "on a version"
    return "static"


def command_paths(commands: list[Command]) -> list[str]:
    paths = set()
    for command in commands:
        try:
            paths.add(subcommand(parse(command.args)))
        except (click.ClickException, AssertionError):
            pass
    return sorted(paths)


COMMANDS = readme_commands()
CHEAP = [c for c in COMMANDS if rule(c) == "run"]
ON_VERSION = [c for c in COMMANDS if rule(c) == "on a version"]
STATIC = [c for c in COMMANDS if rule(c) == "static"]


def _id(command: Command) -> str:
    return str(command)[:90]


# --- the extractor itself ----------------------------------------------------------------

def test_commands_are_found_in_blocks_pipelines_and_continuations():
    text = ("```bash\napp list-tasks    # a comment\npython - <<'PY'\napp nothing\nPY\n"
            "tail -f x.jsonl | app monitor t --input - \\\n    --set a=1 > out.txt\n```\n\n"
            "Prose, then an indented block:\n\n    app models\n    model = load('app x')\n")
    found = [c for line in shell_lines(text) for c in commands_of(line)]
    assert [c.args for c in found] == [["list-tasks"], ["monitor", "t", "--input", "-", "--set",
                                                        "a=1"], ["models"]]
    chained = commands_of("cd acme && pytest && torchrun -n 2 -m tunehub.core.cli run-task t")
    assert [c.args for c in chained] == [["run-task", "t"]]


def test_the_readme_has_commands_of_every_kind():
    seen = set(command_paths(COMMANDS))
    assert {"list-tasks", "show-task", "validate-data", "run-task", "predict", "evaluate",
            "monitor", "serve", "models compare", "models promote", "feedback list",
            "new-plugin"} <= seen
    assert len(CHEAP) >= 5 and len(ON_VERSION) >= 4 and len(STATIC) >= 15


def test_a_wrong_flag_or_a_deprecated_one_is_caught():
    with pytest.raises(click.NoSuchOption):
        parse(["run-task", "financial-sentiment", "--epochs", "3"])
    with pytest.raises(click.BadParameter):
        parse(["evaluate", "financial-sentiment", "--quantize", "int4"])
    with pytest.raises(AssertionError, match="has no command 'run-tsk'"):
        parse(["run-tsk", "financial-sentiment"])
    with pytest.raises(AssertionError, match="hidden"):
        check_flags_are_documented(parse(["run-task", "financial-sentiment", "--model", "minilm"]))


# --- the commands ------------------------------------------------------------------------

def check_flags_are_documented(ctx: click.Context) -> None:
    """Every option on the line is one `--help` lists (hidden ones are old spellings)."""
    help_text = ctx.get_help()
    for param in ctx.command.params:
        if (isinstance(param, click.Option)
                and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE):
            assert not param.hidden, f"{ctx.command_path} uses the hidden option {param.opts[0]}"
            assert param.opts[0] in help_text


@pytest.mark.parametrize("command", CHEAP, ids=_id)
def test_cheap_commands_run_as_written(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    check_flags_are_documented(parse(command.args))
    invoke(command.args)


@pytest.mark.parametrize("command", STATIC + ON_VERSION, ids=_id)
def test_commands_name_real_tasks_settings_files_and_flags(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    from tunehub.core.extending.plugins import load_catalog

    catalog = load_catalog()
    made = {c.args[1] for c in COMMANDS if c.args[:1] == ["new-plugin"]}
    ctx = parse(command.args)
    check_flags_are_documented(ctx)
    name = subcommand(ctx)
    for task in task_names(ctx):
        if name == "new-plugin":
            assert task not in catalog.tasks, f"{command}: {task} is a task already"
        else:
            assert task in catalog.tasks or task in made, f"{command}: no task {task!r}"
    for flag in INPUT_FLAGS:
        for path in given(ctx, flag):
            assert path == "-" or (ROOT / path).is_file(), f"{command}: {path} does not exist"
    for model in given(ctx, "--base-model"):
        assert model in catalog.models() or (ROOT / model).exists(), \
            f"{command}: --base-model {model} is no alias (app models)"
    tasks = [t for t in task_names(ctx) if t in catalog.tasks]
    settings = given(ctx, "--set")
    if settings and name != "predict":  # predict's --set are predict options
        for task in tasks:
            invoke(["show-task", task, *[a for s in settings for a in ("--set", s)]])
    if name == "run-task" and given(ctx, "--data"):
        data = [a for flag in ("--data", "--eval-data") for v in given(ctx, flag)
                for a in (flag, v)]
        invoke(["validate-data", tasks[0], *data, *[a for s in settings for a in ("--set", s)]])


@pytest.mark.parametrize("path", command_paths(COMMANDS))
def test_every_command_named_has_help(path):
    result = invoke([*path.split(), "--help"])
    assert result.output.startswith("Usage: ")


@pytest.fixture(scope="module")
def version_home(tmp_path_factory, tiny_model) -> Path:
    """A home holding financial-sentiment@v1, fine-tuned from the tiny BERT."""
    import tunehub

    home = tmp_path_factory.mktemp("readme-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNEHUB_HOME", str(home))
        patch.setenv("XDG_CONFIG_HOME", str(home / "config"))  # no user registry
        tunehub.run_task("financial-sentiment", model=str(tiny_model), overrides=tiny_overrides())
    return home


@pytest.mark.parametrize("command", ON_VERSION, ids=_id)
def test_commands_on_a_fine_tuned_version_run_as_written(command, version_home, tunehub_home,
                                                         tmp_path, monkeypatch):
    shutil.copytree(version_home, tunehub_home, dirs_exist_ok=True)
    folder = tmp_path / "clone"
    folder.mkdir()
    (folder / "examples").symlink_to(EXAMPLES)
    monkeypatch.chdir(folder)
    result = invoke(command.args)
    ctx = parse(command.args)
    for flag in OUTPUT_FLAGS:
        for path in given(ctx, flag):
            assert (folder / path).exists(), f"{command} wrote no {path}"
    if subcommand(ctx) == "predict" and not given(ctx, "--output"):
        assert result.stdout.strip()


# --- the examples and the install steps ----------------------------------------------------

def test_example_files_are_what_their_script_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_news", EXAMPLES / "make_news.py")
    make_news = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_news)
    make_news.write(tmp_path)
    for name in ("news.jsonl", "news.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
    with open(EXAMPLES / "train.csv", newline="", encoding="utf-8") as handle:
        rows = [{"sentence": r["text"], "label": r["label"]} for r in csv.DictReader(handle)]
    lines = (EXAMPLES / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows  # the same rows, text as `sentence`
    with open(EXAMPLES / "test.csv", newline="", encoding="utf-8") as handle:
        held_out = {r["text"] for r in csv.DictReader(handle)}
    assert held_out and not held_out & {r["sentence"] for r in rows}


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    return re.search(rf"(?ms)^## {re.escape(title)}\n(.*?)(?=^## )", text)[1]


def _bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, re.S | re.M)


def test_install_and_test_are_one_block_each_and_the_test_one_is_what_ci_runs():
    (install,) = _bash_blocks(_section("Install and run"))
    (test,) = _bash_blocks(_section("Test"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [" ".join(l.replace("--quiet", "").split()) for l in ci.splitlines()]
    assert test.strip() == 'pip install -e ".[test]" && python -m pytest -q'
    for step in test.strip().split(" && "):
        assert step in ci_lines, f".ci/run does not run {step!r}"
    torch = re.search(r"pip install (torch==\S+)", install)[1]
    assert f"pip install {torch}" in ci_lines  # the same torch as CI
    assert install.splitlines()[-1].startswith("app run-task financial-sentiment")
    assert "pip install -e ." in install


@pytest.mark.parametrize("page", ["README.md", "docs/plugins.md"])
def test_the_plugin_flow_installs_the_test_extras_before_pytest(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    flow = text[text.index("app new-plugin acme-tickets"):]
    flow = flow[:flow.index("pytest") + len("pytest")]
    assert re.search(r"pip install -e \S*acme-tickets\[test\]", flow), \
        f"{page}: install the plugin's test extras before running its tests"


def _flat(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_task_file_shown_is_the_shipped_one():
    import tomllib

    (block,) = re.findall(r"^```toml\n(.*?)^```", _section("A task file"), re.S | re.M)
    shown = _flat(tomllib.loads(block))
    shipped = _flat(tomllib.loads(
        (ROOT / "plugins" / "financial_sentiment" / "financial-sentiment.toml").read_text()))
    assert {k: shipped.get(k, "(not in the file)") for k in shown} == shown
