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
