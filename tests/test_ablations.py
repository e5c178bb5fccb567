"""make demo-ablations: the table aggregates seeds per variant, next to the paper's number."""
from eval.ablations import PAPER, VARIANTS, table


def test_table_reports_mean_and_std_over_seeds_for_each_variant():
    scores = {v: [{"accuracy": 0.6, "rmse": 1.0}, {"accuracy": 0.8, "rmse": 2.0}] for v in VARIANTS}
    text = table(scores)
    assert set(PAPER) == set(VARIANTS)
    for variant in VARIANTS:
        assert f"| {variant} | 0.7000 +- 0.1000 | 1.500 +- 0.500 | {PAPER[variant]:.4f} |" in text
