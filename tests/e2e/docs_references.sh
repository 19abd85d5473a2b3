#!/usr/bin/env bash
# End to end: the file and line references of the pages in docs/ still point at what they name.
#
# What counts as a reference: a repository path written in a page, `dir/.../name.ext`, optionally followed by
# `:LINE` or `:FIRST-LAST`, whose first directory is a top-level directory of the source tree (outputs are left
# out: dot-directories, build*, runs). Other paths (RUN/config.json, DIR/vocab.txt, URLs) are not checked.
# Each reference must name a file that exists, and its LINE (or FIRST <= LAST) must lie within that file.
#
# Symbols: a page that writes a backquoted symbol and, right after it, a parenthesis that opens with the
# reference,
#     `symbol` (path/to/file.cpp:LINE)        e.g.  `train_bert` (train/trainer.cpp:206)
# states that the symbol is at that line: its last name (after the last `::` or `.`, without a trailing `()` or
# template arguments; `Class::method`, `Suite.TestName` and `field` all work) must occur as a whole word within
# 3 lines of LINE (within FIRST-3 .. LAST+3 for a range). Only references with a line are tied to a symbol, and
# only backquoted text whose last name is an identifier is a symbol (`--flag value` before a parenthesis is not).
# The symbol and the parenthesis may sit on two lines (a wrapped paragraph); the reference may be in backquotes.
# Anything else in the parenthesis after the first reference is not tied to the symbol.
#
# Prints one line per failure (page:line: reference: what is wrong) and exits 1 if there is any.
# Usage: docs_references.sh BUILD_DIR SOURCE_DIR [PAGE.md ...]   (default pages: SOURCE_DIR/docs/*.md;
# BUILD_DIR is not used, it is there for the e2e tests' common calling convention)
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR [PAGE.md ...]"; exit 2; }
source=$(cd "$2" && pwd) || exit 2
shift 2

python3 - "$source" "$@" <<'PYTHON'
import glob
import os
import re
import sys

SYMBOL_WINDOW = 3  # lines either side of LINE where a named symbol must occur

source = sys.argv[1]
pages = sys.argv[2:] or sorted(glob.glob(os.path.join(source, "docs", "*.md")))
if not pages:
    print(f"FAIL: no pages to check in {source}/docs")
    sys.exit(1)

roots = {d for d in os.listdir(source)
         if os.path.isdir(os.path.join(source, d)) and not d.startswith(".") and not d.startswith("build")
         and d != "runs"}

URL = re.compile(r"\w+://\S+")
PATH = r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)+[A-Za-z0-9_.-]*\.[A-Za-z0-9]+"
REFERENCE = re.compile(r"(?<![\w./$-])(" + PATH + r")(?::(\d+)(?:-(\d+))?)?")
# `symbol` (reference   -- the reference may itself be in backquotes
SYMBOL_BEFORE = re.compile(r"`([^`\n]+)`[ \t]*\n?[ \t]*\(`?$")

file_lines = {}


def lines_of(path):
    if path not in file_lines:
        with open(path, encoding="utf-8", errors="replace") as f:
            file_lines[path] = f.read().split("\n")
        if file_lines[path] and file_lines[path][-1] == "":
            file_lines[path].pop()  # the final newline does not start a line
    return file_lines[path]


def symbol_name(symbol):
    s = re.sub(r"\(.*$", "", symbol.strip())   # f(), TEST(A, b) -> f, TEST
    s = re.sub(r"<.*>", "", s)                 # templates
    return re.split(r"::|\.", s)[-1].strip()


failures = []
checked = 0
for page in pages:
    shown = os.path.relpath(page, source) if os.path.abspath(page).startswith(source + os.sep) else page
    with open(page, encoding="utf-8") as f:
        text = f.read()
    text = URL.sub(lambda m: " " * len(m.group(0)), text)
    for m in REFERENCE.finditer(text):
        path, first, last = m.group(1), m.group(2), m.group(3)
        page_line = text.count("\n", 0, m.start()) + 1
        if path.split("/")[0] not in roots:
            continue
        checked += 1
        where = f"{shown}:{page_line}: {m.group(0)}"
        full = os.path.join(source, path)
        if not os.path.isfile(full):
            failures.append(f"{where}: no such file in the repository")
            continue
        n = len(lines_of(full))
        lo = hi = None
        if first is not None:
            lo = int(first)
            hi = int(last) if last is not None else lo
            if not (1 <= lo <= hi <= n):
                failures.append(f"{where}: line out of range (the file has {n} lines)")
                continue
        before = SYMBOL_BEFORE.search(text, max(m.start() - 200, 0), m.start())
        if before is None or lo is None:
            continue
        name = symbol_name(before.group(1))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue  # backquoted text that is not a symbol, e.g. a flag
        word = re.compile(r"\b" + re.escape(name) + r"\b")
        content = lines_of(full)
        window = content[max(lo - 1 - SYMBOL_WINDOW, 0):min(hi + SYMBOL_WINDOW, n)]
        if not any(word.search(l) for l in window):
            failures.append(f"{where}: `{name}` is not within {SYMBOL_WINDOW} lines of line "
                            f"{lo if lo == hi else f'{lo}-{hi}'} of {path}")

for failure in failures:
    print(failure)
if failures:
    print(f"FAIL: {len(failures)} of {checked} references in {len(pages)} page(s) are broken")
    sys.exit(1)
print(f"ok: {checked} references in {len(pages)} page(s)")
PYTHON
