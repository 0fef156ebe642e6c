"""Tab 1: one spectrum, raw against denoised, with its header and quality flags."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from . import support as sup
from rgbkit import plots

from .common import simulated_banner
from .state import UPLOAD_KEY, AppState

RESID_LIM = 0.3  # residual axis fixed, so zoom survives slider moves (max factor 0.5 stays inside)


def _layout(view, title):
    if view is None:
        return None
    lay = plots.raw_vs_denoised(view.wavelength, view.raw, view.denoised, title=title, width=900,
                                height=320, residual_height=170)
    return list(lay)


def build(state: AppState) -> pn.viewable.Viewable:
    demo_opts = sup.demo_star_options()
    file_opts = sup.real_file_options()

    demo_select = pn.widgets.Select(name="Demo star (SIMULATED, validation split)",
                                    options={"(choose a demo star)": ""} | demo_opts,
                                    value=state.star_key if state.is_demo else "", width=420,
                                    css_classes=["demo-select"])
    file_select = pn.widgets.Select(name=f"Real LAMOST file ({len(file_opts)} in shared data)",
                                    options={"(choose a file)": ""} | file_opts, value="", width=420,
                                    disabled=not file_opts, css_classes=["file-select"])
    upload = pn.widgets.FileDropper(name="Upload a LAMOST FITS file", multiple=False,
                                    max_file_size=f"{sup.MAX_UPLOAD_BYTES // (1024 * 1024)}MB",
                                    layout="compact", width=420, height=90, css_classes=["upload"])
    upload_msg = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["upload-msg"], width=420)
    slider = pn.widgets.FloatSlider.from_param(
        state.param.threshold_factor, name="Wavelet threshold factor (T = factor x max|detail|)",
        width=420, css_classes=["threshold-slider"])
    rule = pn.widgets.Select.from_param(state.param.threshold_rule, name="Threshold rule", width=420)

    def on_demo(event):
        if event.new:
            state.star_key = event.new

    def on_file(event):
        if event.new:
            state.star_key = event.new

    def on_upload(event):
        if not event.new:
            return
        name, data = list(event.new.items())[-1]  # the newest file
        if isinstance(data, str):  # FileDropper hands text/* files over decoded
            data = data.encode()
        try:
            spec = sup.read_upload(data, name)
        except Exception as e:  # noqa: BLE001 - every refusal is shown, never swallowed
            upload_msg.param.update(object=f"**Upload refused.** {e}", visible=True)
            return
        upload_msg.param.update(object="", visible=False)
        state.param.update(upload=spec, star_key=f"{UPLOAD_KEY}{name}")

    def sync_pickers(event):
        # keep the pickers telling the truth when another tab (HR map) opens a star
        key = event.new
        if sup.is_demo_key(key):
            if key not in demo_select.options.values():
                lab = sup.demo_labels_for(key) or {}
                label = f"{lab.get('designation', key)} · {lab.get('stage', '?')} ({lab.get('split', '?')} split)"
                demo_select.options = {label: key, **demo_select.options}
            demo_select.value = key
            file_select.value = ""
        elif key.startswith(sup.FILE_PREFIX):
            demo_select.value = ""
        else:
            demo_select.value, file_select.value = "", ""

    state.param.watch(sync_pickers, "star_key")
    demo_select.param.watch(on_demo, "value")
    file_select.param.watch(on_file, "value")
    upload.param.watch(on_upload, "value")

    def title():
        s = state.spectrum
        if s is None:
            return "no spectrum"
        src = "SIMULATED demo star" if state.is_demo else ("uploaded file" if state.star_key.startswith(UPLOAD_KEY)
                                                            else "real LAMOST file")
        return f"{s.meta.designation or '?'} ({src})"

    last = {"view": None, "parts": None}  # the two panels of the current view, built once for both maps

    def parts(view):
        if last["view"] is not view:
            last.update(view=view, parts=_layout(view, title()))
        return last["parts"]

    def top(view):
        # legend top left: cool giants are faint in the blue, so the corner is empty
        return parts(view)[0].opts(legend_position="top_left") if view is not None else hv.Overlay([])

    def resid(view):
        return parts(view)[1].opts(ylim=(-RESID_LIM, RESID_LIM)) if view is not None else hv.Overlay([])

    dm_top = hv.DynamicMap(pn.bind(top, state.param.view))
    dm_res = hv.DynamicMap(pn.bind(resid, state.param.view))
    plot = pn.pane.HoloViews((dm_top + dm_res).cols(1).opts(shared_axes=True), css_classes=["spectrum-plot"])

    @pn.depends(state.param.view, state.param.error)
    def numbers(view, error):
        if error:
            return pn.pane.Alert(f"**Cannot show this spectrum.** {error}", alert_type="danger")
        if view is None:
            return pn.pane.Markdown("")
        st = view.stats
        verdict = "usable by the networks" if view.ok else f"dropped by the preprocessing: {view.reason}"
        return pn.pane.Markdown(
            f"**Residual (raw - denoised)**: RMS <span class='resid-rms'>{st['residual_rms']:.4f}</span>, "
            f"max |r| <span class='resid-max'>{st['residual_max']:.4f}</span>; "
            f"median pipeline noise {st['noise_median']:.4f} (normalised flux units); "
            f"{st['levels']} Haar levels, threshold {state.threshold_factor:.2f} ({state.threshold_rule}). "
            f"Spectrum {verdict}.", css_classes=["resid-numbers"], sizing_mode="stretch_width")

    @pn.depends(state.param.spectrum)
    def header(spec):
        if spec is None:
            return pn.pane.Markdown("")
        return pn.Column("### Header", pn.pane.DataFrame(sup.header_table(spec), index=False,
                                                         css_classes=["header-table"]))

    @pn.depends(state.param.spectrum, state.param.view)
    def quality(spec, view):
        if spec is None or view is None:
            return pn.pane.Markdown("")
        return pn.Column("### Quality flags", pn.pane.DataFrame(sup.quality_table(spec, view), index=False,
                                                                css_classes=["quality-table"]))

    @pn.depends(state.param.star_key)
    def banner(key):
        if sup.is_demo_key(key):
            lab = sup.demo_labels_for(key) or {}
            extra = (f"This star's labels: Teff {lab.get('teff', np.nan):.0f} K, logg {lab.get('logg', np.nan):.2f}, "
                     f"age {lab.get('age', np.nan):.2f} Gyr, mass {lab.get('mass', np.nan):.2f} Msun "
                     f"({lab.get('stage', '?')}).")
            return simulated_banner(extra)
        if key.startswith(UPLOAD_KEY):
            return pn.pane.Alert(f"Showing your uploaded file {key[len(UPLOAD_KEY):]}.", alert_type="info",
                                 css_classes=["source-note"])
        return pn.pane.Alert("Showing a real LAMOST spectrum from the shared data folder.", alert_type="info",
                             css_classes=["source-note"])

    controls = pn.Column(
        "### Pick a spectrum", demo_select, file_select,
        pn.pane.Markdown(f"or upload a LAMOST low-resolution FITS file (.fits / .fits.gz, at most "
                         f"{sup.MAX_UPLOAD_BYTES // (1024 * 1024)} MB):", width=420),
        upload, upload_msg, "### Denoising", slider, rule, width=440)
    return pn.Row(controls, pn.Column(banner, plot, numbers, pn.Row(header, quality)),
                  name="Spectra")
