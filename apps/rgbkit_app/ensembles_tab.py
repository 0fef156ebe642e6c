"""Tab 2: load a shipped or saved ensemble (its model card), or train one on the demo data or on your own
labelled spectra (a folder on the server + a label table, matched and reported before training)."""
from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn

from . import support as sup
from rgbkit import plots

from .common import simulated_banner, table
from .state import AppState

POLL_MS = 400
EPOCH_PAGE = 8


def _curves(histories):
    if not histories or not histories[0].get("epoch"):
        return pn.pane.Markdown("*No epochs yet.*", css_classes=["curves-empty"])
    loss = plots.training_curves(histories, "loss", title="Huber loss per epoch").opts(width=520, height=330)
    m2 = plots.training_curves(histories, "m2", title="Validation M2 (%) per epoch").opts(width=520, height=330)
    return pn.pane.HoloViews(hv.Layout([loss, m2]).cols(2), css_classes=["training-curves"])


def _epoch_rows(histories) -> pd.DataFrame:
    rows = []
    for i, h in enumerate(histories):
        for j, ep in enumerate(h.get("epoch", [])):
            rows.append({"member": i, "epoch": ep, "train loss": round(h["train_loss"][j], 4),
                         "val loss": round(h["val_loss"][j], 4), "val M1": round(h["val_m1"][j], 3),
                         "val M2 (%)": round(h["val_m2"][j], 2)})
    df = pd.DataFrame(rows, columns=["member", "epoch", "train loss", "val loss", "val M1", "val M2 (%)"])
    return df.iloc[::-1].reset_index(drop=True)  # newest first: the live end is on page 1


def build(state: AppState) -> pn.viewable.Viewable:
    # ---------------------------------------------------------------- load
    choices = sup.list_ensembles()
    load_select = pn.widgets.Select(name="Shipped or saved ensemble", options=choices, width=380,
                                    css_classes=["ensemble-select"])
    load_button = pn.widgets.Button(name="Load", button_type="primary", width=120, disabled=not choices,
                                    css_classes=["load-button"])
    no_shipped = pn.pane.Alert(
        "No shipped age or mass ensemble yet (rgbkit/pretrained/): train one below.", alert_type="info",
        visible=not any(k.startswith("shipped") for k in choices), css_classes=["no-shipped"], width=380)
    card_area = pn.Column(css_classes=["card-area"], sizing_mode="stretch_width")

    def show_ensemble(ens, origin: str, curves: bool = True):
        objs = [pn.pane.Markdown(f"### Model card: {origin}", css_classes=["card-title"]),
                table(sup.card_table(ens.card), "card-table", widths={"field": 150, "value": 620})]
        if curves:
            objs.append(_curves(ens.histories) if ens.histories else pn.pane.Markdown("*No training history.*"))
        card_area.objects = objs

    def on_load(_):
        folder = load_select.value
        if not folder:
            return
        try:
            ens = sup.load_ensemble(folder)
        except Exception as e:  # a bad folder: say why, keep going
            card_area.objects = [pn.pane.Alert(f"**Cannot load {folder}.** {e}", alert_type="danger")]
            return
        state.ensembles = {**state.ensembles, ens.target: ens}
        label = next((k for k, v in load_select.options.items() if v == folder), folder)
        show_ensemble(ens, f"{label} ({folder})")

    load_button.on_click(on_load)

    # ---------------------------------------------------------------- train
    target = pn.widgets.RadioButtonGroup(name="Target", options=["age", "mass"], value="age",
                                         css_classes=["train-target"])
    members = pn.widgets.IntSlider(name="Members", start=1, end=10, value=2, width=380, css_classes=["train-members"])
    epochs = pn.widgets.IntInput(name="Epochs per member", start=1, end=450, value=5, width=180,
                                 css_classes=["train-epochs"])
    size = pn.widgets.Select(name="Network", options={"tiny (seconds per epoch)": "tiny",
                                                      "small (as shipped)": "small"}, width=180)
    n_train = pn.widgets.IntInput(name="Training stars", start=50, end=2800, step=50, value=300, width=180,
                                  css_classes=["train-n"])
    n_val = pn.widgets.IntInput(name="Validation stars", start=20, end=700, step=10, value=150, width=180,
                                css_classes=["val-n"])
    # your own labelled spectra: a folder on this machine + a table (uploaded or a path), matched first
    source = pn.widgets.RadioButtonGroup(name="Data", options={"demo (simulated)": "demo",
                                                               "my labelled spectra": "own"},
                                         value="demo", css_classes=["train-source"])
    own_spectra = pn.widgets.TextInput(name="Spectra: folder or glob on the server",
                                       placeholder="/data/lamost/kepler or /data/*.fits.gz", width=380,
                                       css_classes=["own-spectra"])
    own_upload = pn.widgets.FileInput(accept=".csv,.fits,.fit,.vot,.xml,.parquet,.mrt,.txt", width=380,
                                      css_classes=["own-upload"])
    own_table = pn.widgets.TextInput(name="...or the label table's path on the server (a CDS .dat with its ReadMe)",
                                     width=380, css_classes=["own-table"])
    own_match = pn.widgets.Select(name="Match by", options=["auto", "obsid", "designation", "kic", "position"],
                                  value="auto", width=180, css_classes=["own-match"])
    own_radius = pn.widgets.FloatInput(name="Radius (arcsec)", value=3.0, start=0.1, end=60, width=180,
                                       css_classes=["own-radius"])
    own_columns = pn.widgets.TextInput(name="Column names, if not recognised (optional)",
                                       placeholder="age=Age_Y2, kic=KIC_ID", width=380, css_classes=["own-columns"])
    own_states = pn.widgets.Select(name="Evolutionary states", options={"all": "", "RGB only (the paper)": "RGB"},
                                   width=180, css_classes=["own-states"])
    own_check = pn.widgets.Button(name="Match and check", button_type="primary", width=180,
                                  css_classes=["own-check"])
    own_report = pn.pane.Markdown("", css_classes=["match-report"], sizing_mode="stretch_width")
    own_box = pn.Column(own_spectra, own_upload, own_table, pn.Row(own_match, own_radius), own_columns,
                        pn.Row(own_states, own_check, align="end"), visible=False)
    start = pn.widgets.Button(name="Start training", button_type="primary", width=180, css_classes=["start-button"])
    stop = pn.widgets.Button(name="Stop (keep best)", button_type="danger", width=180, disabled=True,
                             css_classes=["stop-button"])
    progress = pn.indicators.Progress(value=0, max=100, width=380, bar_color="primary", visible=False,
                                      css_classes=["train-progress"])
    status = pn.pane.Markdown("Not started.", css_classes=["train-status"], width=380)
    save_name = pn.widgets.TextInput(name="Save as", placeholder="my-age-ensemble", width=250,
                                     css_classes=["save-name"])
    save = pn.widgets.Button(name="Save", width=120, disabled=True, css_classes=["save-button"])
    curves = pn.Column(_curves([]), css_classes=["curves-area"])
    epoch_table = table(_epoch_rows([]), "epoch-table", pagination="local", page_size=EPOCH_PAGE)

    demo_box = pn.Column(simulated_banner("Training here uses the SIMULATED demo set."), pn.Row(n_train, n_val))
    job = {"run": None, "cb": None, "shown": -1, "labelled": None}  # this session's (a closure, not global)
    workdir = {"path": None}

    def on_source(event):
        own = event.new == "own"
        own_box.visible = own
        demo_box.visible = not own
        start.disabled = own and job["labelled"] is None

    def on_check(_):
        import tempfile

        if workdir["path"] is None:
            workdir["path"] = tempfile.mkdtemp(prefix="rgbkit-session-")
        job["labelled"] = None
        start.disabled = True
        own_report.object = "Reading the spectra and the table..."
        try:
            ls = sup.match_own_data(own_spectra.value, target.value, own_table.value, own_upload.value,
                                    own_upload.filename, own_match.value, own_radius.value, own_columns.value,
                                    [own_states.value] if own_states.value else None, workdir["path"])
        except Exception as e:  # a bad folder or table: say why, keep going
            own_report.object = f"**Cannot use these data.** {e}"
            return
        job["labelled"] = (ls, target.value)
        own_report.object = (f"### Your data: columns and match (target **{target.value}**)\n\n"
                             f"```text\n{ls.report}\n```")
        start.disabled = False

    def on_target(event):
        if job["labelled"] is not None and job["labelled"][1] != event.new:
            job["labelled"] = None  # labels were checked for the other target
            if source.value == "own":
                start.disabled = True
                own_report.object = f"Target changed to {event.new}: press *Match and check* again."

    source.param.watch(on_source, "value")
    target.param.watch(on_target, "value")
    own_check.on_click(on_check)

    def poll():
        run = job["run"]
        if run is None:
            return
        snap = run.snapshot()
        n_done = sum(len(h.get("epoch", [])) for h in snap["histories"])
        if n_done != job["shown"]:
            job["shown"] = n_done
            curves.objects = [_curves(snap["histories"])]
            epoch_table.value = _epoch_rows(snap["histories"])
        progress.value = int(round(100 * snap["fraction"]))
        what = f"member {snap['member'] + 1}/{run.n_members}, epoch {snap['epoch']}/{run.epochs}"
        if not snap["done"]:
            status.object = f"Training {run.target}: {what}; {n_done} epochs done in {snap['elapsed']:.0f} s."
            return
        job["cb"].stop()
        start.disabled, stop.disabled = False, True
        if snap["error"]:
            status.object = f"**Training failed.** {snap['error']}"
            progress.bar_color = "danger"
            return
        ens = run.ensemble
        best = ", ".join(str(m["best_epoch"]) for m in ens.card["members"])
        verb = "Stopped" if snap["stopped"] else "Finished"
        test = ens.card["metrics"].get("test")
        status.object = (f"**{verb}** after {n_done} epochs ({snap['elapsed']:.0f} s): {len(ens)} member(s), "
                         f"best epochs kept: {best}. Validation M2 {ens.card['metrics']['val']['m2']:.1f}%"
                         + (f"; test M2 {test['m2']:.1f}% ({test['n']} spectra that chose nothing)." if test else "."))
        state.ensembles = {**state.ensembles, ens.target: ens}
        save.disabled = False
        show_ensemble(ens, f"trained in this session ({ens.target})", curves=False)

    def on_start(_):
        if job["run"] is not None and not job["run"].snapshot()["done"]:
            return
        if source.value == "own":
            if job["labelled"] is None:
                status.object = "Press *Match and check* first."
                return
            ls = job["labelled"][0]
            run = sup.TrainingRun(target.value, members.value, epochs.value, size=size.value, labelled=ls)
            what = f"{len(ls)} of your spectra (70/15/15 train/validation/test by star)"
        else:
            run = sup.TrainingRun(target.value, members.value, epochs.value, n_train.value, n_val.value, size.value)
            what = f"{n_train.value} stars"
        job.update(run=run.start(), shown=-1)
        start.disabled, stop.disabled, save.disabled = True, False, True
        progress.param.update(value=0, visible=True, bar_color="primary")
        status.object = f"Starting: {members.value} member(s) x {epochs.value} epochs on {what}..."
        job["cb"] = pn.state.add_periodic_callback(poll, period=POLL_MS)

    def on_stop(_):
        if job["run"] is not None and not job["run"].snapshot()["done"]:
            job["run"].stop()
            stop.disabled = True
            status.object += " Stopping after this epoch..."

    def on_save(_):
        run = job["run"]
        if run is None or run.ensemble is None:
            return
        name = save_name.value.strip() or f"{run.target}-{run.n_members}x{run.epochs}"
        try:
            folder = sup.save_ensemble(run.ensemble, name)
        except FileExistsError as e:
            status.object = f"**Not saved.** {e}"
            return
        opts = sup.list_ensembles()
        load_select.options = opts
        load_button.disabled = False
        status.object = f"Saved to `{folder}`; it is now in the list above."

    start.on_click(on_start)
    stop.on_click(on_stop)
    save.on_click(on_save)

    left = pn.Column(
        "### Load an ensemble", no_shipped, load_select, load_button,
        "### Train", source, target, own_box, demo_box, members, pn.Row(epochs, size),
        pn.pane.Markdown("Adam, learning rate 1e-3 annealed (cosine), Huber loss; each member keeps "
                         "its epoch with the lowest validation M2.", width=380),
        pn.Row(start, stop), progress, status, pn.Row(save_name, save, align="end"), width=410)
    return pn.Row(left, pn.Column(card_area, own_report, "### Live training", curves, epoch_table,
                                  sizing_mode="stretch_width"), name="Ensembles")
