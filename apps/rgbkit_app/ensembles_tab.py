"""Tab 2: load a shipped or saved ensemble (its model card), or train one on the demo data or on your own
labelled spectra (a folder on the server + a label table, matched and reported before training)."""
from __future__ import annotations

import sys
import time

import holoviews as hv
import pandas as pd
import panel as pn
import param

from . import support as sup
from rgbkit import plots

from .common import notify, on_session_end, simulated_banner, table, with_help, wrap
from .state import AppState

POLL_MS = 400
REDRAW_S = 2.0
EPOCH_PAGE = 8


def _curves(histories, css: str = "training-curves"):
    """Loss and M2 per epoch; each panel keeps its own axes (nothing shared with other plots on the page)."""
    if not histories or not histories[0].get("epoch"):
        return pn.pane.Markdown("*No epochs yet.*", css_classes=["curves-empty"])
    loss = plots.training_curves(histories, "loss", title="Huber loss per epoch")
    m2 = plots.training_curves(histories, "m2", title="Validation M2 (%) per epoch")
    figs = [f.opts(width=None, responsive=True, height=300, min_width=260, framewise=True) for f in (loss, m2)]
    return wrap(*[pn.pane.HoloViews(f, sizing_mode="stretch_width", min_width=260, linked_axes=False,
                                    styles={"flex": "1 1 320px"}) for f in figs], css_classes=[css])


def _epoch_rows(histories) -> pd.DataFrame:
    rows = []
    for i, h in enumerate(histories):
        for j, ep in enumerate(h.get("epoch", [])):
            rows.append({"member": i, "epoch": ep, "train loss": round(h["train_loss"][j], 4),
                         "val loss": round(h["val_loss"][j], 4), "val M1": round(h["val_m1"][j], 3),
                         "val M2 (%)": round(h["val_m2"][j], 2)})
    df = pd.DataFrame(rows, columns=["member", "epoch", "train loss", "val loss", "val M1", "val M2 (%)"])
    return df.iloc[::-1].reset_index(drop=True)  # newest first: the live end is on page 1


def _log(msg: str) -> None:
    print(f"rgbkit dashboard: {msg}", file=sys.stderr, flush=True)  # the server's log


class EnsemblesTab(pn.viewable.Viewer):
    """Load a model card, train an ensemble live (stopped with the session), save or download it."""

    state = param.ClassSelector(class_=AppState, doc="this session's state")

    def __init__(self, state: AppState, **params):
        super().__init__(state=state, **params)
        self.job = {"run": None, "cb": None, "shown": -1, "drawn": 0.0, "labelled": None}  # this session's run
        self.workdir = None
        choices = sup.list_ensembles()
        self.load_select = pn.widgets.Select(
            name="Shipped or saved ensemble", options=choices, sizing_mode="stretch_width", max_width=380,
            description="Ensembles shipped with rgbkit, and those saved from this dashboard on this server.",
            css_classes=["ensemble-select"])
        self.load_button = pn.widgets.Button(name="Load", button_type="primary", width=120, disabled=not choices,
                                             description="Show its model card and use it in the other tabs.",
                                             css_classes=["load-button"])
        self.no_shipped = pn.pane.Alert(
            "No shipped age or mass ensemble yet (rgbkit/pretrained/): train one below.", alert_type="info",
            visible=not any(k.startswith("shipped") for k in choices), css_classes=["no-shipped"])
        self.card_area = pn.Column(css_classes=["card-area"], sizing_mode="stretch_width")

        self.target = pn.widgets.RadioButtonGroup(name="Target", options=["age", "mass"], value="age",
                                                  description="What the networks learn to predict.",
                                                  css_classes=["train-target"])
        self.members = pn.widgets.IntSlider(
            name="Members", start=1, end=10, value=2, sizing_mode="stretch_width", max_width=340,
            css_classes=["train-members"])
        self.epochs = pn.widgets.IntInput(
            name="Epochs per member", start=1, end=450, value=5, width=165, css_classes=["train-epochs"],
            description="Passes over the training stars; each member keeps its best epoch (paper: 450 age, 350 mass).")
        self.size = pn.widgets.Select(
            name="Network", options={"tiny (seconds per epoch)": "tiny", "small (as shipped)": "small"}, width=165,
            description="tiny: few channels, for a quick look; small: the shipped ensembles' configuration.")
        self.n_train = pn.widgets.IntInput(name="Training stars", start=50, end=2800, step=50, value=300, width=165,
                                           description="SIMULATED demo stars the networks learn from.",
                                           css_classes=["train-n"])
        self.n_val = pn.widgets.IntInput(name="Validation stars", start=20, end=700, step=10, value=150, width=165,
                                         description="Stars that pick each member's best epoch (lowest M2).",
                                         css_classes=["val-n"])
        # your own labelled spectra: a folder on this machine + a table (uploaded or a path), matched first
        self.source = pn.widgets.RadioButtonGroup(
            name="Data", options={"demo (simulated)": "demo", "my labelled spectra": "own"}, value="demo",
            description="Train on the SIMULATED demo set, or on your LAMOST files with asteroseismic labels.",
            css_classes=["train-source"])
        self.own_spectra = pn.widgets.TextInput(
            name="Spectra: folder or glob on the server", placeholder="/data/lamost/kepler or /data/*.fits.gz",
            sizing_mode="stretch_width", css_classes=["own-spectra"],
            description="Where your LAMOST FITS files are, on the machine running the dashboard.")
        self.own_upload = pn.widgets.FileInput(accept=".csv,.fits,.fit,.vot,.xml,.parquet,.mrt,.txt",
                                               sizing_mode="stretch_width", css_classes=["own-upload"])
        self.own_table = pn.widgets.TextInput(
            name="...or the label table's path on the server (a CDS .dat with its ReadMe)",
            sizing_mode="stretch_width", css_classes=["own-table"],
            description="A table with the labels and an id (obsid, designation, KIC or RA/Dec) to match on.")
        self.own_match = pn.widgets.Select(
            name="Match by", options=["auto", "obsid", "designation", "kic", "position"], value="auto", width=165,
            description="How table rows find their spectra; auto tries obsid, designation, KIC, then position.",
            css_classes=["own-match"])
        self.own_radius = pn.widgets.FloatInput(name="Radius (arcsec)", value=3.0, start=0.1, end=60, width=165,
                                                description="Largest separation for a positional match.",
                                                css_classes=["own-radius"])
        self.own_columns = pn.widgets.TextInput(
            name="Column names, if not recognised (optional)", placeholder="age=Age_Y2, kic=KIC_ID",
            sizing_mode="stretch_width", css_classes=["own-columns"],
            description="name=COLUMN pairs for the columns rgbkit does not recognise by itself.")
        self.own_states = pn.widgets.Select(
            name="Evolutionary states", options={"all": "", "RGB only (the paper)": "RGB"}, width=165,
            description="Keep only RGB stars (the paper) or every labelled star.", css_classes=["own-states"])
        self.own_check = pn.widgets.Button(name="Match and check", button_type="primary", width=165,
                                           description="Read the spectra and the table; report the match first.",
                                           css_classes=["own-check"])
        self.own_report = pn.pane.Markdown("", css_classes=["match-report"], sizing_mode="stretch_width")
        self.own_box = pn.Column(
            self.own_spectra, with_help(self.own_upload, "Upload the label table (CSV, FITS, VOTable, Parquet, MRT)."),
            self.own_table, wrap(self.own_match, self.own_radius, gap="0px"), self.own_columns,
            wrap(self.own_states, self.own_check, gap="0px"), visible=False, sizing_mode="stretch_width")
        # no hover tooltip on Start: it would open over the Stop button right after the click
        self.start_button = pn.widgets.Button(name="Start training", button_type="primary", width=165,
                                              css_classes=["start-button"])
        self.stop_button = pn.widgets.Button(name="Stop (keep best)", button_type="danger", width=165, disabled=True,
                                             description="Stop after this epoch and keep each member's best weights.",
                                             css_classes=["stop-button"])
        self.progress = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width", max_width=380,
                                               bar_color="primary", visible=False, css_classes=["train-progress"])
        self.status = pn.pane.Markdown("Not started. Training runs in the background and stops if you close the page.",
                                       css_classes=["train-status"], sizing_mode="stretch_width")
        self.save_name = pn.widgets.TextInput(
            name="Save as", placeholder="my-age-ensemble", width=200, css_classes=["save-name"],
            description=f"A folder name: letters, digits, - _ . (others become _), at most {sup.MAX_NAME} characters.")
        self.save_button = pn.widgets.Button(name="Save", width=90, disabled=True, css_classes=["save-button"],
                                             description="Save on this server; it then appears in the list above.")
        self.download = pn.widgets.FileDownload(
            callback=self._zip, filename="rgbkit-ensemble.zip", label="Download .zip", width=140, disabled=True,
            button_type="default", description="The trained ensemble as a zip: card.json + safetensors weights.",
            css_classes=["zip-download"])
        self.curves = pn.Column(_curves([]), css_classes=["curves-area"], sizing_mode="stretch_width")
        self.epoch_table = table(_epoch_rows([]), "epoch-table", pagination="local", page_size=EPOCH_PAGE)

        self.demo_box = pn.Column(simulated_banner("Training here uses the SIMULATED demo set."),
                                  wrap(self.n_train, self.n_val, gap="0px"), sizing_mode="stretch_width")
        self.source.param.watch(self._on_source, "value")
        self.target.param.watch(self._on_target, "value")
        self.own_check.on_click(self._on_check)
        self.load_button.on_click(self._on_load)
        self.start_button.on_click(self._on_start)
        self.stop_button.on_click(self._on_stop)
        self.save_button.on_click(self._on_save)
        on_session_end(self._on_session_end)

        left = pn.Column(
            "### Load an ensemble", self.no_shipped, self.load_select, self.load_button,
            "### Train", self.source, self.target, self.own_box, self.demo_box, with_help(self.members, "Networks trained from different random starts; their mean is "
                                                 "the prediction, their spread the uncertainty (the paper uses 10)."),
            wrap(self.epochs, self.size, gap="0px"),
            pn.pane.Markdown("Adam, learning rate 1e-3 annealed (cosine), Huber loss; each member keeps "
                             "its epoch with the lowest validation M2. Closing the page stops the training.",
                             sizing_mode="stretch_width"),
            wrap(self.start_button, self.stop_button, gap="0px"), self.progress, self.status,
            wrap(self.save_name, self.save_button, gap="0px"), self.download,
            sizing_mode="stretch_width", max_width=400, min_width=260, styles={"flex": "0 1 400px"})
        right = pn.Column(self.card_area, self.own_report, "### Live training (this session's run)", self.curves, self.epoch_table,
                          sizing_mode="stretch_width", min_width=260, styles={"flex": "1 1 500px"})
        self._layout = wrap(left, right, name="Ensembles")

    def __panel__(self):
        return self._layout

    # ---------------------------------------------------------------- load
    def show_ensemble(self, ens, origin: str, curves: bool = True):
        objs = [pn.pane.Markdown(f"### Model card: {origin}", css_classes=["card-title"]),
                table(sup.card_table(ens.card), "card-table", layout="fit_columns")]
        if curves:
            objs.append(_curves(ens.histories, "card-curves") if ens.histories
                        else pn.pane.Markdown("*No training history.*"))
        self.card_area.objects = objs

    def _on_load(self, _):
        folder = self.load_select.value
        if not folder:
            return
        label = next((k for k, v in self.load_select.options.items() if v == folder), "ensemble")
        with self.card_area.param.update(loading=True):
            try:
                ens = sup.load_ensemble(folder)
            except Exception as e:  # a bad folder: say why, keep going
                notify("error", f"Cannot load {label}: {e}")
                self.card_area.objects = [pn.pane.Alert(f"**Cannot load {label}.** {e}", alert_type="danger")]
                return
            self.state.ensembles = {**self.state.ensembles, ens.target: ens}
            self.show_ensemble(ens, label)  # the label, never the server's path

    # ---------------------------------------------------------------- train
    def _poll(self):
        run = self.job["run"]
        if run is None:
            return
        snap = run.snapshot()
        n_done = sum(len(h.get("epoch", [])) for h in snap["histories"])
        now = time.monotonic()
        # redraw the curves at most every REDRAW_S: tiny epochs end several times a poll, and redrawing
        # two plots each poll kept a slow browser too busy to show the status line
        if n_done != self.job["shown"] and (snap["done"] or now - self.job["drawn"] >= REDRAW_S):
            self.job["shown"], self.job["drawn"] = n_done, now
            self.curves.objects = [_curves(snap["histories"])]
            self.epoch_table.value = _epoch_rows(snap["histories"])
        self.progress.value = int(round(100 * snap["fraction"]))
        what = f"member {snap['member'] + 1}/{run.n_members}, epoch {snap['epoch']}/{run.epochs}"
        if not snap["done"]:
            self.status.object = f"Training {run.target}: {what}; {n_done} epochs done in {snap['elapsed']:.0f} s."
            return
        self._stop_polling()
        self.start_button.disabled, self.stop_button.disabled = False, True
        if snap["error"]:
            self.status.object = f"**Training failed.** {snap['error']}"
            self.progress.bar_color = "danger"
            notify("error", f"Training failed: {snap['error']}")
            return
        ens = run.ensemble
        best = ", ".join(str(m["best_epoch"]) for m in ens.card["members"])
        verb = "Stopped" if snap["stopped"] else "Finished"
        m2 = ens.card["metrics"]["val"]["m2"]
        test = ens.card["metrics"].get("test")
        self.status.object = (f"**{verb}** after {n_done} epochs ({snap['elapsed']:.0f} s): {len(ens)} member(s), "
                              f"best epochs kept: {best}. Validation M2 {m2:.1f}%"
                              + (f"; test M2 {test['m2']:.1f}% ({test['n']} spectra that chose nothing)."
                                 if test else "."))
        notify("success", f"Training {verb.lower()}: {run.target} ensemble, validation M2 {m2:.1f}%. "
                          "The other tabs use it now.")
        self.state.ensembles = {**self.state.ensembles, ens.target: ens}
        self.save_button.disabled = self.download.disabled = False
        self.download.filename = f"rgbkit-{ens.target}-{len(ens)}x{run.epochs}.zip"
        self.show_ensemble(ens, f"trained in this session ({ens.target})", curves=False)

    def _on_source(self, event):
        own = event.new == "own"
        self.own_box.visible = own
        self.demo_box.visible = not own
        self.start_button.disabled = own and self.job["labelled"] is None

    def _on_check(self, _):
        import tempfile

        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="rgbkit-session-")
        self.job["labelled"] = None
        self.start_button.disabled = True
        self.own_report.object = "Reading the spectra and the table..."
        try:
            ls = sup.match_own_data(self.own_spectra.value, self.target.value, self.own_table.value,
                                    self.own_upload.value, self.own_upload.filename, self.own_match.value,
                                    self.own_radius.value, self.own_columns.value,
                                    [self.own_states.value] if self.own_states.value else None, self.workdir)
        except Exception as e:  # a bad folder or table: say why, keep going
            self.own_report.object = f"**Cannot use these data.** {e}"
            notify("error", f"Cannot use these data: {e}")
            return
        self.job["labelled"] = (ls, self.target.value)
        self.own_report.object = (f"### Your data: columns and match (target **{self.target.value}**)\n\n"
                                  f"```text\n{ls.report}\n```")
        self.start_button.disabled = False

    def _on_target(self, event):
        if self.job["labelled"] is not None and self.job["labelled"][1] != event.new:
            self.job["labelled"] = None  # labels were checked for the other target
            if self.source.value == "own":
                self.start_button.disabled = True
                self.own_report.object = f"Target changed to {event.new}: press *Match and check* again."

    def _stop_polling(self):
        if self.job["cb"] is not None:
            self.job["cb"].stop()
            self.job["cb"] = None

    def _on_start(self, _):
        if self.job["run"] is not None and self.job["run"].alive:
            return
        if self.source.value == "own":
            if self.job["labelled"] is None:
                self.status.object = "Press *Match and check* first."
                return
            ls = self.job["labelled"][0]
            run = sup.TrainingRun(self.target.value, self.members.value, self.epochs.value, size=self.size.value,
                                  labelled=ls)
            what = f"{len(ls)} of your spectra (70/15/15 train/validation/test by star)"
        else:
            run = sup.TrainingRun(self.target.value, self.members.value, self.epochs.value, self.n_train.value,
                                  self.n_val.value, self.size.value)
            what = f"{run.n_train} stars"
        try:
            run.start()
        except sup.TrainingLimitError as e:
            self.status.object = f"**Not started.** The server is busy: {e}."
            notify("warning", f"Training not started: {e}.")
            return
        _log(f"training started ({run.target}, {run.n_members} x {run.epochs} epochs)")
        self.job.update(run=run, shown=-1, drawn=0.0)
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.save_button.disabled = self.download.disabled = True
        self.progress.param.update(value=0, visible=True, bar_color="primary")
        self.status.object = f"Starting: {run.n_members} member(s) x {run.epochs} epochs on {what}..."
        self.job["cb"] = pn.state.add_periodic_callback(self._poll, period=POLL_MS)

    def _on_stop(self, _):
        run = self.job["run"]
        if run is not None and not run.snapshot()["done"]:
            run.stop()
            self.stop_button.disabled = True
            self.status.object += " Stopping after this epoch..."

    def _on_session_end(self):
        self._stop_polling()
        run = self.job["run"]
        if run is not None and run.alive:
            run.stop(abandon=True)
            _log("session ended: its training stops after the current epoch")
            run.join(120)
            _log(f"training thread ended: {'no' if run.alive else 'yes'}; "
                 f"{sup.running_trainings()} training(s) still running")

    # ---------------------------------------------------------------- save
    def _on_save(self, _):
        run = self.job["run"]
        if run is None or run.ensemble is None:
            return
        name = self.save_name.value.strip() or f"{run.target}-{run.n_members}x{run.epochs}"
        try:
            folder = sup.save_ensemble(run.ensemble, name)
        except FileExistsError:
            notify("error", f"Not saved: an ensemble named “{sup.safe_name(name)}” exists already; pick another name.")
            return
        except ValueError as e:  # empty or too long
            notify("error", f"Not saved: {e}.")
            return
        except OSError as e:  # the server's disk: the reason, not its paths
            notify("error", f"Not saved: the server could not write it ({e.strerror or type(e).__name__}).")
            return
        if folder.name != name:
            notify("info", f"Saved as “{folder.name}”: “{name}” has characters a folder name cannot hold.")
        notify("success", f"Saved “{folder.name}”; it is now in the list of ensembles.")
        self.load_select.options = sup.list_ensembles()
        self.load_button.disabled = False
        self.no_shipped.visible = False

    def _zip(self):
        import io

        run = self.job["run"]
        if run is None or run.ensemble is None:
            return None
        return io.BytesIO(sup.ensemble_zip(run.ensemble))


def build(state: AppState) -> pn.viewable.Viewable:
    return EnsemblesTab(state)
