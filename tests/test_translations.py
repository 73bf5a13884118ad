"""Chinese is the default UI language: every UI string has a compiled translation."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "portal/translations/zh_Hans/LC_MESSAGES/messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def _source_msgids() -> set[str]:
    ids = set()
    for folder in ("portal", "plugins"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, METHODS, keywords=KEYWORDS,
        ):
            if "/tests/" in str(_file) or str(_file).startswith("tests/"):
                continue
            ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_every_ui_string_is_translated_to_chinese():
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                  if m.id and m.string and not m.fuzzy}
    missing = sorted(_source_msgids() - translated)
    assert not missing, f"run `make translations` and translate: {missing[:20]}"


def test_compiled_catalog_matches_the_po_file():
    from babel.messages.mofile import read_mo

    def key(value):  # a plural message's id and strings come as a list or a tuple
        return tuple(value) if isinstance(value, (list, tuple)) else value

    with PO.open("rb") as handle:
        po = {key(m.id): key(m.string) for m in read_po(handle) if m.id and m.string and not m.fuzzy}
    with MO.open("rb") as handle:
        mo = {key(m.id): key(m.string) for m in read_mo(handle) if m.id}
    stale = sorted(str(k) for k in po if mo.get(k) != po[k])
    assert not stale, f"the .mo is stale; run `make translations`: {stale[:10]}"
