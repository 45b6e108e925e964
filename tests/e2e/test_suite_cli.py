"""A Sightglass-shaped benchmark end to end through the real command (issue 30): its recipe (a preopen at guest ``.``,
``stdout_file``, ``stderr_file``, the bench hooks stubbed) runs on every call path with ``--warmup auto`` and exits 0;
one byte changed in the expected file fails every variant and exits 1; the command line's flags do the same for a
module by path."""

import json

from tests.e2e.test_cli import wasmlab
from tests.host.suite_guests import INPUT, suite_folder

SMALL = ("--requests", "30", "--repeats", "1", "--no-save", "--variants", "cached,pooled+cached", "--call-path", "all")


def test_a_sightglass_recipe_runs_with_auto_warmup_and_fails_when_one_byte_of_its_expected_file_changes(tmp_path):
    recipe = suite_folder(tmp_path / "bench")
    done = wasmlab("reproduce", "--recipe", str(recipe), "--warmup", "auto", *SMALL, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["variants"]) == 6 and data["warmup"] == "auto" and set(data["warmup_done"]) == set(data["variants"])
    (tmp_path / "bench" / "reader.stdout.expected").write_bytes(INPUT[:100] + b"#" + INPUT[101:])
    wrong = wasmlab("reproduce", "--recipe", str(recipe), "--warmup", "2", *SMALL)
    assert wrong.returncode == 1
    assert wrong.stdout.count("stdout differs from reader.stdout.expected at byte 100 (line 3, column 21)") == 6, wrong.stdout


def test_the_command_line_preopens_a_folder_at_dot_and_compares_stdout_and_stderr_with_files(tmp_path):
    folder = tmp_path / "bench"
    suite_folder(folder)
    flags = ("--workload", str(folder / "plain.wat"), "--dir", f"{folder}::.", "--stdout-file", str(folder / "reader.stdout.expected"))
    done = wasmlab("reproduce", *flags, "--stderr-file", str(folder / "reader.stderr.expected"), "--warmup", "3", *SMALL)
    assert done.returncode == 0, done.stderr
    (folder / "wrong.stderr.expected").write_bytes(b"./\n")
    wrong = wasmlab("reproduce", *flags, "--stderr-file", str(folder / "wrong.stderr.expected"), "--warmup", "3", *SMALL)
    assert wrong.returncode == 1 and wrong.stdout.count("stderr differs from") == 6, wrong.stdout
