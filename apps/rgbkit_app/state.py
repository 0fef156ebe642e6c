"""Per-session state of the dashboard: one instance per browser session, nothing global."""
from __future__ import annotations

import param

from . import support as sup

TABS = ("Spectra", "Ensembles", "Predictions", "HR maps", "Clusters & baselines")
UPLOAD_KEY = sup.UPLOAD_PREFIX


class AppState(param.Parameterized):
    """What the user picked; views are bound to these parameters."""

    star_key = param.String(default="", doc="demo:<obsid>, file:<path> or upload:<name>")
    upload = param.Parameter(default=None, doc="the uploaded Spectrum (this session only)")
    threshold_factor = param.Number(default=0.05, bounds=(0.0, 0.5), step=0.01,
                                    doc="wavelet threshold as a fraction of max |detail| (paper: 0.05)")
    threshold_rule = param.Selector(default="max_level", objects=["max_level", "max_all", "universal"])
    view = param.Parameter(default=None, doc="StarView of the current spectrum (derived)")
    spectrum = param.Parameter(default=None, doc="the current Spectrum (derived)")
    error = param.String(default="", doc="why the current spectrum could not be shown")
    active_tab = param.Integer(default=0, bounds=(0, len(TABS) - 1))
    ensembles = param.Dict(default={}, doc="target -> Ensemble loaded or trained in this session")

    def __init__(self, **params):
        super().__init__(**params)
        if not self.star_key:
            opts = sup.demo_star_options()
            self.star_key = next(iter(opts.values()))
        self._update_view()

    @param.depends("star_key", "upload", "threshold_factor", "threshold_rule", watch=True)
    def _update_view(self):
        try:
            if self.star_key.startswith(UPLOAD_KEY):
                spec = self.upload
            else:
                spec = sup.load_star(self.star_key)
            view = sup.star_view(spec, self.threshold_factor, self.threshold_rule)
        except Exception as e:  # a bad file must not break the session: say why instead
            name = self.star_key.split(":", 1)[-1].rsplit("/", 1)[-1]  # a file's name, never the server's path
            self.param.update(error=f"{name}: {getattr(e, 'reason', None) or e}")
            return
        upd = {"view": view, "error": ""}
        if spec is not self.spectrum:  # header views depend on it: leave them alone on slider moves
            upd["spectrum"] = spec
        self.param.update(**upd)

    @property
    def is_demo(self) -> bool:
        return sup.is_demo_key(self.star_key)

    def open_star(self, key: str) -> None:
        """Show a star in the Spectra tab and switch to it (used by the HR map)."""
        self.star_key = key
        self.active_tab = 0
