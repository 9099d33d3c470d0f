"""Failure detection with image-level QC scores: AUROC, AURC, E-AURC, Spearman ρ, case referral.

Definitions (ValUES, Kahl et al. 2024; Zenk et al. 2025; Geifman et al. 2019 for AURC):

- a segmentation *fails* when its Dice is below a threshold (default 0.85); its *risk* is 1 − Dice;
- *confidence* is a QC score oriented so that higher means more confident: D_pw as it is, CV and
  U_labelled negated (the directions of :data:`napari_uqseg.viewer.qc.QC_METRICS`, which this layer
  may not import; a test keeps the two in step). An undefined score (nothing predicted) is the
  lowest confidence;
- AUROC: the probability that a random success has a higher confidence than a random failure,
  ties counting one half (Mann–Whitney); NaN when there are no failures or no successes;
- AURC: cases sorted by confidence, most confident first; the selective risk at coverage k/n is the
  mean risk of the k most confident; AURC is the mean of the n selective risks. Tied confidences
  have no order, so each member of a tie group takes the group's mean risk: that gives exactly the
  expected AURC over random tie-breaking (the prefix sum inside a group grows by the group mean
  per case, in expectation);
- E-AURC = AURC − AURC of the optimal ordering (risk ascending), 0 for a perfect ranking;
- case-level referral (Ng et al.): cases are sent to review least confident first; the curve is the
  share of all cases that are poor and not yet referred, against the share referred; random
  referral gives p(1 − f), the oracle max(p − f, 0), with p the share of poor cases.
"""

from __future__ import annotations

import numpy as np

#: QC score key -> whether a higher value means more confident.
HIGHER_IS_CONFIDENT: dict[str, bool] = {"cv": False, "d_pw": True, "u_labelled": False}
DEFAULT_DICE_THRESHOLD = 0.85


def confidence(key: str, values) -> np.ndarray:
    """Scores of ``key`` (None for undefined) as confidences, higher = more confident."""
    raw = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    oriented = raw if HIGHER_IS_CONFIDENT[key] else -raw
    return np.where(np.isfinite(oriented), oriented, -np.inf)


def _tie_means(sorted_conf: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` with each run of equal ``sorted_conf`` replaced by the run's mean."""
    starts = np.flatnonzero(np.r_[True, sorted_conf[1:] != sorted_conf[:-1]])
    sums = np.add.reduceat(values, starts)
    sizes = np.diff(np.r_[starts, values.size])
    return np.repeat(sums / sizes, sizes)


def auroc(conf: np.ndarray, failed: np.ndarray) -> float:
    """AUROC of ``conf`` for telling successes from failures (``failed`` boolean)."""
    from scipy.stats import rankdata

    conf, failed = np.asarray(conf, dtype=np.float64), np.asarray(failed, dtype=bool)
    n_fail, n_ok = int(failed.sum()), int((~failed).sum())
    if n_fail == 0 or n_ok == 0:
        return float("nan")
    ranks = rankdata(conf)  # average ranks for ties; -inf ranks lowest
    return float((ranks[~failed].sum() - n_ok * (n_ok + 1) / 2) / (n_ok * n_fail))


def risk_coverage(conf: np.ndarray, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage k/n, selective risk of the k most confident), k = 1..n, ties averaged."""
    conf, risk = np.asarray(conf, dtype=np.float64), np.asarray(risk, dtype=np.float64)
    order = np.argsort(-conf, kind="stable")
    risks = _tie_means(conf[order], risk[order])
    k = np.arange(1, risk.size + 1)
    return k / risk.size, np.cumsum(risks) / k


def aurc(conf: np.ndarray, risk: np.ndarray) -> float:
    """Area under the risk–coverage curve (mean selective risk over the n coverages)."""
    if np.asarray(risk).size == 0:
        return float("nan")
    return float(risk_coverage(conf, risk)[1].mean())


def e_aurc(conf: np.ndarray, risk: np.ndarray) -> float:
    """AURC minus that of the optimal ordering (lowest risk most confident)."""
    risk = np.asarray(risk, dtype=np.float64)
    return aurc(conf, risk) - aurc(-risk, risk)


def spearman(score: np.ndarray, dice: np.ndarray) -> float:
    """Spearman ρ of a raw score with Dice over the cases where both are defined (NaN if < 3)."""
    from scipy.stats import spearmanr

    score, dice = np.asarray(score, dtype=np.float64), np.asarray(dice, dtype=np.float64)
    keep = np.isfinite(score) & np.isfinite(dice)
    if keep.sum() < 3 or np.ptp(score[keep]) == 0 or np.ptp(dice[keep]) == 0:
        return float("nan")
    return float(spearmanr(score[keep], dice[keep]).statistic)


def case_referral(conf: np.ndarray, poor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of cases referred f = k/n, share of cases poor and not referred), k = 0..n.

    Least confident first; tie groups are referred in expectation (their poor share spread evenly).
    """
    conf, poor = np.asarray(conf, dtype=np.float64), np.asarray(poor, dtype=np.float64)
    order = np.argsort(conf, kind="stable")
    referred_poor = np.r_[0.0, np.cumsum(_tie_means(conf[order], poor[order]))]
    n = poor.size
    return np.arange(n + 1) / n, (poor.sum() - referred_poor) / n


def random_referral(fractions: np.ndarray, poor_share: float) -> np.ndarray:
    return poor_share * (1.0 - np.asarray(fractions))


def oracle_referral(fractions: np.ndarray, poor_share: float) -> np.ndarray:
    return np.maximum(poor_share - np.asarray(fractions), 0.0)


def share_to_reach(fractions: np.ndarray, remaining: np.ndarray, target: float = 0.05) -> float:
    """Smallest share of cases referred that leaves at most ``target`` poor cases unreferred."""
    reached = np.flatnonzero(np.asarray(remaining) <= target + 1e-12)
    return float(fractions[reached[0]]) if reached.size else float("nan")
