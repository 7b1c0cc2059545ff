"""colorize-bench quality: real engines on generated colour photos, and its Frechet distance."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.linalg import sqrtm

from retint.benchmarks.quality import frechet_distance

from imagemaker import natural_like_image, write_rgb


def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 12))
    b = rng.normal(size=(50, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 1.0
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b)
                - 2 * np.trace(sqrtm(cov_a @ cov_b).real))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-6
    # More features than samples (a singular covariance, as with 1280 features) stays finite.
    wide = rng.normal(size=(20, 64))
    assert np.isfinite(frechet_distance(wide, wide + 0.1)) and frechet_distance(wide, wide + 0.1) > 0


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for index in range(6):
        write_rgb(folder / f"photo{index}.png", natural_like_image(96, 128, index))
    write_rgb(folder / "grey.png", np.full((64, 64, 3), 90, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    return folder


class Finished:
    """What a colorize-bench run left: exit code, stdout, stderr."""

    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def bench(*args):
    """In-process (torch and the feature network load once), through click's real parsing."""
    from retint.benchmarks.cli import main

    return Finished(CliRunner().invoke(main, ["quality", *map(str, args)]))


def test_quality_reports_markdown_json_and_a_contact_sheet(photo_folder, exported, tmp_path):
    engine = exported["effnet-unet"].artefacts[0]
    process = bench(photo_folder, "--engine", engine, "--render-size", 64, "-o", tmp_path / "report")
    assert process.returncode == 0, process.stderr
    assert "CIEDE2000" in process.stdout and "not FID" in process.stdout
    document = json.loads((tmp_path / "report" / "quality.json").read_text())
    summary = document["summary"]
    assert summary["photos"] == 6 and len(document["photos"]) == 6
    assert sorted(v for v in document["skipped"].values()) == ["grey", "unreadable"]
    assert summary["mean_grey_colourfulness"] < 1e-6 < summary["mean_truth_colourfulness"]
    assert summary["mean_grey_ciede2000"] > 1.0
    assert 0.0 <= summary["share_better_than_grey"] <= 1.0
    for key in ("effnet_lite0_frechet_output", "effnet_lite0_frechet_grey", "mean_output_psnr"):
        assert np.isfinite(summary[key]), key
    assert 0.0 < summary["warm_pixel_share"] < 1.0 and summary["grey_warm_turned_green"] == 0.0
    assert 0.0 <= summary["output_warm_turned_green"] <= 1.0
    assert "turned" in process.stdout and "green" in process.stdout
    # natural_like_image paints random colours, greens among them: the foliage band is not empty.
    assert 0.0 < summary["foliage_pixel_share"] < 1.0 and summary["grey_foliage_kept_green"] == 0.0
    assert 0.0 <= summary["output_foliage_kept_green"] <= 1.0 and "kept" in process.stdout
    sheet = cv2.imread(str(tmp_path / "report" / "contact-sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 2 * 128 and sheet.shape[1] >= 4 * 3 * 128
    assert (tmp_path / "report" / "quality.md").read_text().startswith("Engine: ")


def test_checkpoint_and_its_onnx_export_score_alike(photo_folder, exported, tiny_checkpoints, tmp_path):
    figures = {}
    for name, engine in (("onnx", exported["effnet-unet"].artefacts[0]), ("pth", tiny_checkpoints["effnet-unet"])):
        process = bench(photo_folder, "--engine", engine, "--render-size", 64, "--json", tmp_path / f"{name}.json")
        assert process.returncode == 0, process.stderr
        figures[name] = json.loads((tmp_path / f"{name}.json").read_text())["summary"]
    assert figures["onnx"]["mean_output_ciede2000"] == pytest.approx(figures["pth"]["mean_output_ciede2000"], abs=0.05)


def test_degrade_damages_the_grey_input_reproducibly(photo_folder, exported, tmp_path):
    engine = exported["effnet-unet"].artefacts[0]
    runs = []
    for name, extra in (("clean", []), ("damaged", ["--damaged-inputs"]), ("again", ["--degrade"])):
        process = bench(photo_folder, "--engine", engine, "--render-size", 64, "--json", tmp_path / f"{name}.json",
                        *extra)
        assert process.returncode == 0, process.stderr
        runs.append(json.loads((tmp_path / f"{name}.json").read_text())["summary"])
    clean, damaged, again = runs
    # Damage moves the grey input away from the untouched truth's lightness...
    assert (damaged["mean_grey_ciede2000_to_untouched_truth"]
            > clean["mean_grey_ciede2000_to_untouched_truth"] + 0.5)
    # ...but the reference is the truth's colour on the input's own L, so grey's
    # score there stays what the truth's chroma alone costs.
    assert damaged["mean_grey_ciede2000"] == pytest.approx(clean["mean_grey_ciede2000"], abs=2.0)
    assert clean["mean_grey_ciede2000"] == pytest.approx(clean["mean_grey_ciede2000_to_untouched_truth"], abs=0.2)
    assert damaged["mean_output_ciede2000"] == again["mean_output_ciede2000"]


def test_no_colour_photos_is_one_line_and_exit_2(tmp_path):
    write_rgb(tmp_path / "grey.png", np.full((64, 64, 3), 90, np.uint8))
    process = bench(tmp_path)
    assert process.returncode == 2
    assert process.stderr.strip().count("\n") == 0 and "no colour photos" in process.stderr


def test_distribution_engine_families_people_and_hints(photo_folder, exported_distribution, tmp_path):
    """Colour families and a people group are reported; hints from the truth are compared with
    automatic colouring in the same run, and hold at their pixels."""
    engine = next(p for p in exported_distribution.artefacts if p.name == "tiny-v2.onnx")
    figures = {}
    for name, extra in (("auto", []), ("hints", ["--hints", 5])):
        process = bench(photo_folder, "--engine", engine, "--backend", "onnxruntime", "--render-size", 64,
                        "--people", "photo1", "--people", "photo2", "--json", tmp_path / f"{name}.json", *extra)
        assert process.returncode == 0, process.stderr
        figures[name] = json.loads((tmp_path / f"{name}.json").read_text())
        assert "Colour families" in process.stdout and "Photos of people (2)" in process.stdout
    auto = figures["auto"]["summary"]
    assert 0.0 <= auto["output_family_right"] <= 1.0 and auto["grey_family_right"] == 0.0
    assert auto["people"]["photos"] == 2 and np.isfinite(auto["people"]["mean_output_ciede2000"])
    hinted = figures["hints"]
    assert hinted["summary"]["mean_output_ciede2000"] != auto["mean_output_ciede2000"]
    versus = hinted["hints"]
    assert versus["all"]["automatic_ciede2000"] == pytest.approx(auto["mean_output_ciede2000"], abs=1e-6)
    assert versus["all"]["guided_ciede2000"] == pytest.approx(hinted["summary"]["mean_output_ciede2000"], abs=1e-6)
    assert versus["people"]["photos"] == 2 and versus["fidelity"]["hints"] > 0


def test_hints_hold_on_a_regression_engine(photo_folder, exported):
    process = bench(photo_folder, "--engine", exported["effnet-unet"].artefacts[0], "--render-size", 64,
                    "--hints", 3)
    assert process.returncode == 0, process.stderr
    assert "With 3 hints per photo from the truth" in process.stdout and "Hinted pixels (" in process.stdout


def test_the_distance_to_grey_is_worded_without_a_sign():
    """Issue 29: a model worse than grey was reported "+3.33 below grey"."""
    from retint.benchmarks.quality import versus_grey

    assert versus_grey(1.2) == "1.20 lower than grey's (better)"
    assert versus_grey(-3.33) == "3.33 higher than grey's (worse)"


def test_suggestion_hits_count_the_true_family_among_the_top_suggestions():
    """A suggester that puts the true colour third scores 0 at top 1 and 1 at top 3; a grey one 0."""
    from retint.benchmarks.quality import suggestion_hits
    from retint.runtime.guides.suggestions import Suggestion

    truth = np.zeros((1, 16, 16, 3), np.uint8)
    truth[..., 0], truth[..., 1], truth[..., 2] = 180, 60, 40  # brick red: hue about 40 degrees
    greys = np.full((1, 16, 16), 100, np.uint8)
    red, blue, green, grey = (Suggestion(*ab, "#000000", p) for ab, p in
                              (((40.0, 30.0), 0.2), ((0.0, -40.0), 0.4), ((-40.0, 30.0), 0.3), ((1.0, 1.0), 0.5)))
    third = suggestion_hits(lambda gray, points, k: [[blue, green, red]] * len(points), greys, truth, seed=0)
    assert third["pixels"] == 20 and third["top1"] == 0 and third["top3"] == 1 and third["top5"] == 1
    greyish = suggestion_hits(lambda gray, points, k: [[grey, red]] * len(points), greys, truth, seed=0)
    assert greyish["top1"] == 0 and greyish["top3"] == 1


def test_hint_fidelity_is_zero_where_the_output_shows_the_hinted_colour():
    import cv2

    from retint.benchmarks.quality import hint_fidelity

    output = np.zeros((1, 8, 8, 3), np.uint8)
    output[...] = (180, 60, 40)
    lab = cv2.cvtColor(output[0].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
    exact = hint_fidelity(output, [[(2, 3, float(lab[1]), float(lab[2]))]])
    assert exact["hints"] == 1 and exact["mean_ciede2000"] < 0.5
    far = hint_fidelity(output, [[(2, 3, -float(lab[1]), -float(lab[2]))]])
    assert far["mean_ciede2000"] > 20


def test_reference_photos_are_the_next_of_the_same_source_in_name_order():
    from retint.benchmarks.reference_quality import reference_indices, source_of

    names = ["/p/town-b.png", "/p/farm-1.png", "/p/town-a.png", "/p/town-c.png", "/p/farmhouse-1.png",
             "/q/lone.png", "/p/farm-2.png"]
    prefixes = ("town", "farm", "farmhouse")
    assert [source_of(name, prefixes) for name in names] == ["town", "farm", "town", "town", "farmhouse", "/q",
                                                             "farm"]
    # town: a -> b -> c -> a; farm: 1 -> 2 -> 1; farmhouse and q have one photo: none.
    assert reference_indices(names, "same-source", prefixes) == [3, 6, 0, 2, None, None, 1]
    assert reference_indices(names, "truth", prefixes) == list(range(7))
    assert reference_indices(names, "none", prefixes) == [None] * 7


def test_quality_with_a_reference_compares_with_automatic_by_source(exported_distribution, tmp_path):
    engine = next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")
    folder = tmp_path / "photos"
    for index, name in enumerate(["town-1", "town-2", "town-3", "farm-1", "farm-2", "lone"]):
        write_rgb(folder / f"{name}.png", natural_like_image(96, 128, index))
    args = ("--engine", engine, "--backend", "onnxruntime", "--render-size", 64)
    process = bench(folder, *args, "--reference", "same-source", "--source", "town", "--source", "farm",
                    "--json", tmp_path / "guided.json")
    assert process.returncode == 0, process.stderr
    document = json.loads((tmp_path / "guided.json").read_text())
    reference = document["reference"]
    assert reference["mode"] == "same-source" and [name.split("/")[-1] for name in reference["left_out"]] == ["lone.png"]
    by_source = reference["by_source"] | {"all": reference["all"]}
    assert {source: row["photos"] for source, row in by_source.items()} == {"all": 5, "town": 3, "farm": 2}
    assert "| town | 3 |" in process.stdout and "| **all** | 5 |" in process.stdout and "lone.png" in process.stdout
    # The guided figures are the report's own; the automatic ones are a plain run's on the same photos.
    assert by_source["all"]["guided_ciede2000"] == pytest.approx(document["summary"]["mean_output_ciede2000"])
    (folder / "lone.png").unlink()
    plain = bench(folder, *args, "--json", tmp_path / "plain.json")
    assert plain.returncode == 0, plain.stderr
    automatic = json.loads((tmp_path / "plain.json").read_text())["summary"]
    assert by_source["all"]["automatic_ciede2000"] == pytest.approx(automatic["mean_output_ciede2000"], abs=1e-6)
    assert by_source["all"]["automatic_family_right"] == pytest.approx(automatic["output_family_right"], abs=1e-9)
    assert by_source["all"]["guided_ciede2000"] != by_source["all"]["automatic_ciede2000"]
    for row in by_source.values():
        assert 0.0 <= row["share_closer_than_automatic"] <= 1.0


def test_quality_takes_a_reference_for_a_regression_engine(photo_folder, exported):
    process = bench(photo_folder, "--engine", exported["effnet-unet"].artefacts[0], "--render-size", 64,
                    "--reference", "truth")
    assert process.returncode == 0, process.stderr
    assert "Reference photo: each photo's own colour original" in process.stdout
