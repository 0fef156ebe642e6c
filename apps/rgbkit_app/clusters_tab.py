"""Tab 5: open-cluster ages, the baseline comparison beside the paper, the RGB/RC classifier."""
from __future__ import annotations

import panel as pn

from . import support as sup
from rgbkit import plots

from .common import BuiltTab, simulated_banner, table, wrap
from .predictions_tab import current_ensemble
from .state import AppState

CLUSTER_COLUMNS = ["cluster", "n_members", "n_giants", "n_rv", "n_rgb", "age_like", "age_like_lo", "age_like_hi", "truth_age",
                   "lit_age", "paper_age", "age", "age_spread", "outlier_fraction", "lit_low", "lit_high",
                   "lit_reference"]

NICE = {"n_members": "stars", "n_giants": "giants", "n_rv": "velocity members", "n_rgb": "RGB used", "age_like": "age (Gyr, likelihood)",
        "age_like_lo": "68% low (Gyr)", "age_like_hi": "68% high (Gyr)", "outlier_fraction": "contaminants (fit)",
        "age": "median rule (Gyr)",
        "age_spread": "spread (Gyr)", "age_p16": "p16 (Gyr)", "age_p84": "p84 (Gyr)", "truth_age": "truth (Gyr)",
        "age_minus_truth": "age - truth (Gyr)", "lit_age": "paper lit. (Gyr)", "lit_low": "lit. low (Gyr)",
        "lit_high": "lit. high (Gyr)", "lit_reference": "reference", "paper_age": "paper DenseNet (Gyr)"}


def _float_formatters(df):
    return {c: {"type": "money", "precision": 2, "thousand": False} for c in df.columns if df[c].dtype.kind == "f"}


class ClustersTab(BuiltTab):
    """Open-cluster ages with the current age ensemble, baselines beside the paper, the classifier."""

    build = staticmethod(lambda state: _build(state))  # _build is defined below


def build(state: AppState) -> pn.viewable.Viewable:
    return ClustersTab(state)


def _build(state: AppState) -> pn.viewable.Viewable:
    @pn.depends(state.param.ensembles)
    def clusters(ensembles):
        ens, origin = current_ensemble(state, "age")
        if ens is None:
            return pn.pane.Alert("No age ensemble yet (none shipped, loaded or trained): cluster ages need one.",
                                 alert_type="info", css_classes=["no-cluster"])
        clf = sup.shipped_classifier()
        res = sup.cluster_results(ens, clf)
        tab = res.table[[c for c in CLUSTER_COLUMNS if c in res.table]].rename(columns=NICE)
        how = ("the shipped RGB/RC classifier keeps the stars it calls RGB" if clf is not None
               else "no classifier shipped yet: every giant is kept (red-clump stars included)")
        return pn.Column(
            pn.pane.Markdown(f"### Open clusters (SIMULATED stand-ins)\nAge ensemble {origin}; every star in each "
                             "cluster's field (members and field stars), kept when Teff < 10,000 K and log g <= 3.5 "
                             "and its radial velocity lies within 3 spreads of the cluster's median (membership), "
                             f"then {how}. Cluster age: the members' likelihoods "
                             "combined (rgbkit.clusters: each star's de-biased prediction and spread, a shared "
                             "error term and a contaminant fraction fitted), with its 68% interval; the paper's "
                             "median rule (spread = 1.4826 MAD) beside it. Literature ages and the paper's "
                             "DenseNet ages: its Table 1.",
                             sizing_mode="stretch_width"),
            pn.pane.HoloViews(plots.cluster_ages_plot(res.table, res.stars).opts(
                width=None, responsive=True, height=380, min_width=280, legend_position="right"),
                css_classes=["cluster-plot"], sizing_mode="stretch_width", linked_axes=False),
            table(tab, "cluster-table", formatters=_float_formatters(tab)), sizing_mode="stretch_width")

    def baselines():
        paper = sup.paper_baselines().reset_index()
        ours, where = sup.baseline_results()
        objs = [pn.pane.Markdown("### Baselines (test M1 / M2)")]
        if ours is None:
            objs.append(pn.pane.Alert("No baseline run recorded yet (run benchmarks/bench_science.py); "
                                      "the paper's Table 2 is shown.", alert_type="info",
                                      css_classes=["no-baselines"]))
        else:
            ours = ours.reset_index()
            objs += [pn.pane.Markdown(f"Ours, on the SIMULATED demo test split (recorded in `{where}`; "
                                      "paper_* columns: the paper's numbers, on its validation split):"),
                     table(ours, "baseline-table", formatters=_float_formatters(ours))]
        objs += [pn.pane.Markdown("Paper (Li, Bu et al. 2022, Table 2), on its LAMOST-Kepler split:"),
                 table(paper, "paper-baseline-table", formatters=_float_formatters(paper))]
        return pn.Column(*objs, sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 480px"})

    def classifier():
        clf = sup.shipped_classifier()
        objs = [pn.pane.Markdown("### RGB/RC classifier")]
        if clf is None:
            objs.append(pn.pane.Alert("No classifier shipped yet (rgbkit/pretrained/classifier).",
                                      alert_type="info", css_classes=["no-classifier"]))
            return pn.Column(*objs, sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 480px"})
        df = sup.classifier_table(clf)
        objs += [pn.pane.Markdown(f"{len(clf)}-member averaged classifier; RGB is the class selected. "
                                  "Contamination = RC share among stars called RGB; completeness = share of "
                                  "RGB stars called RGB."),
                 table(df, "classifier-table", formatters=_float_formatters(df))]
        return pn.Column(*objs, sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 480px"})

    return pn.Column(simulated_banner(), pn.panel(clusters, loading_indicator=True), wrap(baselines(), classifier()),
                     name="Clusters & baselines", sizing_mode="stretch_width")
