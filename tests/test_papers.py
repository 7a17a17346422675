"""Paper studies: every cell resolves, smoke budgets run on generated stand-ins, lillicrap2016 end to end."""

import json
from pathlib import Path

import pytest
from helpers import bench

from bioplaus_bench import papers
from bioplaus_bench.harness import resolve
from bioplaus_bench.registry import RegistryError, get_algorithm, load_all

papers.load_all()


def test_paper_list_names_every_study():
    out = bench("paper", "list").stdout
    assert all(name in out for name in ("lillicrap2016", "shibuya2023", "ernoult2022"))


@pytest.mark.parametrize("name", sorted(papers.PAPERS))
@pytest.mark.parametrize("budget", papers.BUDGETS)
def test_every_cell_resolves(name, budget, tmp_path):
    load_all()
    paper = papers.get_paper(name)
    specs = paper.specs(budget, tmp_path, None)
    assert len(specs) == sum(c.runnable for c in paper.cells) * (len(paper.seeds) if budget == "full" else 1)
    paths = {resolve(spec).path for _, spec in specs}
    assert len(paths) == len(specs)  # no two cells collapse onto one record


def test_a_duplicate_paper_name_is_an_error():
    paper = papers.get_paper("lillicrap2016")
    with pytest.raises(RegistryError, match="duplicate paper name 'lillicrap2016'"):
        papers.register_paper(paper)


def test_smoke_settings_come_from_each_rule_and_studies_set_no_rule_hyperparameter():
    load_all()
    (cell,) = [c for c in papers.get_paper("ernoult2022").cells if c.row == "L-DRL, LeNet" and c.col == "MNIST"]
    smoke = papers.budget_run(cell.run, "smoke")
    assert get_algorithm("l-drl").smoke == {"fb_iterations": "1", "warmup_batches": "0"}
    assert smoke.overrides == {"fb_iterations": "1", "warmup_batches": "0"} and cell.run.overrides == {}
    assert (smoke.epochs, smoke.max_batches, smoke.angle_every) == (1, papers.SMOKE_BATCHES, 1)
    assert papers.budget_run(cell.run, "full") is cell.run
    for f in Path(papers.__file__).parent.glob("*.py"):  # no study names a rule's smoke knob
        assert "fb_iterations" not in f.read_text() and "warmup_batches" not in f.read_text(), f


def test_shibuya_findings_are_computed_from_records():
    from bioplaus_bench.papers import shibuya2023

    def rec(train, test):
        return {"curves": {"train_acc": [0.5, train]}, "final": {"test_acc": test}}

    text = shibuya2023.findings({("FW-DTP (0.5M)", "MNIST"): [rec(0.90, 0.89), rec(0.92, 0.91)],
                                 (shibuya2023.DEFAULTS_ROW, "MNIST"): [rec(0.99, 0.98)]})
    assert text == ("On MNIST, FW-DTP with the quoted lr/beta ends at 91.0% train accuracy (10.00% test error), "
                    "with the suite defaults at 99.0% (2.00%).")
    assert shibuya2023.findings({}) == ""
    notes = papers.get_paper("shibuya2023").notes
    assert "%" not in notes  # measured numbers are never typed into the notes


def test_figure_only_cells_are_not_table_rows(tmp_path):
    paper = papers.get_paper("shibuya2023")
    df, _ = papers.cell_table(paper, "full", tmp_path)
    assert len(df) == sum(c.in_table for c in paper.cells) == len(paper.cells) - 64
    assert not df.column.eq("MNIST (sensitivity)").any()


def test_published_values_are_the_papers():
    shibuya = {(c.row, c.col): c.published for c in papers.get_paper("shibuya2023").cells}
    assert shibuya[("FW-DTP (0.5M)", "MNIST")] == "2.76 ± 0.10"
    assert shibuya[("BP (6.3M)", "CIFAR-100")] == "75.96 ± 0.52"
    assert shibuya[("TP (1.1M)", "F-MNIST")] is None  # n/a in the paper: the table says so
    ernoult = {(c.row, c.col): c.published for c in papers.get_paper("ernoult2022").cells}
    assert ernoult[("L-DRL, LeNet", "MNIST")] == "98.9" and ernoult[("L-DRL, VGG", "ImageNet 32x32 (top-5)")] == "60.6"
    with pytest.raises(RegistryError, match="unknown budget 'huge'.*smoke, full"):
        papers.get_paper("ernoult2022").specs("huge", Path("unused"), None)


def test_row_and_column_filters_select_cells_and_reject_unknown_names(tmp_path):
    load_all()
    paper = papers.get_paper("shibuya2023")
    specs = paper.specs("full", tmp_path, None, rows=("BP (0.5M)",), cols=("MNIST", "F-MNIST"))
    assert sorted((c.row, c.col, s.seed) for c, s in specs) == [
        ("BP (0.5M)", col, seed) for col in ("F-MNIST", "MNIST") for seed in (0, 1)]
    with pytest.raises(RegistryError, match="unknown row 'BP' in shibuya2023; accepted: .*BP \\(0.5M\\)"):
        paper.specs("full", tmp_path, None, rows=("BP",))
    with pytest.raises(RegistryError, match="unknown column 'mnist'"):
        paper.specs("full", tmp_path, None, cols=("mnist",))


@pytest.mark.data
@pytest.mark.slow
def test_ernoult_smoke_runs_every_cell_and_never_reports_generated_data(tmp_path, data_root):
    res = bench("paper", "ernoult2022", "--budget", "smoke", "--executor", "debug", "--data-dir", str(data_root),
                "--out", str(tmp_path))
    table = (tmp_path / "table_smoke.md").read_text()
    recs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*__*.json")]
    assert len(recs) == sum(c.runnable for c in papers.get_paper("ernoult2022").cells)
    assert all(r["status"] == "completed" for r in recs), res.stdout
    for r in recs:
        assert r["data_generated"] == (r["config"]["task"] in ("cifar10", "imagenet32"))
        assert r["config"]["max_batches"] == papers.SMOKE_BATCHES
    assert table.count("ran on generated data (not a result)") == 3 + 4  # LeNet CIFAR-10: 3 rules; VGG: 2 x 2
    assert "not results" in table and (tmp_path / "table_smoke.tex").exists()


@pytest.mark.slow
def test_lillicrap2016_ranks_shallow_reinforcement_fa_bp_as_fig_2a(tmp_path):
    bench("paper", "lillicrap2016", "--budget", "full", "--executor", "debug", "--out", str(tmp_path))
    final = {}
    for p in (tmp_path / "runs").glob("*__*.json"):
        r = json.loads(p.read_text())
        final.setdefault(r["config"]["algo"], []).append(r["final"]["test_loss"])
    assert {k: len(v) for k, v in final.items()} == {"shallow": 3, "np": 3, "fa": 3, "bp": 3}
    assert max(final["bp"]) < 1e-3 * min(final["shallow"])
    assert max(final["fa"]) < 1e-3 * min(final["shallow"])
    # reinforcement (node perturbation) learns, far slower than FA and BP (Fig. 2a's order)
    assert max(final["np"]) < 1e-2 * min(final["shallow"]) and min(final["np"]) > 100 * max(final["fa"])
    assert (tmp_path / "figures_full" / "lillicrap2016_learning_curves.png").exists()


@pytest.mark.data
@pytest.mark.slow
def test_shibuya_smoke_runs_every_runnable_cell(tmp_path, data_root):
    bench("paper", "shibuya2023", "--budget", "smoke", "--executor", "debug", "--data-dir", str(data_root),
          "--out", str(tmp_path))
    paper = papers.get_paper("shibuya2023")
    recs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*__*.json")]
    assert len(recs) == sum(c.runnable for c in paper.cells) and all(r["status"] == "completed" for r in recs)
    table = (tmp_path / "table_smoke.md").read_text()
    assert table.count("ran on generated data (not a result)") == 10  # 5 rules x CIFAR-10/100 (6.3M)
    assert table.count("the 13.0M MLP is not identifiable") == 8  # TP, DTP, DRL, L-DRL x CIFAR-10/100: not run
    assert (tmp_path / "figures_smoke" / "sensitivity_fw-dtp_mnist_mlp.png").exists()
