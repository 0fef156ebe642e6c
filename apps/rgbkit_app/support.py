"""Everything the tabs call, in one namespace (``from . import support as sup``).

The code lives in :mod:`.sources` (demo set, keys, uploads), :mod:`.models`
(ensembles, classifier and their demo results), :mod:`.training` (the
background training run) and :mod:`.tables` (tables for the page); the
science in :mod:`rgbkit` (:mod:`rgbkit.inspection`, :mod:`rgbkit.results`).
"""
from rgbkit.inspection import StarView, header_table, star_view  # noqa: F401
from rgbkit.preprocess import Flag  # noqa: F401
from rgbkit.results import baseline_results, paper_baselines, paper_numbers  # noqa: F401
from rgbkit.config import models_dir  # noqa: F401

from .models import (MAX_NAME, card_stamp, cluster_results, ensemble_zip, list_ensembles, load_ensemble,  # noqa: F401
                     merged_predictions, predict_demo, safe_name, save_ensemble, star_estimate, shipped_classifier, shipped_ensemble, warm_up_in_background)
from .sources import (DEMO_PREFIX, FILE_PREFIX, MAX_UPLOAD_BYTES, SIMULATED_NOTE, UPLOAD_PREFIX,  # noqa: F401
                      UploadError, demo, demo_inputs, demo_labels_for, demo_split_index, demo_star_options,
                      is_demo_key, load_star, read_upload, real_file_options, real_spectra_files)
from .tables import card_table, classifier_table, hr_stars, quality_table, stars_in_box  # noqa: F401
from .training import TrainingLimitError, TrainingRun, match_own_data, running_trainings  # noqa: F401
