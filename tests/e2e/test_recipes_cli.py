"""Recipes and their CLI shortcuts end to end: a real library module from npm, every request verified; a wrong
expectation fails its variants with exit status 1; commands checked by exit code and by the files they write."""

import hashlib
import json

import yaml

from tests.e2e.test_cli import wasmlab
from tests.workloads.recipe_guests import EXIT_CODE, WRITER

SMALL = ("--requests", "40", "--repeats", "1", "--warmup", "5", "--no-save", "--format", "json")


def test_a_real_library_module_from_npm_is_measured_through_its_recipe_on_both_paths():
    done = wasmlab("reproduce", "--workload", "hash-wasm-sha256", "--variants", "cached,pooled+cached", "--call-path", "both", *SMALL)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data["variants"]) == {"cached", "pooled+cached", "cached@api", "pooled+cached@api"}
    assert data["metadata"]["workload_kind"] == "recipe" and "hash-wasm-sha256" in data["metadata"]["workload_provenance"]
    assert data["metadata"]["workload_check"] == "expected"


def test_a_wrong_digest_fails_every_variant_and_exits_1(tmp_path):
    recipe = yaml.safe_load(open("data/recipes/hash-wasm-sha256.yaml"))
    recipe["expect"]["bytes"]["digest"]["hex"] = "00" * 32
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(recipe))
    done = wasmlab("reproduce", "--recipe", str(tmp_path / "wrong.yaml"), "--variants", "cached,pooled+cached", *SMALL[:-2])
    assert done.returncode == 1
    assert done.stdout.count("FAILED") == 2 and "bytes 'digest' hex" in done.stdout


def test_shortcuts_check_a_commands_exit_code_and_the_file_it_writes(tmp_path):
    (tmp_path / "solver.wat").write_text(EXIT_CODE)
    done = wasmlab("reproduce", "--workload", str(tmp_path / "solver.wat"), "--expect-exit", "10", "--stdout-match", "^sat",
                   "--variants", "cached,pooled+cached", "--call-path", "both", *SMALL)
    assert done.returncode == 0, done.stderr
    (tmp_path / "writer.wat").write_text(WRITER)
    digest = hashlib.sha256(b"rendered\n").hexdigest()
    done = wasmlab("reproduce", "--workload", str(tmp_path / "writer.wat"), "--dir", "::/out:rw",
                   "--expect-file", f"/out/result.txt=sha256:{digest}", "--variants", "cached,pooled+cached", "--call-path", "all", *SMALL)
    assert done.returncode == 0, done.stderr
    assert {"pooled+cached", "pooled+cached@api", "pooled+cached@native"} <= set(json.loads(done.stdout)["variants"])
    wrong = wasmlab("reproduce", "--workload", str(tmp_path / "writer.wat"), "--dir", "::/out:rw",
                    "--expect-file", "/out/result.txt=regex:^drawn", "--variants", "cached", "--call-path", "lean,native", *SMALL[:-2])
    assert wrong.returncode == 1 and wrong.stdout.count("/out/result.txt does not match") == 2, wrong.stdout


def test_bad_shortcuts_and_recipes_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "writer.wat").write_text(WRITER)
    for args, message in (
        (("--workload", str(tmp_path / "writer.wat"), "--dir", "/out:rw"), "is not HOST::GUEST[:rw]"),
        (("--workload", str(tmp_path / "writer.wat"), "--dir", "::/out:rw", "--expect-file", "/out/x=md5:1"), "is not GUEST_PATH=sha256:HEX"),
        (("--recipe", str(tmp_path / "missing.yaml")), "cannot be read"),
    ):
        done = wasmlab("reproduce", *args, *SMALL)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
