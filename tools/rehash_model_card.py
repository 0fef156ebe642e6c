"""Record the card hash in model folders saved before cards were hashed.

    python tools/rehash_model_card.py rgbkit/pretrained/age rgbkit/pretrained/mass ...

Only for folders whose contents you trust: it checks that every weights file
still matches the sha256 its card lists, adds the history file's sha256, and
writes the card's own sha256 (see ``rgbkit.ensemble.card_digest``). New
folders get both from ``Ensemble.save`` and need nothing from this tool.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rgbkit.ensemble import CARD, CARD_HASH, HISTORY, Ensemble, card_digest
from rgbkit.io.files import sha256_file


def rehash(folder: Path) -> None:
    card = json.loads((folder / CARD).read_text())
    for m in card["members"]:
        if sha256_file(folder / m["file"]) != m["sha256"]:
            raise SystemExit(f"{folder}: {m['file']} does not match its sha256 in the card; not rehashing")
    card.pop(CARD_HASH, None)
    card.pop("history_sha256", None)
    if (folder / HISTORY).is_file():
        card["history_sha256"] = sha256_file(folder / HISTORY)
    card[CARD_HASH] = card_digest(card)
    (folder / CARD).write_text(json.dumps(card, indent=2, allow_nan=True))
    Ensemble.load(folder, device="cpu")  # proves it loads
    print(f"{folder}: card sha256 {card[CARD_HASH][:12]}...")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        rehash(Path(arg))
