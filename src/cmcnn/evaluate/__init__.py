"""Evaluation: Table 2 metrics, the classical baseline, figures, reports and model cards."""
