"""Property tests: whatever arrives, the parser refuses it by field name or the script is sound.

Invariants, for arbitrary and adversarial values in every field, from every way in:

- parsing raises only :class:`UserOptionsError`, whose keys are field names (or the unknown key
  sent) and whose messages start with that name;
- an accepted request renders a script whose every line has one of the template's shapes: each
  ``#SBATCH`` line is exactly one ``--name[=value]`` argument to sbatch, with the value intended;
  each shell line splits into exactly the intended words, with no unquoted metacharacter;
- saving and re-reading an accepted request gives it back.

CI runs a few thousand examples. For a long run: ``MOSS_FUZZ_EXAMPLES=200000 pytest
tests/unit/test_options_fuzz.py``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.sbatch_model import sbatch_arguments

from jupyterhub_moss.batch_script import (
    ScriptSettings,
    build_script_context,
    default_template,
    launcher_source,
    render_batch_script,
)
from jupyterhub_moss.config import load_partitions
from jupyterhub_moss.limits import merge_partition_limits
from jupyterhub_moss.options import (
    FIELD_NAMES,
    OptionsPolicy,
    UserOptions,
    UserOptionsError,
    parse_user_options,
)
from jupyterhub_moss.request_values import flatten_form, normalise_query
from jupyterhub_moss.sbatch_options import (
    DEFAULT_DENIED_SBATCH_OPTIONS,
    SHORT_OPTIONS,
    SbatchOptionError,
    normalise_option_names,
    parse_sbatch_options,
)
from jupyterhub_moss.slurm.partitions import parse_sinfo

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("MOSS_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# The other ways in share the parser; a quarter of the examples each keeps the tier quick.
FUZZ_LIGHT = settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ENVIRONMENTS = {
    "default": {"path": "/opt/jupyter/bin"},
    "mods": {"modules": "python/3.11 jupyter", "prologue": "source /etc/profile.d/modules.sh"},
    "image": {"path": "/images/jupyter.sif"},
}
LIMITS = merge_partition_limits(
    load_partitions(
        {
            "cpu": {"gpu": "", "jupyter_environments": ENVIRONMENTS},
            "gpu": {"jupyter_environments": ENVIRONMENTS},
            "debug": {"gpu": "", "jupyter_environments": {"only": {"modules": "jupyter"}}},
            # a choice of GPU types: the type reaches the script as gpu:TYPE:N
            "typed": {
                "gpu_types": {"fake": {}, "other": {"max_ngpus": 1}},
                "gpu_any_type": False,
                "jupyter_environments": ENVIRONMENTS,
            },
        }
    ),
    parse_sinfo((FIXTURES / "slurm" / "sinfo_single_idle.txt").read_text()),
)
POLICY = OptionsPolicy()
SETTINGS = ScriptSettings(
    home_dir="/home/alice",
    export_vars=("PATH", "JUPYTERHUB_API_TOKEN"),
    account="physics",
    options="--constraint=fast",
)

NASTY = [
    "\n",
    "\r",
    "\x00",
    "\x85",
    "\u2028",
    "\t",
    " ",
    ";",
    "$(id)",
    "`id`",
    "'",
    '"',
    "#",
    "\\",
    "&&",
    "|",
    ">",
    "<",
    "*",
    "~",
    "..",
    "//",
    "%",
    "{}",
    "{{ x }}",
    "{% if 1 %}",
    "é",
    "🙂",
    "\u212a",  # KELVIN SIGN: matches [K] case-insensitively
    "\u017f",  # LONG S: matches [s] case-insensitively
    "\u0663",  # ARABIC-INDIC DIGIT THREE: a Unicode digit
    "\u00a0",
    "-",
    "--",
    "=",
    "\n#SBATCH --uid=0\n",
    "../../etc/passwd",
    "//evil.example",
    "http://evil.example",
    "9" * 30,
    "-1",
    "1e9",
    "0x10",
]
# Values a person would send. Some are still refused in some combinations (GPUs on cpu, a
# runtime over debug's hour), which is part of what is tested.
PLAUSIBLE = {
    "partition": ["cpu", "gpu", "debug", "typed"],
    "nprocs": ["1", "4", "8", 2, ""],
    "ngpus": ["0", "1", "2", 0, ""],
    "gpu_type": ["fake", "other", ""],
    "memory": ["512M", "2G", "0", "8000", ""],
    "runtime": ["90", "1:00:00", "2:00", "1-0", "12:00:00", ""],
    "reservation": ["maint", "r_1", ""],
    "options": [
        "--comment=x",
        "--exclusive",
        "-A acct",
        "--comment='a b; $(id) `id`'",
        "--mail-type END",
        "--nice=-5 -H",
        "",
    ],
    "output": ["true", "on", "false", True, ""],
    "default_url": ["/lab", "/tree", "/lab?reset", ""],
    "root_dir": ["/", "~", "~/work", "/data/x y", ""],
    "environment_id": ["default", "mods", "image", "only", ""],
    "environment_path": ["/opt/custom/bin", "/home/a/img.sif", ""],
    "environment_modules": ["python/3.11", "gcc cuda/12", ""],
    "account": ["physics", "chemistry", ""],
    "qos": ["normal", "long", ""],
}
# Near misses that a person or a script might also send.
NEAR_MISSES = {
    "partition": ["nope", "CPU", ""],
    "nprocs": ["9", "0", "-1", "1.5"],
    "ngpus": ["3", "-1"],
    "gpu_type": ["nope", "fake:1", "gpu:fake", "fake,other"],
    "memory": ["9G", "1.5G", "-1"],
    "runtime": ["25:00:00", "0", "2h", "1:2:3:4"],
    "reservation": ["-x", "a b"],
    "options": ["--parti=gpu", "-p cpu", "--gres=gpu:1", "--export ALL", "hello", "-Z"],
    "output": ["maybe", "2"],
    "default_url": ["lab", "//evil.example", "/lab/../../hub"],
    "root_dir": ["work", "~bob", "~/../x"],
    "environment_id": ["gone"],
    "environment_path": ["relative/bin", "/a/../b"],
    "environment_modules": ["-f", "a;b"],
    "account": ["-A", "a,b", "phys ics"],
    "qos": ["--qos", "normal,long", "-x"],
}


def text_for(field: str) -> st.SearchStrategy[str]:
    """Adversarial text: near misses, any code points, and nasty pieces around good values."""
    good = [v for v in PLAUSIBLE[field] if isinstance(v, str)]
    return st.one_of(
        st.sampled_from(NEAR_MISSES[field]),
        st.text(max_size=30),  # any code point, control characters included
        st.builds(
            lambda a, b, c: a + b + c,
            st.sampled_from(good),
            st.sampled_from(NASTY),
            st.sampled_from(good),
        ),
        st.lists(st.sampled_from([*good, *NASTY]), max_size=4).map("".join),
    )


def value_for(field: str) -> st.SearchStrategy:
    """What the REST API may send: mostly text, sometimes other JSON values."""
    return st.one_of(
        text_for(field),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=True),
        st.lists(text_for(field), max_size=2),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=1),
    )


@st.composite
def requests(draw, values=value_for) -> dict:
    """A plausible request with zero to three fields made hostile, now and then an unknown key."""
    raw = {"partition": draw(st.sampled_from(PLAUSIBLE["partition"]))}
    for name in draw(st.sets(st.sampled_from(FIELD_NAMES[1:]))):
        raw[name] = draw(st.sampled_from(PLAUSIBLE[name]))
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True)):
        raw[name] = draw(values(name))
    if draw(st.sampled_from([False] * 9 + [True])):
        raw[draw(st.text(max_size=8))] = draw(st.text(max_size=5))
    return raw


# ---------------------------------------------------------------------------------------------
# The script's shapes

SBATCH_LINE_RE = re.compile(
    r'#SBATCH --[a-z][a-z0-9-]*(=([A-Za-z0-9_.,:/@%+=-]+|"([^"\\\n]|\\[^\n])*"))?'
)
# Characters allowed outside single quotes on a shell line: no expansion, glob or operator.
UNQUOTED_OK_RE = re.compile(r"[A-Za-z0-9_./:=@%+, -]*")


def outside_single_quotes(line: str) -> str:
    outside, quoted = [], False
    for char in line:
        if char == "'":
            quoted = not quoted
        elif not quoted:
            outside.append(char)
    assert not quoted, f"unbalanced quote: {line!r}"
    return "".join(outside)


def shell_words(line: str) -> list[str]:
    """Words as bash would see them, shell operators split out as words of their own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def expected_header(context: dict) -> list[str]:
    args = [
        *context["user_sbatch_options"],  # first: every later line wins over them
        f"--job-name={context['job_name']}",
        f"--chdir={context['home_dir']}",
        f"--export={context['export']}",
        "--get-user-env",
        f"--output={context['output_path']}",
        f"--partition={context['partition']}",
        f"--time={context['runtime']}",
        f"--cpus-per-task={context['nprocs']}",
    ]
    for name in ("mem", "gres", "reservation", "account", "qos"):
        key = "memory" if name == "mem" else name
        if context[key]:
            args.append(f"--{name}={context[key]}")
    return args + list(context["admin_sbatch_options"])


def expected_body(options: UserOptions, context: dict) -> list[list[str]]:
    body = [[], ["set", "-euo", "pipefail"], [], ["export", "SLURM_EXPORT_ENV=ALL"]]
    if options.default_url:
        body.append(["export", f"JUPYTERHUB_DEFAULT_URL={options.default_url}"])
    if options.root_dir:
        body.append(["export", f"JUPYTERHUB_ROOT_DIR={options.root_dir}"])
    if context["environment_prologue"]:
        body.append(shlex.split(context["environment_prologue"]))
    if context["modules"]:
        body.append(["module", "load", *context["modules"]])
    if context["path_prepend"]:
        body.append(["export", f"PATH={context['path_prepend']}:$PATH"])
    launcher = [context["launcher_python"], "-I", "-S", "-c", "$MOSS_LAUNCHER"]
    body.append(["srun", *context["container"], *launcher, *context["command"]])
    return body


LAUNCHER_START = "MOSS_LAUNCHER=$(cat <<'MOSS_LAUNCHER_END'"


def without_launcher(body: list[str]) -> list[str]:
    """The body without the launcher's here-document, which must hold exactly its source."""
    start = body.index(LAUNCHER_START)
    end = body.index("MOSS_LAUNCHER_END", start)
    assert body[end + 1] == ")"
    assert "\n".join(body[start + 1 : end]) == launcher_source()
    return body[:start] + body[end + 2 :]


def assert_script_has_template_shapes(options: UserOptions) -> None:
    context = build_script_context(options, LIMITS[options.partition], SETTINGS)
    script = render_batch_script(default_template(), context)
    assert script.endswith("\n")
    lines = script[:-1].split("\n")
    assert lines[0] == "#!/bin/bash"
    end = next(i for i, line in enumerate(lines) if i and not line.startswith("#SBATCH "))
    header = lines[1:end]
    for line in header:
        assert SBATCH_LINE_RE.fullmatch(line), line
        assert len(sbatch_arguments(line)) == 1, line
    assert [sbatch_arguments(line)[0] for line in header] == expected_header(context)

    body = without_launcher(lines[end:])
    assert [shell_words(line) for line in body] == expected_body(options, context)
    for line in body:
        outside = outside_single_quotes(line).replace('"$PATH"', "")
        outside = outside.replace('"$MOSS_LAUNCHER"', "")
        assert UNQUOTED_OK_RE.fullmatch(outside), line


def assert_rejection_names_fields(error: UserOptionsError, raw: dict) -> None:
    assert error.errors
    for key, message in error.errors.items():
        assert key in FIELD_NAMES or key in raw, key
        assert message.startswith(f"{key}: "), message


def check(raw: dict) -> UserOptions | None:
    try:
        options = parse_user_options(raw, LIMITS, POLICY)
    except UserOptionsError as error:
        assert_rejection_names_fields(error, raw)
        return None
    assert_script_has_template_shapes(options)
    assert parse_user_options(options.to_saved(), LIMITS, POLICY) == options
    return options


# ---------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(raw=requests())
@example(raw={"partition": "cpu", "options": "--comment='a;b $(id) `id` \"q\" #'"})
@example(raw={"partition": "cpu", "root_dir": "~/a b", "default_url": "/lab?x=1&y=2"})
@example(raw={"partition": "gpu", "ngpus": "2", "environment_id": "image"})
@example(raw={"partition": "typed", "ngpus": "1", "gpu_type": "other"})
@example(raw={"partition": "cpu", "environment_path": "/x/bin", "environment_modules": "a b"})
@example(raw={"partition": "cpu", "environment_id": "mods", "output": True, "nprocs": 8})
def test_api_values_are_refused_by_name_or_render_a_sound_script(raw):
    check(raw)


@FUZZ_LIGHT
@given(raw=requests(values=text_for))
def test_query_string_values_with_or_without_opt_prefix(raw):
    prefixed = {f"opt-{key}": value for key, value in raw.items()}
    assert normalise_query(prefixed) == raw
    check(normalise_query(raw))


@FUZZ_LIGHT
@given(
    form=st.dictionaries(
        st.sampled_from(FIELD_NAMES),
        st.lists(st.one_of(st.binary(max_size=20), st.text(max_size=20)), max_size=3),
    )
)
def test_form_bytes_are_refused_by_name_or_render_a_sound_script(form):
    check({"partition": "cpu", **flatten_form(form)})


# Words sbatch would accept in `options`, including denied names, abbreviations and short forms.
OPTION_WORDS = st.one_of(
    st.sampled_from(sorted(DEFAULT_DENIED_SBATCH_OPTIONS)),
    st.sampled_from(sorted(DEFAULT_DENIED_SBATCH_OPTIONS)).map(lambda n: n[: max(3, len(n) // 2)]),
    st.sampled_from([f"-{letter}" for letter in SHORT_OPTIONS]),
    st.sampled_from(["--comment", "--exclusive", "--constraint", "--mail-type", "--nice"]),
    st.sampled_from(["--comment", "--parti", "--mem"]).map(lambda n: n + "="),
    st.text(alphabet="abcxyz-=;'\" $`#", min_size=1, max_size=6),
)


@FUZZ_LIGHT
@given(words=st.lists(OPTION_WORDS, max_size=6))
def test_no_denied_option_gets_through_by_any_spelling(words):
    text = " ".join(words)
    try:
        items = parse_sbatch_options(text)
    except SbatchOptionError:
        return
    denied = normalise_option_names(DEFAULT_DENIED_SBATCH_OPTIONS)
    for item in items:
        assert item.startswith("--")
        name = item[2:].split("=", 1)[0]
        # sbatch would resolve `name` (or any longer name it abbreviates) to none of these
        assert not any(d.startswith(name) for d in denied), item
