#!/usr/bin/env python3
"""Writes train/unicode_tables.inc: the Unicode data that train/tokenizer.cpp needs to reproduce BERT's
uncased basic tokenizer, taken from Python's `unicodedata` (the data Hugging Face's BertTokenizer uses).

Run from anywhere with Debian's Python (3.11, Unicode 14.0.0):
    /usr/bin/python3 train/make_unicode_tables.py

Tables (all sorted by code point, searched by binary search):
  kCharClassRanges        {first, class}: the general-category groups the tokenizer asks about (control C*,
                          space separator Zs, line/paragraph separator Zl/Zp, punctuation P*, nonspacing mark Mn,
                          everything else); a range runs up to the next entry's first code point.
  kLowercaseRanges        {first, last, stride, delta}: code points first, first + stride, ..., last lowercase to
                          themselves + delta (Python's str.lower() on one code point, when that is one code point).
  kLowercaseExpansions    {code point, lower0, lower1}: the code points whose lowercase is two code points.
  kDecompositions         {code point, first, second}: one level of canonical decomposition (second = 0 for a
                          singleton); the tokenizer applies it recursively. Hangul syllables are decomposed by
                          the algorithm in the Unicode standard (section 3.12) instead of a table.
  kCombiningClassRanges   {first, last, class}: canonical combining classes other than 0, for the canonical
                          ordering step of NFD.

Before writing, the script rebuilds lowercasing and NFD from the tables for every code point and checks them
against str.lower() and unicodedata.normalize("NFD"), and checks the facts tokenizer.cpp relies on.
"""
import os
import sys
import unicodedata

MAX_CODE_POINT = 0x10FFFF
SURROGATES = range(0xD800, 0xE000)
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

# The names of enum class CharClass in train/tokenizer.cpp, in its order, and the short names the table uses.
CHAR_CLASSES = {"kOther": "Other", "kControl": "C", "kSpaceSeparator": "Zs", "kLineSeparator": "ZlZp",
                "kPunctuation": "P", "kNonspacingMark": "Mn"}


def char_class(cp):
    category = unicodedata.category(chr(cp))
    if category[0] == "C":
        return "kControl"
    if category == "Zs":
        return "kSpaceSeparator"
    if category in ("Zl", "Zp"):
        return "kLineSeparator"
    if category[0] == "P":
        return "kPunctuation"
    if category == "Mn":
        return "kNonspacingMark"
    return "kOther"


def is_cjk(cp):
    """HF's _is_chinese_char, as in tokenizer.cpp."""
    return any(first <= cp <= last for first, last in [
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)])


def char_class_ranges():
    ranges = []
    for cp in range(MAX_CODE_POINT + 1):
        c = char_class(cp)
        if not ranges or ranges[-1][1] != c:
            ranges.append((cp, c))
    return ranges


def lowercase_tables():
    """Single-code-point mappings grouped into arithmetic runs with one delta, and the longer expansions."""
    runs, expansions = [], []
    for cp in range(MAX_CODE_POINT + 1):
        if cp in SURROGATES:
            continue
        lower = chr(cp).lower()
        if lower == chr(cp):
            continue
        if len(lower) > 1:
            assert len(lower) == 2, (hex(cp), lower)
            expansions.append((cp, ord(lower[0]), ord(lower[1])))
            continue
        delta = ord(lower) - cp
        if runs:
            first, last, stride, run_delta = runs[-1]
            gap = cp - last
            if run_delta == delta and ((stride == 0 and gap in (1, 2)) or gap == stride):
                runs[-1] = (first, cp, gap, delta)
                continue
        runs.append((cp, cp, 0, delta))
    # A run of one code point gets stride 1 so that the C++ loop needs no special case.
    return [(first, last, stride or 1, delta) for first, last, stride, delta in runs], expansions


def canonical_decompositions():
    table = []
    for cp in range(MAX_CODE_POINT + 1):
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            continue
        decomposition = unicodedata.decomposition(chr(cp))
        if not decomposition or decomposition.startswith("<"):  # none, or a compatibility decomposition
            continue
        code_points = [int(p, 16) for p in decomposition.split()]
        assert len(code_points) in (1, 2), (hex(cp), code_points)
        table.append((cp, code_points[0], code_points[1] if len(code_points) == 2 else 0))
    return table


def combining_class_ranges():
    ranges = []
    for cp in range(MAX_CODE_POINT + 1):
        ccc = unicodedata.combining(chr(cp))
        if ccc == 0:
            continue
        if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == ccc:
            ranges[-1] = (ranges[-1][0], cp, ccc)
        else:
            ranges.append((cp, cp, ccc))
    return ranges


# ---- Checks: rebuild the operations from the tables, as tokenizer.cpp does ----------------------------------

def check_tables(lower_runs, expansions, decompositions, ccc_ranges):
    lower_map = {}
    for first, last, stride, delta in lower_runs:
        for cp in range(first, last + 1, stride):
            lower_map[cp] = chr(cp + delta)
    for cp, a, b in expansions:
        lower_map[cp] = chr(a) + chr(b)
    decomposition_map = {cp: (a, b) for cp, a, b in decompositions}
    ccc_map = {}
    for first, last, ccc in ccc_ranges:
        for cp in range(first, last + 1):
            ccc_map[cp] = ccc

    def decompose(cp, out):
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            s = cp - HANGUL_FIRST
            out.append(0x1100 + s // 588)
            out.append(0x1161 + (s % 588) // 28)
            if s % 28:
                out.append(0x11A7 + s % 28)
        elif cp in decomposition_map:
            a, b = decomposition_map[cp]
            decompose(a, out)
            if b:
                decompose(b, out)
        else:
            out.append(cp)

    def nfd(cps):
        out = []
        for cp in cps:
            decompose(cp, out)
        # Canonical ordering: a stable sort by combining class within each run of nonzero classes.
        i = 0
        while i < len(out):
            if ccc_map.get(out[i], 0) == 0:
                i += 1
                continue
            j = i
            while j < len(out) and ccc_map.get(out[j], 0) != 0:
                j += 1
            out[i:j] = sorted(out[i:j], key=lambda c: ccc_map[c])
            i = j
        return "".join(map(chr, out))

    for cp in range(MAX_CODE_POINT + 1):
        if cp in SURROGATES:
            continue
        c = chr(cp)
        assert lower_map.get(cp, c) == c.lower(), hex(cp)
        assert nfd([cp]) == unicodedata.normalize("NFD", c), hex(cp)
        # tokenizer.cpp lowercases after cleaning and CJK spacing (HF lowercases first): that is the same only
        # if lowercasing keeps every code point in its class and CJK or not.
        for lower_cp in map(ord, c.lower()):
            assert char_class(lower_cp) in (char_class(cp), "kNonspacingMark"), hex(cp)
            assert is_cjk(lower_cp) == is_cjk(cp), hex(cp)
        # HF splits words with Python's str.split(); after cleaning, its only extra separators are Zl and Zp.
        if c.isspace():
            assert char_class(cp) in ("kControl", "kSpaceSeparator", "kLineSeparator"), hex(cp)
    # Canonical ordering must see through combining sequences too: a spot check with marks out of order.
    sample = [ord("a"), 0x0301, 0x0323, 0x1D16D, 0x1D165]  # acute (230), dot below (220), two musical marks
    assert nfd(sample) == unicodedata.normalize("NFD", "".join(map(chr, sample)))


# ---- Output -------------------------------------------------------------------------------------------------

def rows(items, per_line):
    return "\n".join("    " + " ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def main():
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_path = os.path.join(repo_root, "train", "unicode_tables.inc")

    classes = char_class_ranges()
    lower_runs, expansions = lowercase_tables()
    decompositions = canonical_decompositions()
    ccc_ranges = combining_class_ranges()
    check_tables(lower_runs, expansions, decompositions, ccc_ranges)

    version = unicodedata.unidata_version
    short_names = ", ".join("%s = CharClass::%s" % (short, name) for name, short in CHAR_CLASSES.items())
    lines = [
        "// Generated by train/make_unicode_tables.py from Python %s's unicodedata (Unicode %s). Do not edit."
        % (sys.version.split()[0], version),
        "// Included by train/tokenizer.cpp, which defines the entry types; the generator explains each table.",
        "namespace unicode_tables {",
        "",
        'constexpr char kUnicodeVersion[] = "%s";' % version,
        "",
        "// Class names as short as the general categories they stand for.",
        "constexpr CharClass %s;" % short_names,
        "constexpr CharClassRange kCharClassRanges[] = {",
        rows(["{0x%X, %s}," % (cp, CHAR_CLASSES[c]) for cp, c in classes], 8),
        "};",
        "",
        "constexpr LowercaseRange kLowercaseRanges[] = {",
        rows(["{0x%X, 0x%X, %d, %d}," % r for r in lower_runs], 5),
        "};",
        "",
        "constexpr LowercaseExpansion kLowercaseExpansions[] = {",
        rows(["{0x%X, 0x%X, 0x%X}," % e for e in expansions], 5),
        "};",
        "",
        "constexpr Decomposition kDecompositions[] = {",
        rows(["{0x%X, 0x%X, 0x%X}," % d for d in decompositions], 6),
        "};",
        "",
        "constexpr CombiningClassRange kCombiningClassRanges[] = {",
        rows(["{0x%X, 0x%X, %d}," % r for r in ccc_ranges], 6),
        "};",
        "",
        "}  // namespace unicode_tables",
        "",
    ]
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(lines))
    print("wrote %s: Unicode %s, %d class ranges, %d lowercase runs, %d expansions, %d decompositions, "
          "%d combining class ranges" % (out_path, version, len(classes), len(lower_runs), len(expansions),
                                         len(decompositions), len(ccc_ranges)))


if __name__ == "__main__":
    main()
