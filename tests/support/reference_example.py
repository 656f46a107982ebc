"""The partitions example from the reference implementation's README, shared by the tests."""

# The example from the reference's README, "x86_86" typo and all.
README_EXAMPLE = {
    "partition_1": {
        "architecture": "x86_86",
        "description": "Partition 1",
        "gpu": None,
        "max_ngpus": 0,
        "max_nprocs": 28,
        "max_runtime": 12 * 3600,
        "simple": True,
        "jupyter_environments": {
            "default": {
                "description": "Default",
                "path": "/env/path/bin/",
                "modules": "",
                "add_to_path": True,
                "prologue": "",
            },
        },
    },
    "partition_2": {
        "architecture": "ppc64le",
        "description": "Partition 2",
        "gpu": "gpu:V100-SXM2-32GB:{}",
        "max_ngpus": 2,
        "max_nprocs": 128,
        "max_runtime": 1 * 3600,
        "simple": True,
        "jupyter_environments": {
            "default": {
                "description": "Default",
                "path": "/path/to/jupyter/env/for/partition_2/bin/",
                "modules": "",
                "add_to_path": True,
                "prologue": "",
            },
        },
    },
    "partition_3": {
        "architecture": "x86_86",
        "description": "Partition 3",
        "gpu": None,
        "max_ngpus": 0,
        "max_nprocs": 28,
        "max_runtime": 12 * 3600,
        "simple": False,
        "jupyter_environments": {
            "default": {
                "description": "Partition 3 default",
                "path": "/path/to/jupyter/env/for/partition_3/bin/",
                "modules": "",
                "add_to_path": True,
                "prologue": "echo 'Starting default environment'",
            },
        },
    },
}


def _environment(description: str, path: str, modules: str, prologue: str) -> dict:
    return {
        "description": description,
        "path": path,
        "modules": modules,
        "add_to_path": True,
        "prologue": prologue,
    }


# The example exactly as the reference's README publishes it at 7.0.1 (unchanged in 10.1.0),
# except for one closing brace its last partition lacks there: partition_2 by modules alone,
# partition_3 by a path and modules. Every partition and environment field it documents is set.
README_EXAMPLE_7_0_1 = {
    "partition_1": {
        **README_EXAMPLE["partition_1"],
        "jupyter_environments": {"default": _environment("Default", "/env/path/bin/", "", "")},
    },
    "partition_2": {
        **README_EXAMPLE["partition_2"],
        "jupyter_environments": {
            "default": _environment(
                "Default", "", "JupyterLab/3.6.0", "echo 'Starting default environment'"
            ),
        },
    },
    "partition_3": {
        **README_EXAMPLE["partition_3"],
        "jupyter_environments": {
            "default": _environment(
                "Partition 3 default",
                "/path/to/jupyter/env/for/partition_3/bin/",
                "JupyterLab/3.6.0",
                "echo 'Starting default environment'",
            ),
        },
    },
}
