"""Tab 1: one spectrum, raw against denoised, what the models say about it, its header and quality flags."""
from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import panel as pn
import param

from . import support as sup
from rgbkit import plots

from .common import notify, simulated_banner, simulated_text, with_help, wrap
from .predictions_tab import current_ensemble
from .state import UPLOAD_KEY, AppState

RESID_LIM = 0.3  # residual axis fixed, so zoom survives slider moves (max factor 0.5 stays inside)
CONTROLS_W = 380

RULE_HELP = ("How the wavelet threshold T is set. max_level (default): T = factor x the largest detail "
             "coefficient of each level. max_all: one T for all levels, factor x the largest detail "
             "coefficient overall (the paper read literally; removes much more). universal: Donoho's "
             "noise-based T = sigma sqrt(2 ln n), ignoring the factor.")


def _parts(view, title):
    lay = plots.raw_vs_denoised(view.wavelength, view.raw, view.denoised, title=title)
    return [p.opts(width=None, responsive=True, min_width=280) for p in lay]


def _fmt(v, spec=".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def estimate_markdown(est: dict, truth: dict | None, origins: dict) -> str:
    """The models' numbers for one spectrum as a small table (truth beside them for demo stars)."""
    demo = truth is not None
    head = "| quantity | estimate | ±1σ interval |" + (" label | truth |" if demo else "")
    rows = [head, "|---|---|---|" + ("---|---|" if demo else "")]
    for t, unit, spec in (("age", "Gyr", ".2f"), ("mass", "M☉", ".3f")):
        v = est.get(t, float("nan"))
        interval = f"{_fmt(est.get(f'{t}_lo'), spec)} – {_fmt(est.get(f'{t}_hi'), spec)}"
        row = (f"| {t} ({unit}) | <span class='est-{t}'>{_fmt(v, spec)}</span> ± {_fmt(est.get(f'{t}_std'), spec)} "
               f"| {interval} |")
        if demo:
            row += f" {_fmt(truth.get(t), spec)} | <span class='truth-{t}'>{_fmt(truth.get(f'{t}_true'), spec)}</span> |"
        rows.append(row)
        if f"{t}_debiased" in est:  # rgbkit.debias: not pulled toward the training mean
            rows.append(f"| {t} de-biased ({unit}) | <span class='est-{t}-debiased'>"
                        f"{_fmt(est.get(f'{t}_debiased'), spec)}</span> | {_fmt(est.get(f'{t}_debiased_lo'), spec)} – "
                        f"{_fmt(est.get(f'{t}_debiased_hi'), spec)} |" + (" | |" if demo else ""))
    p = est.get("p_rgb", float("nan"))
    row = f"| P(RGB) | <span class='est-prgb'>{_fmt(p, '.2f')}</span> | ± {_fmt(est.get('p_rgb_std'), '.2f')} |"
    if demo:
        row += f" {truth.get('stage', '?')} | {truth.get('stage', '?')} |"
    rows.append(row)
    if est.get("ood"):
        verdict = (f"<span class='est-ood'>**Out of the models' domain**</span>: {est.get('ood_reason') or '?'}. "
                   "Read the numbers above with that in mind (they are blank when the networks were not run).")
    else:
        verdict = "<span class='est-ood'>**In the models' domain**</span> (a red-giant-like star spectrum)."
    models = "; ".join(f"{t}: {o}" for t, o in origins.items())
    return ("\n".join(rows) + f"\n\n{verdict}  \nInterval: mean ± the ensemble's calibrated spread; "
            "de-biased: corrected for the pull toward the training mean (rgbkit.debias), for maps and populations. "
            f"Models: {models}." + (" Label = the demo catalog's (noisy, asteroseismic-like) value; truth = the "
                                    "simulation's." if demo else ""))


class SpectraTab(pn.viewable.Viewer):
    """Pick a spectrum (searchable demo list, real files, an upload); see it denoised and scored."""

    state = param.ClassSelector(class_=AppState, doc="this session's state")

    def __init__(self, state: AppState, **params):
        super().__init__(state=state, **params)
        self.demo_opts = sup.demo_star_options()
        self.file_opts = sup.real_file_options()
        self.demo_search = pn.widgets.AutocompleteInput(
            name="Demo star (SIMULATED, validation split): type a name, stage, age…",
            options=list(self.demo_opts), value=self._label_of(state.star_key), restrict=True,
            case_sensitive=False, search_strategy="includes", min_characters=1, placeholder="e.g. J19 or RGB · 8.",
            sizing_mode="stretch_width", css_classes=["demo-search"],
            description="Search the SIMULATED demo validation stars by designation, stage (RGB/RC), age or mass.")
        self.file_select = pn.widgets.Select(
            name=f"Real LAMOST spectrum ({len(self.file_opts)} shipped examples)", options={"(choose a file)": ""} | self.file_opts,
            value="", sizing_mode="stretch_width", disabled=not self.file_opts, css_classes=["file-select"],
            description="Real LAMOST low-resolution spectra (giants, dwarfs, hot stars, a quasar...): "
                        "the models' verdict shows whether each is in their domain.")
        self.upload_box = pn.Column(self._new_dropper(), sizing_mode="stretch_width")
        self.upload_msg = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["upload-msg"],
                                        sizing_mode="stretch_width")
        self.slider = pn.widgets.FloatSlider.from_param(
            state.param.threshold_factor, name="Wavelet threshold factor (T = factor x max|detail|)",
            sizing_mode="stretch_width", css_classes=["threshold-slider"])
        self.rule = pn.widgets.Select.from_param(state.param.threshold_rule, name="Threshold rule",
                                                 sizing_mode="stretch_width", description=RULE_HELP)
        self.demo_search.param.watch(self._on_demo, "value")
        self.file_select.param.watch(self._on_file, "value")
        state.param.watch(self._sync_pickers, "star_key")
        self._last = {"view": None, "parts": None}

        dm_top = hv.DynamicMap(pn.bind(self._top, state.param.view))
        dm_res = hv.DynamicMap(pn.bind(self._resid, state.param.view))
        # two panes, zoom linked through their shared wavelength axis (Panel's linked_axes)
        plot = pn.Column(pn.pane.HoloViews(dm_top, sizing_mode="stretch_width", min_width=280),
                         pn.pane.HoloViews(dm_res, sizing_mode="stretch_width", min_width=280),
                         css_classes=["spectrum-plot"], sizing_mode="stretch_width")
        controls = pn.Column(
            "### Pick a spectrum", self.demo_search, self.file_select,
            pn.pane.Markdown(f"or upload a LAMOST low-resolution FITS file (.fits / .fits.gz, at most "
                             f"{sup.MAX_UPLOAD_BYTES // (1024 * 1024)} MB):", sizing_mode="stretch_width"),
            with_help(self.upload_box, "Your own LAMOST LRS spectrum (DR1-DR7 image or DR8+ table layout); it is read "
                                       "on the server for this session only and not kept."),
            self.upload_msg, "### Denoising",
            with_help(self.slider, "Detail coefficients below T are shrunk to zero (soft thresholding); the paper "
                                   "uses 0.05. Larger removes more noise, and more of the lines."),
            self.rule,
            sizing_mode="stretch_width", max_width=CONTROLS_W, min_width=260, styles={"flex": f"0 1 {CONTROLS_W}px"})
        # panes made once and updated in place: a new pane per star made the browser lay the tab out again
        self.sim_note = simulated_banner()
        self.src_note = pn.pane.Alert("", alert_type="info", css_classes=["source-note"], visible=False)
        self.estimate_md = pn.pane.Markdown("", css_classes=["estimate"], sizing_mode="stretch_width")
        self.numbers_md = pn.pane.Markdown("", css_classes=["resid-numbers"], sizing_mode="stretch_width")
        self.header_df = pn.pane.DataFrame(None, index=False, css_classes=["header-table"])
        self.quality_df = pn.pane.DataFrame(None, index=False, css_classes=["quality-table"])
        estimate = pn.Column(pn.pane.Markdown("### What the models say", margin=(0, 10)), self.estimate_md,
                             sizing_mode="stretch_width", css_classes=["estimate-area"])
        details = wrap(pn.Column("### Header", self.header_df, styles={"flex": "1 1 300px"}, min_width=260),
                       pn.Column("### Quality flags", self.quality_df, min_width=260,
                                 styles={"flex": "1 1 360px", "overflow-x": "auto"}))
        main = pn.Column(self.sim_note, self.src_note, estimate, plot, self.numbers_md, details,
                         sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 540px"})
        state.param.watch(self._refresh, ["star_key", "spectrum", "view", "error", "ensembles"])
        self._refresh()
        self._layout = wrap(controls, main, name="Spectra")

    def __panel__(self):
        return self._layout

    # ------------------------------------------------------------ pickers
    def _label_of(self, key: str) -> str:
        return next((k for k, v in self.demo_opts.items() if v == key), "")

    def _new_dropper(self):
        # a fresh widget after a refusal: the old one's tile would still say "upload complete"
        w = pn.widgets.FileDropper(name="Upload a LAMOST FITS file", multiple=False,
                                   max_file_size=f"{sup.MAX_UPLOAD_BYTES // (1024 * 1024)}MB",
                                   layout="compact", sizing_mode="stretch_width", height=90, css_classes=["upload"])
        w.param.watch(self._on_upload, "value")
        return w

    def _on_demo(self, event):
        key = self.demo_opts.get(event.new)
        if key and key != self.state.star_key:
            self.state.star_key = key

    def _on_file(self, event):
        if event.new:
            self.state.star_key = event.new

    def _on_upload(self, event):
        if not event.new:
            return
        name, data = list(event.new.items())[-1]  # the newest file
        if isinstance(data, str):  # FileDropper hands text/* files over decoded
            data = data.encode()
        try:
            spec = sup.read_upload(data, name)
        except Exception as e:  # noqa: BLE001 - every refusal is shown, never swallowed
            self.upload_msg.param.update(object=f"**Upload refused.** {e}", visible=True)
            notify("error", f"Upload refused: {e}")
            self.upload_box.objects = [self._new_dropper()]
            return
        self.upload_msg.param.update(object="", visible=False)
        self.state.param.update(upload=spec, star_key=f"{UPLOAD_KEY}{spec.meta.path}")
        notify("success", f"Showing your upload {spec.meta.path}.", duration=3000)

    def _sync_pickers(self, event):
        # keep the pickers telling the truth when another tab (HR map) opens a star
        key = event.new
        if sup.is_demo_key(key):
            label = self._label_of(key)
            if not label:
                lab = sup.demo_labels_for(key) or {}
                label = (f"{lab.get('designation', key)} · {lab.get('stage', '?')} · {lab.get('age', np.nan):.1f} Gyr "
                         f"({lab.get('split', '?')} split)")
                self.demo_opts[label] = key
                self.demo_search.options = [label, *self.demo_search.options]
            self.demo_search.value = label
            self.file_select.value = ""
        elif key.startswith(sup.FILE_PREFIX):
            self.demo_search.value = ""
        else:
            self.demo_search.value, self.file_select.value = "", ""

    # ------------------------------------------------------------ views
    def _title(self):
        s = self.state.spectrum
        if s is None:
            return "no spectrum"
        key = self.state.star_key
        src = ("SIMULATED demo star" if sup.is_demo_key(key) else
               "uploaded file" if key.startswith(UPLOAD_KEY) else "real LAMOST file")
        return f"{s.meta.designation or '?'} ({src})"

    def _parts(self, view):
        if self._last["view"] is not view:
            self._last.update(view=view, parts=_parts(view, self._title()))
        return self._last["parts"]

    def _top(self, view):
        # legend top left: cool giants are faint in the blue, so the corner is empty
        return self._parts(view)[0].opts(legend_position="top_left", height=300) if view is not None else hv.Overlay([])

    def _resid(self, view):
        if view is None:
            return hv.Overlay([])
        return self._parts(view)[1].opts(ylim=(-RESID_LIM, RESID_LIM), height=160)

    def _refresh(self, *events):
        changed = {e.name for e in events} or {"star_key", "spectrum", "view", "ensembles"}
        with pn.io.hold():  # one message to the browser for all the panes
            if "star_key" in changed:
                self._show_source()
            if changed & {"spectrum", "ensembles", "error"}:
                self.estimate_md.object = self._estimate()
            if changed & {"view", "error"}:
                self.numbers_md.object = self._numbers()
            if changed & {"spectrum", "view"}:
                spec, view = self.state.spectrum, self.state.view
                self.header_df.object = sup.header_table(spec) if spec is not None else None
                self.quality_df.object = sup.quality_table(spec, view) if spec is not None and view is not None else None

    def _estimate(self) -> str:
        spec = self.state.spectrum
        if spec is None or self.state.error:
            return ""
        models, origins = {}, {}
        for t in ("age", "mass"):
            models[t], origins[t] = current_ensemble(self.state, t)
        clf = sup.shipped_classifier()
        origins["P(RGB)"] = "shipped classifier" if clf is not None else "none shipped"
        try:
            est = sup.star_estimate(spec, models["age"], models["mass"], clf)
        except Exception as e:  # the page says why; the session goes on
            return f"**The models could not score this spectrum.** {type(e).__name__}: {e}"
        return estimate_markdown(est, sup.demo_labels_for(self.state.star_key), origins)

    def _numbers(self) -> str:
        view, error = self.state.view, self.state.error
        if error:
            return f"**Cannot show this spectrum.** {error}"
        if view is None:
            return ""
        st = view.stats
        verdict = "usable by the networks" if view.ok else f"dropped by the preprocessing: {view.reason}"
        return (f"**Residual (raw - denoised)**: RMS <span class='resid-rms'>{st['residual_rms']:.4f}</span>, "
                f"max |r| <span class='resid-max'>{st['residual_max']:.4f}</span>; "
                f"median pipeline noise {st['noise_median']:.4f} (normalised flux units); "
                f"{st['levels']} Haar levels, threshold {self.state.threshold_factor:.2f} ({self.state.threshold_rule}). "
                f"Spectrum {verdict}.")

    def _show_source(self):
        key = self.state.star_key
        if sup.is_demo_key(key):
            lab = sup.demo_labels_for(key) or {}
            extra = (f"This star's labels: Teff {lab.get('teff', np.nan):.0f} K, logg {lab.get('logg', np.nan):.2f}, "
                     f"age {lab.get('age', np.nan):.2f} Gyr, mass {lab.get('mass', np.nan):.2f} Msun "
                     f"({lab.get('stage', '?')}).")
            self.sim_note.param.update(object=simulated_text(extra), visible=True)
            self.src_note.visible = False
            return
        what = (f"Showing your uploaded file {key[len(UPLOAD_KEY):]}." if key.startswith(UPLOAD_KEY)
                else "Showing a real LAMOST spectrum.")
        self.src_note.param.update(object=what, visible=True)
        self.sim_note.visible = False


def build(state: AppState) -> pn.viewable.Viewable:
    return SpectraTab(state)
