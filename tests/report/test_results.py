"""``results.json``: written atomically, read back, failures with their traceback."""

import json

from declutr.report.results import (
    ERROR_FILE,
    FAILED,
    OK,
    RESULTS_FILE,
    RunResult,
    read_result,
    write_failure,
    write_result,
)


def test_round_trip_leaves_no_temporary_file(tmp_path):
    result = RunResult(status=OK, settings={"num_anchors": 2}, before={"stsb_dev": 80.0}, after={"stsb_dev": 81.5},
                       steps=50, seconds=120.0, experiment="ablation/anchors", axis="anchors", git_commit="abc1234")
    path = write_result(tmp_path / "run", result)
    assert path == tmp_path / "run" / RESULTS_FILE
    assert read_result(tmp_path / "run") == result
    assert sorted(p.name for p in path.parent.iterdir()) == [RESULTS_FILE]


def test_missing_file_reads_as_none_and_unknown_keys_are_ignored(tmp_path):
    assert read_result(tmp_path) is None
    (tmp_path / RESULTS_FILE).write_text(json.dumps({"status": OK, "written_by_a_newer_version": 1}))
    assert read_result(tmp_path) == RunResult(status=OK)


def test_failure_records_the_error_and_its_traceback(tmp_path):
    def load_encoder():
        raise OSError("distilroberta-base is not on the hub mirror")

    try:
        load_encoder()
    except OSError as err:
        write_failure(tmp_path, err, seconds=2.5, axis="model_size")
    result = read_result(tmp_path)
    assert (result.status, result.axis, result.seconds) == (FAILED, "model_size", 2.5)
    assert result.error == "OSError: distilroberta-base is not on the hub mirror"
    trace = (tmp_path / result.traceback_file).read_text()
    assert result.traceback_file == ERROR_FILE and "Traceback" in trace and "in load_encoder" in trace


def test_a_success_after_a_failed_attempt_removes_the_old_traceback(tmp_path):
    try:
        raise RuntimeError("killed")
    except RuntimeError as err:
        write_failure(tmp_path, err)
    assert (tmp_path / ERROR_FILE).is_file()
    write_result(tmp_path, RunResult(status=OK, after={"stsb_dev": 56.4}))
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_FILE]
