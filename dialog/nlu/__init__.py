"""Language layer of the dialog engine: text normalisation, slot extraction, fuzzy pinyin,
contact-center rule syntax and intent matching. Everything here is pure (no I/O)."""
