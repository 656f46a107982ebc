"""Every option ``sbatch`` accepts, from Slurm 22.05 to 25.11, and whether users may type it.

Source: SchedMD/slurm, ``src/common/slurm_opt.c``: the ``common_options[]`` entries that have a
``.name`` and a ``.set_func`` or ``.set_func_sbatch`` (what ``slurm_option_table_create()`` gives
``sbatch``'s ``getopt_long``; ``src/sbatch/opt.c`` adds no options of its own), read at the tags
slurm-22-05-11-1, slurm-23-02-8-1, slurm-23-11-11-1, slurm-24-05-8-1, slurm-24-11-7-1,
slurm-25-05-8-1 and slurm-25-11-7-1. Entries that share a getopt ``.val`` are aliases
(``tasks-per-node`` is ``ntasks-per-node``); a one-letter ``.val`` is the short option.

The table is the union over those versions (``since``/``until`` say where each one exists), so
a name that any supported sbatch would resolve is known here. What a user may type is decided
per option, by what it would do:

- ``resources``: changes the CPUs, tasks, nodes, memory, GPUs, run time, partition or other
  consumables the form sets and checks, or how they are laid out;
- ``identity``, ``files``, ``environment``, ``cluster``: who runs the job, which files it reads or
  writes, what environment it gets, which cluster it goes to;
- ``what runs``: the hub's server, once, as the hub wrote it;
- ``sbatch``: changes what sbatch prints or does, and the hub reads sbatch's output;
- ``site``: node hardware, accounting, priority and notifications the site controls.

Allowed by default: options that only narrow where or when the job runs, name who pays under
rules Slurm itself enforces (``--account``, ``--qos``, ``--licenses``), or annotate the job.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALLOWED",
    "SBATCH_OPTIONS",
    "SLURM_VERSIONS",
    "SbatchOption",
    "canonical_name",
    "denied_by_default",
    "option_named",
    "options_matching",
    "short_option",
]

#: The Slurm releases the table was read from (the last tag of each).
SLURM_VERSIONS: tuple[str, ...] = ("22.05", "23.02", "23.11", "24.05", "24.11", "25.05", "25.11")

ALLOWED = ""  # the ``denied`` reason of an option users may type
RESOURCES = "resources"
IDENTITY = "identity"
FILES = "files"
ENVIRONMENT = "environment"
CLUSTER = "cluster"
WHAT_RUNS = "what runs"
SBATCH = "sbatch"
SITE = "site"


@dataclass(frozen=True)
class SbatchOption:
    """One ``sbatch`` long option as Slurm's option table declares it."""

    name: str
    #: ``"required"``, ``"optional"`` (only as ``--name=value``) or ``"none"``: getopt's has_arg.
    value: str
    #: Why users may not type it (one of the categories above); ``""`` when they may.
    denied: str
    short: str = ""
    #: The option this name is an alias of (same getopt ``.val``); ``""`` for the main name.
    same_as: str = ""
    since: str = "22.05"
    until: str = ""  # last release that has it; "" = still there in 25.11
    missing_in: tuple[str, ...] = ()  # releases in between that dropped it

    @property
    def canonical(self) -> str:
        return self.same_as or self.name


_O = SbatchOption
SBATCH_OPTIONS: tuple[SbatchOption, ...] = (
    # Slurm checks the user's association; the admin's req_account/req_qos lock them.
    _O("account", "required", ALLOWED, short="A"),
    _O("acctg-freq", "required", SITE),  # sampling load on the nodes
    _O("array", "required", WHAT_RUNS, short="a"),
    _O("autocomplete", "required", SBATCH, since="23.02"),
    _O("batch", "required", ALLOWED),  # features of the batch host: only narrows
    _O("bb", "required", RESOURCES),  # burst buffer storage
    _O("bbf", "required", FILES),  # burst buffer spec read from a file
    _O("begin", "required", ALLOWED, short="b"),
    _O("chdir", "required", FILES, short="D"),
    _O("cluster", "required", CLUSTER),
    _O("cluster-constraint", "required", CLUSTER),
    _O("clusters", "required", CLUSTER, short="M"),
    _O("comment", "required", ALLOWED),
    _O("consolidate-segments", "none", RESOURCES, since="25.11"),
    _O("constraint", "required", ALLOWED, short="C"),
    _O("container", "required", WHAT_RUNS),
    _O("container-id", "required", WHAT_RUNS, since="23.02"),
    _O("context", "required", IDENTITY),  # SELinux context
    _O("contiguous", "none", ALLOWED),
    _O("core-spec", "required", RESOURCES, short="S"),
    _O("cores-per-socket", "required", RESOURCES),
    _O("cpu-freq", "required", SITE),
    _O("cpus-per-gpu", "required", RESOURCES),
    _O("cpus-per-task", "required", RESOURCES, short="c"),
    _O("deadline", "required", ALLOWED),  # can only end the job sooner
    _O("delay-boot", "required", SITE),
    _O("dependency", "required", ALLOWED, short="d"),
    _O("distribution", "required", RESOURCES, short="m"),
    _O("error", "required", FILES, short="e"),
    _O("exclude", "required", ALLOWED, short="x"),
    _O("exclusive", "optional", RESOURCES),
    _O("export", "required", ENVIRONMENT),
    _O("export-file", "required", ENVIRONMENT, missing_in=("23.11",)),
    _O("external", "none", WHAT_RUNS, since="25.05"),
    _O("extra", "required", ALLOWED, since="23.02"),  # node filter: only narrows
    _O("extra-node-info", "required", RESOURCES, short="B"),
    _O("get-user-env", "optional", ENVIRONMENT),  # no value from 25.05 on
    _O("gid", "required", IDENTITY),
    _O("gpu-bind", "required", RESOURCES),
    _O("gpu-freq", "required", SITE),
    _O("gpus", "required", RESOURCES, short="G"),
    _O("gpus-per-node", "required", RESOURCES),
    _O("gpus-per-socket", "required", RESOURCES),
    _O("gpus-per-task", "required", RESOURCES),
    _O("gres", "required", RESOURCES),
    _O("gres-flags", "required", RESOURCES),
    _O("help", "none", SBATCH, short="h"),
    _O("hint", "required", RESOURCES),  # nomultithread changes the CPU count
    _O("hold", "none", SBATCH, short="H"),  # the server would never start
    _O("ignore-pbs", "none", SBATCH),
    _O("input", "required", FILES, short="i"),
    _O("job-name", "required", WHAT_RUNS, short="J"),  # the hub's name for its jobs
    _O("kill-on-invalid-dep", "required", ALLOWED),
    _O("licenses", "required", ALLOWED, short="L"),  # Slurm counts and enforces them
    _O("mail-type", "required", ALLOWED),  # mail goes to the job's owner
    # Sends job events (node names, times) anywhere, through the site's mail relay, and a
    # crafted spawn link could set it for someone else's server.
    _O("mail-user", "required", SITE),
    _O("mcs-label", "required", IDENTITY),
    _O("mem", "required", RESOURCES),
    _O("mem-bind", "required", RESOURCES),
    _O("mem-per-cpu", "required", RESOURCES),
    _O("mem-per-gpu", "required", RESOURCES),
    _O("mincpus", "required", RESOURCES),
    _O("network", "required", RESOURCES),
    _O("nice", "optional", SITE),  # priority is the site's
    _O("no-kill", "optional", ALLOWED, short="k"),
    _O("no-requeue", "none", ALLOWED),
    _O("nodefile", "required", RESOURCES, short="F"),
    _O("nodelist", "required", RESOURCES, short="w"),
    _O("nodes", "required", RESOURCES, short="N"),
    _O("ntasks", "required", RESOURCES, short="n"),
    _O("ntasks-per-core", "required", RESOURCES),
    _O("ntasks-per-gpu", "required", RESOURCES),
    _O("ntasks-per-node", "required", RESOURCES),
    _O("ntasks-per-socket", "required", RESOURCES),
    _O("ntasks-per-tres", "required", RESOURCES),
    _O("oom-kill-step", "optional", ALLOWED, since="24.11"),
    _O("open-mode", "required", FILES),
    _O("output", "required", FILES, short="o"),
    _O("overcommit", "none", RESOURCES, short="O"),
    _O("oversubscribe", "none", RESOURCES, short="s"),
    _O("parsable", "none", SBATCH),
    _O("partition", "required", RESOURCES, short="p"),
    _O("power", "required", SITE, until="23.11"),
    _O("prefer", "required", ALLOWED),  # a soft constraint
    _O("priority", "required", SITE),
    _O("profile", "required", SITE),
    _O("propagate", "optional", ENVIRONMENT),  # the submit shell's ulimits
    _O("qos", "required", ALLOWED, short="q"),
    _O("quiet", "none", SBATCH, short="Q"),
    _O("reboot", "none", SITE),
    # A requeued server comes back under the same job id, behind the hub's back.
    _O("requeue", "optional", WHAT_RUNS),
    _O("reservation", "required", RESOURCES),
    _O("resources", "required", RESOURCES, since="25.11"),
    _O("resv-ports", "optional", RESOURCES, since="24.05"),
    _O("segment", "required", RESOURCES, since="24.05"),
    _O("signal", "required", WHAT_RUNS),  # could stop the server behind the hub's back
    _O("sockets-per-node", "required", RESOURCES),
    _O("spread-job", "none", RESOURCES),
    _O("spread-segments", "none", RESOURCES, since="25.11"),
    _O("stepmgr", "none", SITE, since="24.05"),
    _O("switches", "required", RESOURCES),
    _O("tasks-per-node", "required", RESOURCES, same_as="ntasks-per-node"),
    _O("test-only", "none", SBATCH),
    _O("thread-spec", "required", RESOURCES),
    _O("threads-per-core", "required", RESOURCES),
    _O("time", "required", RESOURCES, short="t"),
    _O("time-min", "required", RESOURCES),  # lets Slurm shorten the form's run time
    _O("tmp", "required", RESOURCES),  # node-local disk
    _O("tres-bind", "required", RESOURCES, since="23.11"),
    _O("tres-per-task", "required", RESOURCES, since="23.02"),
    _O("uid", "required", IDENTITY),
    _O("usage", "none", SBATCH),
    _O("use-min-nodes", "none", RESOURCES),
    _O("verbose", "none", SBATCH, short="v"),
    _O("version", "none", SBATCH, short="V"),
    _O("wait", "none", SBATCH, short="W"),
    _O("wait-all-nodes", "required", SBATCH),
    # Slurm checks a WCKey only with TrackWCKey and enforcement on; else usage is misfiled.
    _O("wckey", "required", SITE),
    _O("wrap", "required", WHAT_RUNS),
)
del _O

_BY_NAME: dict[str, SbatchOption] = {option.name: option for option in SBATCH_OPTIONS}
_BY_SHORT: dict[str, SbatchOption] = {o.short: o for o in SBATCH_OPTIONS if o.short}


def option_named(name: str) -> SbatchOption | None:
    """The option with exactly this long name (no dashes), or None."""
    return _BY_NAME.get(name)


def short_option(letter: str) -> SbatchOption | None:
    """The option whose short form is ``-letter``, or None."""
    return _BY_SHORT.get(letter)


def exists_in(option: SbatchOption, release: str) -> bool:
    """Whether ``option`` is an sbatch option of ``release`` (one of :data:`SLURM_VERSIONS`)."""
    index = SLURM_VERSIONS.index
    if index(release) < index(option.since) or release in option.missing_in:
        return False
    return not option.until or index(release) <= index(option.until)


def options_matching(prefix: str) -> list[SbatchOption]:
    """Every option getopt_long may take ``--prefix`` for, in any supported release.

    In each release, the exact name if that release has it, else every name of that release
    the prefix begins; then the union over the releases. Per release, because the hub does not
    know the cluster's Slurm: ``--extra`` is its own option from 23.02, but 22.05's sbatch reads
    it as an abbreviation of ``--extra-node-info``.
    """
    found: dict[str, SbatchOption] = {}
    for release in SLURM_VERSIONS:
        known = [o for o in SBATCH_OPTIONS if exists_in(o, release)]
        exact = [o for o in known if o.name == prefix]
        for option in exact or [o for o in known if o.name.startswith(prefix)]:
            found.setdefault(option.name, option)
    return sorted(found.values(), key=lambda o: (o.name != prefix, o.name))


def canonical_name(name: str) -> str:
    """``"--tasks-per-node"``, ``"-q"`` or ``"qos"`` → the main long name, no dashes.

    Names the table does not know (an option of a newer sbatch) come back without dashes.
    """
    text = name.strip()
    if len(text) == 2 and text[0] == "-" and text[1] != "-":
        option = _BY_SHORT.get(text[1])
        return option.canonical if option else text[1:]
    text = text.lstrip("-")
    option = _BY_NAME.get(text)
    return option.canonical if option else text


def denied_by_default() -> frozenset[str]:
    """Every denied name in the table, aliases included, as ``--name``."""
    return frozenset(f"--{o.name}" for o in SBATCH_OPTIONS if o.denied)
