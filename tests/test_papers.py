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


@pytest.mark.parametrize(("name", "budget"), [(n, b) for n in sorted(papers.PAPERS)
                                               for b in papers.get_paper(n).budget_names()])
def test_every_cell_resolves(name, budget, tmp_path):
    load_all()
    paper = papers.get_paper(name)
    specs = paper.specs(budget, tmp_path, None)
    if budget in paper.budgets:  # a study's own budget: its figure (or all) cells, seed 0, at most that many epochs
        assert len(specs) == sum(c.runnable and (paper.budget_cells == "all" or not c.in_table) for c in paper.cells)
        assert all(s.seed == 0 and s.epochs <= paper.budgets[budget] for _, s in specs)
    else:
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
    assert len(df) == sum(c.in_table for c in paper.cells) == len(paper.cells) - 2 * 64 - 6
    assert not df.column.isin(["MNIST (sensitivity)", "MNIST (cost)"]).any()


def test_published_values_are_the_papers():
    shibuya = {(c.row, c.col): c.published for c in papers.get_paper("shibuya2023").cells}
    assert shibuya[("FW-DTP (0.5M)", "MNIST")] == "2.76 ± 0.10"
    assert shibuya[("BP (6.3M)", "CIFAR-100")] == "75.96 ± 0.52"
    assert shibuya[("TP (1.1M)", "F-MNIST")] is None  # n/a in the paper: the table says so
    ernoult = {(c.row, c.col): c.published for c in papers.get_paper("ernoult2022").cells}
    assert ernoult[("L-DRL, LeNet", "MNIST")] == "98.9" and ernoult[("L-DRL, VGG", "ImageNet 32x32 (top-5)")] == "60.6"
    with pytest.raises(RegistryError, match="unknown budget 'huge' for ernoult2022; accepted: smoke, full, feedback"):
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
    # every cell runs to its end; at a smoke budget a cell may end at chance with an exploded loss (collapsed)
    assert all(r["status"] in ("completed", "collapsed") for r in recs), res.stdout
    for r in recs:
        assert r["data_generated"] == (r["config"]["task"] in ("cifar10", "imagenet32"))
        assert r["config"]["max_batches"] == papers.SMOKE_BATCHES
    assert table.count("ran on generated data (not a result)") == 3 + 4  # LeNet CIFAR-10: 3 rules; VGG: 2 x 2
    assert "not results" in table and (tmp_path / "table_smoke.tex").exists()
    assert "| DDTP (Meulemans et al. 2020), LeNet | MNIST |" in table  # the paper's "Meulemans et al." row
    # the feedback-training experiment ran (tiny) beside the cells: one record per loss, figures and summary
    assert len(list((tmp_path / "feedback-training").glob("*.json"))) == 4
    summary = (tmp_path / "figures_smoke" / "feedback_training.md").read_text()
    assert all(f"| angle_T | {loss} |" in summary for loss in ("DTP", "DRL", "L-DRL"))


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
    figures = tmp_path / "figures_smoke"
    assert (figures / "sensitivity_dtp_fw-dtp_1ep.png").exists() and (figures / "cost_mnist.png").exists()
    summary = (figures / "sensitivity_dtp_fw-dtp_1ep.md").read_text()
    assert "| dtp | 64 |" in summary and "| fw-dtp | 64 |" in summary  # both grids complete, side by side


def test_shibuya_grids_put_dtp_and_fw_dtp_on_the_same_lr_scale_with_the_papers_feedback():
    """The sensitivity grid runs DTP with momentum 0 and twice the grid lr (its local loss is 1/2 ||s - t||^2,
    FW-DTP's ||s - t||^2: the same weight step; tests/test_targetprop checks that equation), FW-DTP with the
    paper's B ~ U(-0.01, 0.01), as do the table's FW-DTP cells; the sensitivity budget runs 5 epochs."""
    from bioplaus_bench.papers import shibuya2023 as sh

    paper = papers.get_paper("shibuya2023")
    grid = {(c.run.algo, c.row.split(" ", 1)[1]): c.run for c in paper.cells if c.col == sh.SENSITIVITY_COL}
    assert len(grid) == 2 * 64
    dtp, fw = grid[("dtp", "lr=4 beta=0.02")], grid[("fw-dtp", "lr=4 beta=0.02")]
    assert dtp.overrides == {"lr": "8.0", "momentum": "0", "beta": "0.02"}
    assert fw.overrides == {"lr": "4", "beta": "0.02", "feedback_range": "0.01"}
    table_fw = [c for c in paper.cells if c.row == "FW-DTP (0.5M)"]
    assert table_fw and all(c.run.overrides == {"feedback_range": "0.01"} for c in table_fw)
    specs = paper.specs("sensitivity", Path("unused"), None)
    assert {s.epochs for c, s in specs if c.col == sh.SENSITIVITY_COL} == {sh.SENSITIVITY_EPOCHS}
    assert {(s.epochs, s.val_size) for c, s in specs if c.col == sh.COST_COL} == {(sh.COST_EPOCHS, 0)}


def _rec(algo, lr, beta, status="completed", val=0.9, test=0.9, momentum="0", **final):
    return {"status": status, "config": {"algo": algo, "task": "mnist", "arch": "mlp", "epochs": 5, "seed": 0,
                                         "batch_size": 256, "val_size": 5000, "preset": None,
                                         "hparams": {"lr": str(lr), "beta": str(beta), "momentum": momentum}},
            "env": {}, "final": {"best_val_acc": val, "test_acc": test, **final}}


def test_stability_summary_counts_diverged_points_as_not_within_one_point(tmp_path):
    from bioplaus_bench.papers import shibuya2023 as sh

    recs = [_rec("fw-dtp", 0.1, 0.001, val=0.95), _rec("fw-dtp", 0.2, 0.001, val=0.945),
            _rec("fw-dtp", 0.1, 0.002, val=0.90), _rec("dtp", 0.2, 0.001, val=0.94),
            _rec("dtp", 0.4, 0.001, val=0.96), _rec("dtp", 0.2, 0.002, status="diverged")]
    paths = sh.figures(recs, tmp_path)
    text = (tmp_path / "sensitivity_dtp_fw-dtp_5ep.md").read_text()
    # dtp: lr on the FW-DTP scale = half its own; best 96, spread 2 over completed points, 1 of 3 within 1 point
    # (the diverged one is not); fw-dtp: best 95, spread 5, 2 of 3 within 1 point
    assert "| dtp | 3 | 1 | 96.000 | 2.000 | 0.333 |" in text
    assert "| fw-dtp | 3 | 0 | 95.000 | 5.000 | 0.667 |" in text
    assert any(p.suffix == ".png" for p in paths)


def test_cost_table_is_relative_to_bp_with_the_feedback_share():
    from bioplaus_bench.plots import cost_table

    def rec(algo, sec, fb):
        return {"status": "completed", "config": {"algo": algo}, "load_avg_start": 1.0, "load_avg_end": 2.0,
                "final": {"epoch_seconds": sec, "feedback_seconds": fb}}

    t = cost_table([rec("bp", 1.0, 0.0), rec("bp", 3.0, 0.0), rec("dtp", 8.0, 6.0)]).set_index("rule")
    assert t.loc["dtp", "x BP"] == 4.0 and t.loc["dtp", "feedback share"] == 0.75 and t.loc["bp", "n"] == 2
    assert t.loc["dtp", "max_load"] == 2.0


def test_time_vs_bp_uses_the_tables_own_bp_cells_not_a_figures():
    """Shibuya's cost figure has BP runs of its own (3 epochs, all 60k images): the table's "time vs BP" must still
    divide by the BP cell of the table."""
    from bioplaus_bench.papers import shibuya2023 as sh

    paper = papers.get_paper("shibuya2023")
    cells = {(c.row, c.col): c for c in paper.cells}

    def rec(cell, seconds):
        return {"status": "completed", "config": {**cell.run.__dict__, "arch": cell.run.arch, "seed": 0,
                                                  "hparams": {}},
                "final": {"test_acc": 0.97, "epoch_seconds": seconds}, "curves": {"train_acc": [0.99]}, "env": {}}

    pairs = [(cells[("BP (0.5M)", "MNIST")], rec(cells[("BP (0.5M)", "MNIST")], 2.0)),
             (cells[("cost bp", sh.COST_COL)], rec(cells[("cost bp", sh.COST_COL)], 1.0)),
             (cells[("DTP (0.5M)", "MNIST")], rec(cells[("DTP (0.5M)", "MNIST")], 8.0))]
    df = papers.table(paper, pairs, "full").set_index(["method", "column"])
    assert df.loc[("DTP (0.5M)", "MNIST"), "time vs BP"] == "4.00x"
    assert df.loc[("BP (0.5M)", "MNIST"), "time vs BP"] == "1.00x"
    # a cell timed with another number of torch threads than BP's says so beside its ratio
    pairs[2][1]["env"] = {"torch_threads": 2}
    pairs[0][1]["env"] = {"torch_threads": 1}
    df = papers.table(paper, pairs, "full").set_index(["method", "column"])
    assert df.loc[("DTP (0.5M)", "MNIST"), "time vs BP"] == "4.00x (2 vs BP's 1 threads)"


def test_jaderberg_cells_run_the_papers_fcn_and_adam_at_their_columns_p_update():
    """Every runnable cell: the 4-layer FCN, batch 256, Adam lr 3e-5, 500k steps at the full budget (20 epochs at
    short), and the p_update its column names; BP runs only at p_update 1.0 (no decoupled form)."""
    paper = papers.get_paper("jaderberg2017")
    assert {c.row for c in paper.cells if not c.runnable} == {"BP"}
    for budget, epochs in (("full", 2326), ("short", 20)):
        specs = paper.specs(budget, Path("unused"), None)
        assert len(specs) == 7 * (2 if budget == "full" else 1)
        for cell, spec in specs:
            r = resolve(spec)
            assert (r.config["arch"], r.config["batch_size"], r.config["epochs"]) == ("fcn4", 256, epochs)
            assert (r.rule_cfg.optimizer, r.rule_cfg.lr, r.rule_cfg.scheduler) == ("adam", 3e-5, "none")
            assert f"p_update {getattr(r.rule_cfg, 'p_update', 1.0):.1f}" == cell.col
    assert 2326 * 215 >= 500_000 > 2325 * 215  # 55,000 training images in batches of 256: 215 an epoch


def test_jaderberg_summary_is_per_rule_and_p_update_never_pooled():
    from bioplaus_bench.papers.jaderberg2017 import summary

    def rec(algo, p, seed, acc):
        hp = {"p_update": p} if algo != "bp" else {}
        return {"status": "completed", "config": {"algo": algo, "seed": seed, "epochs": 20, "hparams": hp},
                "final": {"test_acc": acc, "test_acc_at_best_val": acc}}

    df = summary([rec("bp", None, 0, 0.98), rec("dni", 0.5, 0, 0.96), rec("dni", 0.5, 1, 0.94),
                  rec("dni", 0.2, 0, 0.90), rec("cdni", 1.0, 0, 0.97)])
    got = {(r.rule, r.p_update): (r["test error (%)"], r.n) for _, r in df.iterrows()}
    assert got == {("BP", "1.0"): (2.0, 1), ("DNI", "0.5"): (5.0, 2), ("DNI", "0.2"): (10.0, 1),
                   ("cDNI", "1.0"): (3.0, 1)}
